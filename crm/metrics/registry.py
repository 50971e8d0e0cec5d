"""The metric definitions: one declarative record per metric key.

The cockpit tiles, their tooltips, the CLI and the README's definitions table
all read this registry; how a metric is computed lives in the area modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """How a value is measured (and so formatted)."""

    CURRENCY = "currency"
    COUNT = "count"
    RATIO = "ratio"  # 0..1 in code and CLI, a percentage on screen
    SCORE = "score"  # NPS, -100..100
    HOURS = "hours"
    DAYS = "days"


class Direction(StrEnum):
    """Whether a rise is good news."""

    UP = "up"
    DOWN = "down"
    NEUTRAL = "neutral"


class Area(StrEnum):
    """Which part of the business a metric describes (and which page explains it)."""

    SALES = "sales"
    SATISFACTION = "satisfaction"
    SERVICE = "service"
    CUSTOMERS = "customers"


@dataclass(frozen=True)
class MetricDefinition:
    """A metric: stable key, label, one-line formula, unit, direction, area."""

    key: str
    label: str
    formula: str
    unit: Unit
    direction: Direction
    area: Area
    tile: bool = False


METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("revenue_won", "Revenue won", "Σ amount of deals won (closed_at) in the period",
                     Unit.CURRENCY, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("new_opportunities", "New opportunities", "Deals created in the period",
                     Unit.COUNT, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("won_deals", "Deals won", "Deals won (closed_at) in the period",
                     Unit.COUNT, Direction.UP, Area.SALES),
    MetricDefinition("lost_deals", "Deals lost", "Deals lost (closed_at) in the period",
                     Unit.COUNT, Direction.DOWN, Area.SALES),
    MetricDefinition("win_rate", "Win rate", "won / (won + lost) over deals closed in the period",
                     Unit.RATIO, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("sales_cycle_days", "Sales cycle",
                     "Median days from created_at to closed_at over deals won in the period",
                     Unit.DAYS, Direction.DOWN, Area.SALES),
    MetricDefinition("pipeline_value", "Open pipeline", "Σ amount of deals open at the period end",
                     Unit.CURRENCY, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("weighted_pipeline", "Weighted pipeline",
                     "Σ amount × win probability of each open deal's stage at the period end",
                     Unit.CURRENCY, Direction.UP, Area.SALES),
    MetricDefinition("open_deals", "Open deals", "Deals open at the period end",
                     Unit.COUNT, Direction.NEUTRAL, Area.SALES),
    MetricDefinition("nps", "NPS", "100 × (promoters 9–10 − detractors 0–6) / NPS responses in the period",
                     Unit.SCORE, Direction.UP, Area.SATISFACTION, tile=True),
    MetricDefinition("nps_responses", "NPS responses", "NPS survey responses in the period",
                     Unit.COUNT, Direction.NEUTRAL, Area.SATISFACTION),
    MetricDefinition("csat", "CSAT", "CSAT responses scoring 4 or 5 / CSAT responses in the period",
                     Unit.RATIO, Direction.UP, Area.SATISFACTION, tile=True),
    MetricDefinition("csat_responses", "CSAT responses", "CSAT survey responses in the period",
                     Unit.COUNT, Direction.NEUTRAL, Area.SATISFACTION),
    MetricDefinition("tickets_created", "Tickets created", "Tickets created in the period",
                     Unit.COUNT, Direction.NEUTRAL, Area.SERVICE),
    MetricDefinition("first_response_p50_hours", "First response (median)",
                     "p50 of first_response_at − created_at (else resolved_at) over tickets created in the "
                     "period and answered by its end, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE, tile=True),
    MetricDefinition("first_response_p90_hours", "First response (p90)",
                     "p90 of the first response time, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("resolution_p50_hours", "Resolution (median)",
                     "p50 of resolved_at − created_at over tickets created in the period and resolved by its "
                     "end, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("resolution_p90_hours", "Resolution (p90)",
                     "p90 of the resolution time, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("first_response_p50_business_hours", "First response (median, business hours)",
                     "p50 of the first response time counted in the business calendar's working hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("first_response_p90_business_hours", "First response (p90, business hours)",
                     "p90 of the first response time in working hours", Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("resolution_p50_business_hours", "Resolution (median, business hours)",
                     "p50 of the resolution time in working hours", Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("resolution_p90_business_hours", "Resolution (p90, business hours)",
                     "p90 of the resolution time in working hours", Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("sla_breach_rate", "SLA breach rate",
                     "Tickets created in the period whose first response missed the priority target "
                     "(urgent 1 h, high 4 h, normal 8 h, low 24 h) / tickets created",
                     Unit.RATIO, Direction.DOWN, Area.SERVICE, tile=True),
    MetricDefinition("sla_breach_rate_business", "SLA breach rate (business hours)",
                     "Like the SLA breach rate, with response times and waiting counted in working hours",
                     Unit.RATIO, Direction.DOWN, Area.SERVICE),
    MetricDefinition("reopened_tickets", "Reopened tickets", "Tickets created in the period that were reopened",
                     Unit.COUNT, Direction.DOWN, Area.SERVICE),
    MetricDefinition("backlog", "Backlog", "Tickets created by the period end and not resolved by then",
                     Unit.COUNT, Direction.DOWN, Area.SERVICE, tile=True),
    MetricDefinition("active_customers", "Active customers",
                     "Customers with an order dated within the 90 days ending on the last day of the period",
                     Unit.COUNT, Direction.UP, Area.CUSTOMERS, tile=True),
    MetricDefinition("churn_rate", "Churn rate",
                     "Customers active the day before the period but not on its last day / those active "
                     "the day before",
                     Unit.RATIO, Direction.DOWN, Area.CUSTOMERS, tile=True),
)

BY_KEY: dict[str, MetricDefinition] = {m.key: m for m in METRICS}


def definition(key: str) -> MetricDefinition:
    """The definition of ``key``; KeyError names the known keys."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(BY_KEY)}") from None


def tiles() -> tuple[MetricDefinition, ...]:
    """The metrics shown as cockpit tiles, in registry order."""
    return tuple(m for m in METRICS if m.tile)


def markdown_table() -> str:
    """The registry as a Markdown table (docs/METRICS.md is this, checked by a test)."""
    lines = [
        "| key | label | definition | unit | good when |",
        "|---|---|---|---|---|",
    ]
    good = {Direction.UP: "higher", Direction.DOWN: "lower", Direction.NEUTRAL: "—"}
    for m in METRICS:
        lines.append(f"| `{m.key}` | {m.label} | {m.formula} | {m.unit.value} | {good[m.direction]} |")
    return "\n".join(lines) + "\n"
