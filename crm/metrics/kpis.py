"""All registered metrics for one or many periods, computed in one Polars pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period, month_periods
from crm.metrics.churn import summarise_customers_over
from crm.metrics.periods import Buckets
from crm.metrics.registry import METRICS
from crm.metrics.sales import summarise_pipeline_over, summarise_sales_over
from crm.metrics.satisfaction import summarise_satisfaction_over
from crm.metrics.service import summarise_backlog_over, summarise_service_over

Values = dict[str, Any]

SUMMARIES: tuple[Callable[[Dataset, Buckets], pl.LazyFrame], ...] = (
    summarise_sales_over,
    summarise_pipeline_over,
    summarise_satisfaction_over,
    summarise_service_over,
    summarise_backlog_over,
    summarise_customers_over,
)
"""Each answers its metrics for every bucket (period) in one query: one row per bucket."""


Summary = Callable[[Dataset, Buckets], pl.LazyFrame]

COCKPIT_SERVICE = frozenset({"tickets_created", "first_response_p50_hours", "sla_breach_rate"})
"""The service metrics the cockpit shows: its two service tiles, and tickets and SLA breaches in its chart."""


def _cockpit_service(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    return summarise_service_over(ds, buckets, COCKPIT_SERVICE)


METRIC_SETS: dict[str, tuple[Summary, ...]] = {
    "all": SUMMARIES,
    "cockpit": (summarise_sales_over, summarise_pipeline_over, summarise_satisfaction_over, _cockpit_service,
                summarise_backlog_over, summarise_customers_over),
    "satisfaction": (summarise_satisfaction_over,),
    "service": (summarise_service_over, summarise_backlog_over),
    "customers": (summarise_customers_over,),
}
"""The metrics a page shows on its tiles and their sparklines, by page: a page computes those only (the
others are None). The cockpit's service tiles need one of the service summary's eight percentiles."""


def compute_many(ds: Dataset, periods: Sequence[Period], summaries: Sequence[Summary] = SUMMARIES) -> list[Values]:
    """One flat ``{metric_key: value}`` per period (None where undefined), in registry key order.

    ``summaries`` limits the work to some areas (the metrics of the others are None).

    Sorted, non-overlapping periods (a period and the previous one, the months of a
    trend) are answered together, one query per summary; overlapping ones each alone.
    """
    order = sorted(range(len(periods)), key=lambda i: periods[i])
    ordered = [periods[i] for i in order]
    groups = [Buckets(tuple(ordered))] if ordered and Buckets.disjoint(ordered) else [Buckets((p,)) for p in ordered]
    plans = [summary(ds, buckets) for buckets in groups for summary in summaries]
    frames = pl.collect_all(plans)
    per = len(summaries)
    rows: list[Values] = []
    for g, buckets in enumerate(groups):
        merged: list[Values] = [{} for _ in buckets.periods]
        for frame in frames[g * per:(g + 1) * per]:
            for row in frame.iter_rows(named=True):
                merged[row["bucket"]].update(row)
        rows.extend(merged)
    results: list[Values] = [{}] * len(periods)
    for position, merged_row in zip(order, rows, strict=True):
        results[position] = {m.key: _plain(merged_row.get(m.key)) for m in METRICS}
    return results


def compute_metrics(ds: Dataset, period: Period) -> Values:
    """Every registered metric for one period."""
    return compute_many(ds, [period])[0]


def compute_with_previous(ds: Dataset, period: Period, summaries: Sequence[Summary] = SUMMARIES
                          ) -> tuple[Values, Values]:
    """This period's and the previous period's metrics (the previous: same length, just before); those of
    ``summaries`` (``METRIC_SETS``), the others None."""
    current, previous = compute_many(ds, [period, period.previous()], summaries)
    return current, previous


def monthly_trend(ds: Dataset, end: Period, months: int = 12, summaries: Sequence[Summary] = SUMMARIES) -> pl.DataFrame:
    """One row per calendar month (``month`` = its first day) with every metric, oldest first
    (those of ``summaries``; the others None).

    The last month is cut at the period's last day; each month applies the same
    rules as a one-month period, so a month and its point on the trend agree.
    """
    return trend_of(ds, month_periods(end.end, months), summaries)


def trend_of(ds: Dataset, periods: Sequence[Period], summaries: Sequence[Summary] = SUMMARIES) -> pl.DataFrame:
    """``monthly_trend``'s rows for the given months (``month`` = each period's start, ``month_end`` its
    last day): each period gets the values it gets on its own, so the rows of two calls can be put
    together."""
    rows = compute_many(ds, periods, summaries) if periods else []
    return pl.DataFrame(
        [{"month": p.start, "month_end": p.end, **row} for p, row in zip(periods, rows, strict=True)],
        schema={"month": pl.Date, "month_end": pl.Date, **{m.key: pl.Float64 for m in METRICS}},
    )


def _plain(value: Any) -> Any:
    """NaN -> None, so JSON and tiles see 'undefined' the same way."""
    if isinstance(value, float) and value != value:
        return None
    return value
