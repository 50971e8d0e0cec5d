"""All registered metrics for one or many periods, computed in one Polars pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period, month_periods
from crm.metrics.churn import summarise_customers
from crm.metrics.registry import METRICS, Unit
from crm.metrics.sales import summarise_pipeline, summarise_sales
from crm.metrics.satisfaction import summarise_satisfaction
from crm.metrics.service import summarise_backlog, summarise_service

Values = dict[str, Any]

SUMMARIES: tuple[Callable[[Dataset, Period], pl.LazyFrame], ...] = (
    summarise_sales,
    summarise_pipeline,
    summarise_satisfaction,
    summarise_service,
    summarise_backlog,
    summarise_customers,
)


def compute_many(ds: Dataset, periods: Sequence[Period]) -> list[Values]:
    """One flat ``{metric_key: value}`` per period (None where undefined), in registry key order."""
    plans = [summary(ds, period) for period in periods for summary in SUMMARIES]
    frames = pl.collect_all(plans)
    results: list[Values] = []
    per = len(SUMMARIES)
    for i in range(len(periods)):
        merged: Values = {}
        for frame in frames[i * per:(i + 1) * per]:
            merged.update(frame.row(0, named=True))
        results.append({m.key: _plain(merged.get(m.key), m.unit) for m in METRICS})
    return results


def compute_metrics(ds: Dataset, period: Period) -> Values:
    """Every registered metric for one period."""
    return compute_many(ds, [period])[0]


def compute_with_previous(ds: Dataset, period: Period) -> tuple[Values, Values]:
    """This period's and the previous period's metrics (the previous: same length, just before)."""
    current, previous = compute_many(ds, [period, period.previous()])
    return current, previous


def monthly_trend(ds: Dataset, end: Period, months: int = 12) -> pl.DataFrame:
    """One row per calendar month (``month`` = its first day) with every metric, oldest first.

    The last month is cut at the period's last day; each month applies the same
    rules as a one-month period, so a month and its point on the trend agree.
    """
    periods = month_periods(end.end, months)
    rows = compute_many(ds, periods)
    return pl.DataFrame(
        [{"month": p.start, "month_end": p.end, **row} for p, row in zip(periods, rows, strict=True)],
        schema_overrides={m.key: pl.Float64 for m in METRICS},
    )


def _plain(value: Any, unit: Unit) -> Any:
    """NaN -> None, so JSON and tiles see 'undefined' the same way; money rounded to cents.

    Polars sums floats in parallel, so a total can differ in its last bits from
    run to run; amounts are money in one currency, and cents make them exact.
    """
    if isinstance(value, float) and value != value:
        return None
    if unit is Unit.CURRENCY and isinstance(value, float):
        return round(value, 2)
    return value
