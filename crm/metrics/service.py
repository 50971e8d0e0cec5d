"""Service metrics over tickets: response and resolution percentiles, SLA, backlog, reopens.

Times come in two bases: ``calendar`` hours and ``business`` hours (the
store's business calendar, see crm.business_hours); SLA can be judged in
either. SLA targets per priority come from the store's settings.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from crm.business_hours import business_seconds_at, with_business_seconds
from crm.dataset import Dataset
from crm.filters import Period
from crm.metrics.periods import Buckets, single
from crm.settings import DEFAULT_SLA_TARGETS, sla_target_expr

Basis = Literal["calendar", "business"]
BASES: tuple[str, ...] = ("calendar", "business")
SERVICE_BREAKDOWNS: tuple[str, ...] = ("team", "agent", "priority", "channel")
SLA_TARGET_HOURS = DEFAULT_SLA_TARGETS
AT_RISK_SHARE = 0.75
"""An unanswered ticket is 'due soon' once 75% of its target has passed (the last quarter)."""

_HOUR_US = 3_600_000_000
_COLUMNS = {
    "calendar": ("first_response_hours", "resolution_hours"),
    "business": ("first_response_business_hours", "resolution_business_hours"),
}


def created_in(ds: Dataset, period: Period) -> pl.LazyFrame:
    """Tickets created within the period."""
    return ds.tickets.filter(pl.col("created_at").is_between(period.start_ts, period.end_ts, closed="left"))


def waited_hours_expr(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.Expr:
    """Hours from creation to the period end, in the basis (for tickets not answered by then)."""
    end = period.end_ts
    if basis == "business":
        return _waited_hours(pl.lit(end), pl.lit(business_seconds_at(end, ds.settings.calendar)), basis)
    return _waited_hours(pl.lit(end), None, basis)


def _waited_hours(end: pl.Expr, end_bs: pl.Expr | None, basis: Basis) -> pl.Expr:
    """Hours from creation to ``end`` (business: to ``end_bs``, the end's business seconds)."""
    if basis == "business":
        assert end_bs is not None
        return (end_bs - pl.col("created_bs")) / 3600.0
    return (end - pl.col("created_at")).dt.total_microseconds() / _HOUR_US


def breached_expr(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.Expr:
    """True when the first response was later than the target, or is missing at the period end
    while more than the target had passed since creation; exactly at the target is no breach."""
    end_bs = pl.lit(business_seconds_at(period.end_ts, ds.settings.calendar)) if basis == "business" else None
    return _breached(ds, pl.lit(period.end_ts), end_bs, basis)


def _breached(ds: Dataset, end: pl.Expr, end_bs: pl.Expr | None, basis: Basis) -> pl.Expr:
    target = pl.col("sla_target_hours")  # sla_target_expr(ds.settings.targets), computed once in enrich
    response = response_hours_at(end, basis)
    return pl.when(response.is_not_null()).then(response > target).otherwise(_waited_hours(end, end_bs, basis) > target)


def answered_at(end: datetime | pl.Expr) -> pl.Expr:
    """When each ticket was first answered as seen at ``end`` (null: not by then).

    Events stamped at or after ``end`` do not exist then: a recorded first response counts only
    before it, and a ticket resolved before it with no response by then was first answered when
    it was resolved (DESIGN.md)."""
    response, resolved = pl.col("first_response_at"), pl.col("resolved_at")
    return pl.when(response < end).then(response).when(resolved < end).then(resolved)


def response_hours_at(end: datetime | pl.Expr, basis: Basis = "calendar") -> pl.Expr:
    """First response time in the basis's hours as seen at ``end`` (see ``answered_at``; null: not
    answered by then)."""
    first_col, resolution_col = _COLUMNS[basis]
    # with a first response recorded, first_col is measured to it; else it equals the resolution time
    return (pl.when(pl.col("first_response_at") < end).then(pl.col(first_col))
            .when(pl.col("resolved_at") < end).then(pl.col(resolution_col)))


def _time_stats(end: datetime | pl.Expr, basis: Basis) -> list[pl.Expr]:
    """p50/p90 of first response and resolution over the rows answered / resolved before ``end``
    (a moment, or an expression giving each row's period end)."""
    resolution_col = _COLUMNS[basis][1]
    first = response_hours_at(end, basis).drop_nulls()
    resolution = pl.col(resolution_col).filter(pl.col("resolved_at") < end)
    return [
        first.quantile(0.5, "linear").alias("first_response_p50"),
        first.quantile(0.9, "linear").alias("first_response_p90"),
        resolution.quantile(0.5, "linear").alias("resolution_p50"),
        resolution.quantile(0.9, "linear").alias("resolution_p90"),
    ]


def summarise_service(ds: Dataset, period: Period) -> pl.LazyFrame:
    """tickets_created, first response and resolution p50/p90 (calendar and business hours), SLA breach rates."""
    return summarise_service_over(ds, single(period)).drop("bucket")


def summarise_service_over(ds: Dataset, buckets: Buckets, metrics: Collection[str] | None = None) -> pl.LazyFrame:
    """The service summary for every bucket in one group-by: tickets by the bucket of ``created_at``,
    each judged at its own bucket's end (``period_end``; ``period_end_bs`` in business seconds).

    ``metrics`` (default: all) limits it to those of its columns: each percentile is a pass over its
    bucket's tickets, and a page that shows one of the eight need not pay for the others."""
    end, end_bs = pl.col("period_end"), pl.col("period_end_bs")
    columns = [
        pl.len().cast(pl.Int64).alias("tickets_created"),
        *(e.name.suffix("_hours") for e in _time_stats(end, "calendar")),
        *(e.name.suffix("_business_hours") for e in _time_stats(end, "business")),
        _breached(ds, end, None, "calendar").mean().alias("sla_breach_rate"),
        _breached(ds, end, end_bs, "business").mean().alias("sla_breach_rate_business"),
        (pl.col("reopened").fill_null(0) > 0).sum().cast(pl.Int64).alias("reopened_tickets"),
    ]
    if metrics is not None:
        columns = [c for c in columns if c.meta.output_name() in metrics]
    tickets = (
        ds.tickets.filter(buckets.within("created_at"))
        .with_columns(bucket=buckets.index("created_at"))
        .filter(pl.col("bucket").is_not_null())
        .with_columns(period_end=buckets.end_of(pl.col("bucket")))
    )
    if any("period_end_bs" in c.meta.root_names() for c in columns):  # the business-hours SLA breach rate
        ends_bs = with_business_seconds(buckets.ends.to_frame("t").lazy(), {"t": "b"}, ds.settings.calendar).collect()
        tickets = tickets.with_columns(period_end_bs=pl.lit(ends_bs["b"]).gather(pl.col("bucket")))
    stats = tickets.group_by("bucket").agg(columns)
    zero = {"tickets_created": 0, "reopened_tickets": 0}
    return buckets.per_bucket([stats], {k: v for k, v in zero.items() if metrics is None or k in metrics})


def summarise_backlog(ds: Dataset, period: Period) -> pl.LazyFrame:
    """backlog: tickets created by the period end and not resolved by then."""
    return summarise_backlog_over(ds, single(period)).drop("bucket")


def summarise_backlog_over(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    """The backlog at every bucket's end: a ticket counts at the ends from the first one after its
    creation up to (not including) the first one after its resolution (an event stamped exactly at an
    end belongs to the next period)."""
    n = len(buckets)
    resolved = pl.col("resolved_at")
    spans = ds.tickets.filter(
        (pl.col("created_at") < buckets.last_end) & (resolved.is_null() | (resolved >= buckets.periods[0].end_ts))
    ).select(
        lo=buckets.first_end_from("created_at"),
        hi=pl.when(resolved.is_null()).then(pl.lit(n, dtype=pl.Int64)).otherwise(buckets.first_end_from("resolved_at")),
        backlog=pl.lit(1, dtype=pl.Int64),
    )
    return buckets.at_ends(spans, ["backlog"])


def bucket_periods(period: Period, grain: str) -> list[Period]:
    """The weeks (Monday–Sunday) or calendar months overlapping the period, cut to it."""
    out: list[Period] = []
    day = period.start
    while day <= period.end:
        if grain == "week":
            last = day + timedelta(days=6 - day.weekday())
        else:
            nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            last = nxt - timedelta(days=1)
        out.append(Period(day, min(last, period.end)))
        day = min(last, period.end) + timedelta(days=1)
    return out


def service_times(ds: Dataset, period: Period, by: str | None = None, basis: Basis = "calendar") -> pl.DataFrame:
    """Per ``by`` group (team, agent, priority, channel; or one row): tickets, p50/p90 of first
    response and resolution in the basis's hours, SLA breach rate, reopened tickets. Slowest first."""
    keys = [by] if by else []
    frame = created_in(ds, period)
    if by:
        frame = frame.with_columns(pl.col(by).fill_null("(none)"))
    stats = [pl.len().cast(pl.Int64).alias("tickets"), *_time_stats(period.end_ts, basis),
             breached_expr(ds, period, basis).mean().alias("sla_breach_rate"),
             (pl.col("reopened").fill_null(0) > 0).sum().cast(pl.Int64).alias("reopened")]
    out = frame.group_by(keys).agg(stats) if keys else frame.select(stats)
    return out.sort(["first_response_p50", *keys], descending=[True, *([False] * len(keys))],
                    nulls_last=True).collect()


def service_trend(ds: Dataset, period: Period, grain: str = "week", basis: Basis = "calendar") -> pl.DataFrame:
    """Per week or month of the period: tickets created and resolved, backlog at its end, p50/p90
    response and resolution, SLA breach rate (judged at the bucket's end), reopened tickets.

    The buckets are sorted and disjoint, so every part is one pass over the tickets (crm.metrics.periods):
    tickets by the bucket of ``created_at`` (each judged at its own bucket's end), by the bucket of
    ``resolved_at``, and the backlog at every bucket's end. Each bucket applies exactly the rules it
    would alone."""
    periods = bucket_periods(period, grain)
    buckets = Buckets(tuple(periods))
    end = pl.col("period_end")
    end_bs: pl.Expr | None = None
    created = ds.tickets.filter(buckets.within("created_at")).with_columns(bucket=buckets.index("created_at")).filter(
        pl.col("bucket").is_not_null()
    ).with_columns(period_end=buckets.end_of(pl.col("bucket")))
    if basis == "business":
        ends_bs = with_business_seconds(buckets.ends.to_frame("t").lazy(), {"t": "b"}, ds.settings.calendar).collect()["b"]
        created = created.with_columns(period_end_bs=pl.lit(ends_bs).gather(pl.col("bucket")))
        end_bs = pl.col("period_end_bs")
    stats = created.group_by("bucket").agg(
        pl.len().cast(pl.Int64).alias("created"), *_time_stats(end, basis),
        _breached(ds, end, end_bs, basis).mean().alias("sla_breach_rate"),
        (pl.col("reopened").fill_null(0) > 0).sum().cast(pl.Int64).alias("reopened"),
    )
    resolved = (
        ds.tickets.filter(buckets.within("resolved_at")).select(bucket=buckets.index("resolved_at"))
        .filter(pl.col("bucket").is_not_null())
        .group_by("bucket").agg(pl.len().cast(pl.Int64).alias("resolved"))
    )
    table = buckets.per_bucket([stats, resolved, summarise_backlog_over(ds, buckets)],
                               {"created": 0, "reopened": 0, "resolved": 0}).collect()
    return table.select(
        bucket=pl.Series([b.start for b in periods], dtype=pl.Date),
        bucket_end=pl.Series([b.end for b in periods], dtype=pl.Date),
        created=pl.col("created"),
        first_response_p50=pl.col("first_response_p50").cast(pl.Float64),
        first_response_p90=pl.col("first_response_p90").cast(pl.Float64),
        resolution_p50=pl.col("resolution_p50").cast(pl.Float64),
        resolution_p90=pl.col("resolution_p90").cast(pl.Float64),
        sla_breach_rate=pl.col("sla_breach_rate").cast(pl.Float64),
        reopened=pl.col("reopened"),
        resolved=pl.col("resolved"),
        backlog=pl.col("backlog"),
    )


HISTOGRAM_EDGES: tuple[float, ...] = (0, 1, 2, 4, 8, 12, 24, 48, 72, 120, 168, 336)


def time_histogram(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.DataFrame:
    """How first response and resolution times spread (tickets per hour band), binned in Polars."""
    resolution_col = _COLUMNS[basis][1]
    edges = list(HISTOGRAM_EDGES)
    labels = [f"{a:g}–{b:g} h" for a, b in itertools.pairwise(edges)] + [f"{edges[-1]:g}+ h"]
    frame = created_in(ds, period)
    parts = []
    end = period.end_ts
    for name, hours in (("first response", response_hours_at(end, basis)),
                        ("resolution", pl.col(resolution_col).filter(pl.col("resolved_at") < end))):
        values = frame.select(hours.alias("hours"))
        # band i holds edges[i] <= hours < edges[i + 1]: i is the number of upper edges at or below the value
        band = pl.sum_horizontal([(pl.col("hours") >= edge).cast(pl.Int32) for edge in edges[1:]])
        parts.append(
            values.drop_nulls().group_by(order=band).agg(tickets=pl.len().cast(pl.Int64)).with_columns(measure=pl.lit(name))
        )
    counts = pl.concat(parts).collect()
    grid = pl.DataFrame({"measure": ["first response"] * len(labels) + ["resolution"] * len(labels),
                         "band": labels * 2, "order": list(range(len(labels))) * 2},
                        schema_overrides={"order": pl.Int32})
    return (
        grid.join(counts, on=["measure", "order"], how="left")
        .with_columns(pl.col("tickets").fill_null(0))
        .sort("measure", "order").drop("order")
    )


RECENT_BREACH_DAYS = 7
"""A ticket that breached within this many days before the period end is still "at risk now"; one that
breached earlier is long-stale (a separate list: it no longer tops the watchlist)."""


def _waiting(ds: Dataset, period: Period, basis: Basis) -> pl.LazyFrame:
    """Tickets created by the period end and neither answered nor resolved by then, with ``waited_hours``
    (at the end, in the basis), ``target_hours`` and ``waited_before_hours`` (the wait
    ``RECENT_BREACH_DAYS`` days before the end; negative for tickets created since)."""
    end = period.end_ts
    before = end - timedelta(days=RECENT_BREACH_DAYS)
    calendar = ds.settings.calendar
    before_bs = pl.lit(business_seconds_at(before, calendar)) if basis == "business" else None
    return ds.tickets.filter((pl.col("created_at") < end) & answered_at(end).is_null()).with_columns(
        waited_hours=waited_hours_expr(ds, period, basis), target_hours=sla_target_expr(ds.settings.targets),
        waited_before_hours=_waited_hours(pl.lit(before), before_bs, basis))


def _with_customer_name(tickets: pl.LazyFrame, ds: Dataset) -> pl.LazyFrame:
    """``tickets`` with their customer's name (empty for a ticket without a known customer), order kept."""
    return tickets.join(ds.customers.select("customer_id", customer_name="name"), on="customer_id", how="left",
                        maintain_order="left")


def sla_watchlist(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.DataFrame:
    """What a supervisor acts on now: tickets unanswered at the period end that are in the last quarter of
    their first-response target (``due soon``) or breached it within the last ``RECENT_BREACH_DAYS`` days
    (``breached``), oldest first. Waits and targets in the basis's hours; tickets past their target for
    longer are in ``sla_stale``."""
    target, waited = pl.col("target_hours"), pl.col("waited_hours")
    recent = (waited > target) & (pl.col("waited_before_hours") <= target)
    due_soon = (waited >= AT_RISK_SHARE * target) & (waited <= target)
    return (
        _waiting(ds, period, basis).filter(due_soon | recent)
        .with_columns(sla=pl.when(waited > target).then(pl.lit("breached")).otherwise(pl.lit("due soon")),
                      over_by_hours=waited - target)
        .sort("created_at", "ticket_id")
        .pipe(_with_customer_name, ds)
        .select("ticket_id", "created_at", "priority", "sla", "waited_hours", "target_hours", "over_by_hours",
                "team", "agent", "channel", "product", "customer_id", "customer_name")
        .collect()
    )


def sla_stale(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.DataFrame:
    """Long-stale tickets: unanswered at the period end and already past their first-response target
    ``RECENT_BREACH_DAYS`` days before it, oldest first, with ``waited_days`` (calendar days from creation
    to the period end) and ``target_hours`` (in the basis)."""
    end = period.end_ts
    return (
        _waiting(ds, period, basis).filter(pl.col("waited_before_hours") > pl.col("target_hours"))
        .with_columns(waited_days=(pl.lit(end) - pl.col("created_at")).dt.total_microseconds() / (24 * _HOUR_US))
        .sort("created_at", "ticket_id")
        .pipe(_with_customer_name, ds)
        .select("ticket_id", "created_at", "priority", "waited_days", "target_hours", "team", "agent", "channel",
                "product", "customer_id", "customer_name")
        .collect()
    )


def sla_by_priority(ds: Dataset, period: Period, basis: Basis = "calendar") -> pl.DataFrame:
    """One row per priority (urgent, high, normal, low): its first-response target in hours, tickets
    created in the period, how many breached (an empty or unknown priority counts as normal), breach rate."""
    targets = ds.settings.targets
    counts = (
        created_in(ds, period)
        .with_columns(priority=pl.when(pl.col("priority").is_in(list(targets))).then("priority").otherwise(pl.lit("normal")))
        .group_by("priority")
        .agg(tickets=pl.len().cast(pl.Int64), breached=breached_expr(ds, period, basis).sum().cast(pl.Int64))
        .collect()
    )
    return (
        pl.DataFrame({"priority": list(targets), "target_hours": list(targets.values())})
        .join(counts, on="priority", how="left")
        .with_columns(pl.col("tickets").fill_null(0), pl.col("breached").fill_null(0))
        .with_columns(sla_breach_rate=pl.when(pl.col("tickets") > 0).then(pl.col("breached") / pl.col("tickets")))
    )
