"""Metric definitions (registry) and their computation over Polars frames."""

from crm.metrics.kpis import compute_many, compute_metrics, compute_with_previous, monthly_trend
from crm.metrics.registry import METRICS, Direction, MetricDefinition, Unit, definition, definitions, tiles

__all__ = [
    "METRICS", "Direction", "MetricDefinition", "Unit", "compute_many", "compute_metrics",
    "compute_with_previous", "definition", "definitions", "monthly_trend", "tiles",
]
