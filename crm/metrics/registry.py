"""The metric definitions: one declarative record per metric key.

The cockpit tiles, their tooltips, the CLI and the README's definitions table
all read this registry; how a metric is computed lives in the area modules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from crm.metrics.churn import ACTIVE_WINDOW_DAYS
from crm.settings import ChurnBasis


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


CHURN_BASIS_TEXT: dict[ChurnBasis, str] = {
    ChurnBasis.ACTIVITY: f"active on a day = an order dated within the {ACTIVE_WINDOW_DAYS} days ending on it",
    ChurnBasis.SUBSCRIPTION: "active on a day = created (creation date) on or before it and not cancelled (cancellation date) "
                             "on or before it",
}
"""What each churn basis (a store setting) means, for the definitions, the CLI and the Data page."""

_BASIS_FORMULAS: dict[ChurnBasis, dict[str, str]] = {
    ChurnBasis.ACTIVITY: {
        "active_customers": f"Customers with an order dated within the {ACTIVE_WINDOW_DAYS} days ending on the last "
                            "day of the period (churn basis: activity)",
        "churn_rate": "Customers active the day before the period but not on its last day / those active "
                      f"the day before (churn basis: activity, {CHURN_BASIS_TEXT[ChurnBasis.ACTIVITY]})",
    },
    ChurnBasis.SUBSCRIPTION: {
        "active_customers": "Customers created by the last day of the period and not cancelled (cancellation date) "
                            "by then (churn basis: subscription)",
        "churn_rate": "Customers active the day before the period but not on its last day / those active "
                      f"the day before (churn basis: subscription, {CHURN_BASIS_TEXT[ChurnBasis.SUBSCRIPTION]})",
    },
}
"""The formulas that depend on the churn basis; METRICS holds the default (activity) ones."""

METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("revenue_won", "Revenue won", "Σ amount of deals won (closing date) in the period",
                     Unit.CURRENCY, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("new_opportunities", "New opportunities", "Deals created in the period",
                     Unit.COUNT, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("won_deals", "Deals won", "Deals won (closing date) in the period",
                     Unit.COUNT, Direction.UP, Area.SALES),
    MetricDefinition("lost_deals", "Deals lost", "Deals lost (closing date) in the period",
                     Unit.COUNT, Direction.DOWN, Area.SALES),
    MetricDefinition("win_rate", "Win rate", "won / (won + lost) over deals closed in the period",
                     Unit.RATIO, Direction.UP, Area.SALES, tile=True),
    MetricDefinition("sales_cycle_days", "Sales cycle",
                     "Median days from creation to closing over deals won in the period",
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
                     "p50 of first response time − creation time (else resolution time) over tickets created in the "
                     "period and answered by its end, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE, tile=True),
    MetricDefinition("first_response_p90_hours", "First response (p90)",
                     "p90 of the first response time, calendar hours",
                     Unit.HOURS, Direction.DOWN, Area.SERVICE),
    MetricDefinition("resolution_p50_hours", "Resolution (median)",
                     "p50 of resolution time − creation time over tickets created in the period and resolved by its "
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
    MetricDefinition("active_customers", "Active customers", _BASIS_FORMULAS[ChurnBasis.ACTIVITY]["active_customers"],
                     Unit.COUNT, Direction.UP, Area.CUSTOMERS, tile=True),
    MetricDefinition("churn_rate", "Churn rate", _BASIS_FORMULAS[ChurnBasis.ACTIVITY]["churn_rate"],
                     Unit.RATIO, Direction.DOWN, Area.CUSTOMERS, tile=True),
)

BY_KEY: dict[str, MetricDefinition] = {m.key: m for m in METRICS}


def for_basis(metric: MetricDefinition, churn_basis: ChurnBasis = ChurnBasis.ACTIVITY) -> MetricDefinition:
    """``metric`` with its formula as it reads on ``churn_basis`` (the same record when the basis does not matter)."""
    formula = _BASIS_FORMULAS[ChurnBasis(churn_basis)].get(metric.key)
    return metric if formula is None else dataclasses.replace(metric, formula=formula)


def definition(key: str, churn_basis: ChurnBasis = ChurnBasis.ACTIVITY) -> MetricDefinition:
    """The definition of ``key`` on ``churn_basis``; KeyError names the known keys."""
    try:
        return for_basis(BY_KEY[key], churn_basis)
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(BY_KEY)}") from None


def definitions(churn_basis: ChurnBasis = ChurnBasis.ACTIVITY) -> tuple[MetricDefinition, ...]:
    """Every metric, in registry order, with its formula on ``churn_basis``."""
    return tuple(for_basis(m, churn_basis) for m in METRICS)


def tiles(churn_basis: ChurnBasis = ChurnBasis.ACTIVITY) -> tuple[MetricDefinition, ...]:
    """The metrics shown as cockpit tiles, in registry order, with their formulas on ``churn_basis``."""
    return tuple(m for m in definitions(churn_basis) if m.tile)


def markdown_table() -> str:
    """The registry as a Markdown table (docs/METRICS.md is this, checked by a test)."""
    lines = [
        "| key | label | definition | unit | good when |",
        "|---|---|---|---|---|",
    ]
    good = {Direction.UP: "higher", Direction.DOWN: "lower", Direction.NEUTRAL: "—"}
    for m in METRICS:
        lines.append(f"| `{m.key}` | {m.label} | {m.formula} | {m.unit.value} | {good[m.direction]} |")
    lines += ["", "With the store setting `churn_basis = subscription` (`python -m crm settings set churn_basis "
                  "subscription`, or the Data page):", ""]
    lines += [f"- `{key}`: {formula}" for key, formula in _BASIS_FORMULAS[ChurnBasis.SUBSCRIPTION].items()]
    return "\n".join(lines) + "\n"
