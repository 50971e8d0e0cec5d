"""Active customers and churn, on the store's churn basis (``Dataset.churn_basis``, DESIGN.md).

``activity``: a customer is active on day d when they have an order dated within the window (90 days)
ending on d. ``subscription``: when their created_at is on or before d and they have no churned_at
(cancellation) on or before d; dates are compared as calendar days, and a customer without created_at
is never active. Churn rate, active customers, the monthly trend and churn by attribute apply the same
wording to either notion of active; cohort retention is about orders on both bases.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period
from crm.metrics.periods import Buckets, single
from crm.money import cents_sum
from crm.settings import ChurnBasis

ACTIVE_WINDOW_DAYS = 90
_MASK_BITS = 62


def _bit(i: int) -> pl.Expr:
    """True where bit i of ``mask`` (see ``range_masks``) is set."""
    return (pl.col("mask") & pl.lit(1 << i, dtype=pl.UInt64)) != 0


def _churned(before: pl.Expr, after: pl.Expr) -> pl.Expr:
    """Active before, not after; a missing customer key never matches (as in an anti-join), so it
    counts as churned whenever it was active before."""
    return before & (~after | pl.col("customer_key").is_null())


def _subscriptions(customers: pl.LazyFrame, *keep: str) -> pl.LazyFrame:
    """Per customer: ``start`` (the day of created_at) and ``end`` (the day of churned_at; null: not
    cancelled), with the columns ``keep``."""
    return customers.select(*keep, start=pl.col("created_at").dt.date(), end=pl.col("churned_at").dt.date())


def _subscribed(day: date) -> pl.Expr:
    """Active on ``day`` on the subscription basis (rows of ``_subscriptions``): started on or before it
    and not cancelled on or before it; never, without a start."""
    return ((pl.col("start") <= day) & (pl.col("end").is_null() | (pl.col("end") > day))).fill_null(False)


def activity_masks(orders: pl.LazyFrame, days: list[date], window_days: int,
                   keys: tuple[str, ...] = ("customer_key",)) -> pl.LazyFrame:
    """Per customer (``keys``), bit i of ``mask`` says "active on ``days[i]``" (sorted, at most 62 days):
    an order dated within the ``window_days`` days ending on it."""
    return range_masks(orders, [(d - timedelta(days=window_days - 1), d) for d in days], keys)


def range_masks(orders: pl.LazyFrame, ranges: list[tuple[date, date]],
                keys: tuple[str, ...] = ("customer_key",)) -> pl.LazyFrame:
    """Per customer (``keys``) with an order in any of the (first, last) date ranges (inclusive, at
    most 62), bit i of ``mask`` says "has an order dated within ``ranges[i]``".

    Each day's mask is looked up by the order's date (one gather, not a search per order) and OR-ed.
    """
    first, last = min(r[0] for r in ranges), max(r[1] for r in ranges)
    masks_by_day = [
        sum(1 << i for i, (low, high) in enumerate(ranges) if low <= first + timedelta(days=j) <= high)
        for j in range((last - first).days + 1)
    ]
    lookup = pl.Series("mask", masks_by_day, dtype=pl.UInt64)
    offset = (first - date(1970, 1, 1)).days
    return (
        orders.filter(pl.col("order_date").is_between(first, last))
        .select(*keys, mask=pl.lit(lookup).gather(pl.col("order_date").cast(pl.Int32) - offset))
        .group_by(*keys)
        .agg(pl.col("mask").bitwise_or())
    )


def summarise_customers(ds: Dataset, period: Period, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.LazyFrame:
    """active_customers (on the last day) and churn_rate over the period."""
    return summarise_customers_over(ds, single(period), window_days).drop("bucket", "active_before", "churned")


def summarise_customers_over(ds: Dataset, buckets: Buckets, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.LazyFrame:
    """active_customers and churn_rate for every bucket (with its parts, active_before and churned),
    from one group-by over the orders.

    The days that matter are each period's last day and the day before it starts. An order
    dated o makes its customer active on the days d with o <= d <= o + window - 1: a run of
    those days, so a bit mask. OR-ed per customer, bit i says "active on day i". Per period,
    B = active the day before it starts, A = active on its last day; churned = B and not A.
    A missing customer key (an order without customer) counts as churned whenever it is in B
    (``_churned``).

    On the subscription basis the same three counts come from the customers' created_at and churned_at
    (``_subscribed``); the window does not apply.
    """
    if ds.churn_basis is ChurnBasis.SUBSCRIPTION:
        return _summarise_subscriptions(ds.customers, buckets)
    days = sorted({d for p in buckets.periods for d in (p.start - timedelta(days=1), p.end)})
    if len(days) > _MASK_BITS:  # more days than bits: a few periods at a time
        step = _MASK_BITS // 2
        parts = [
            summarise_customers_over(ds, Buckets(buckets.periods[i:i + step]), window_days)
            .with_columns(pl.col("bucket") + i)
            for i in range(0, len(buckets), step)
        ]
        return pl.concat(parts)
    masks = activity_masks(ds.orders, days, window_days)
    position = {d: i for i, d in enumerate(days)}
    columns: dict[str, pl.Expr] = {}
    for i, p in enumerate(buckets.periods):
        before, after = _bit(position[p.start - timedelta(days=1)]), _bit(position[p.end])
        columns[f"before_{i}"] = before.sum().cast(pl.Int64)
        columns[f"after_{i}"] = after.sum().cast(pl.Int64)
        columns[f"churned_{i}"] = _churned(before, after).sum().cast(pl.Int64)
    return _bucket_rows(masks.select(**columns), len(buckets))


def _summarise_subscriptions(customers: pl.LazyFrame, buckets: Buckets) -> pl.LazyFrame:
    """``summarise_customers_over`` on the subscription basis: per period, B = subscribed the day before it
    starts, A = subscribed on its last day, churned = B and not A (cancelled within the period)."""
    columns: dict[str, pl.Expr] = {}
    for i, p in enumerate(buckets.periods):
        before, after = _subscribed(p.start - timedelta(days=1)), _subscribed(p.end)
        columns[f"before_{i}"] = before.sum().cast(pl.Int64)
        columns[f"after_{i}"] = after.sum().cast(pl.Int64)
        columns[f"churned_{i}"] = (before & ~after).sum().cast(pl.Int64)
    return _bucket_rows(_subscriptions(customers).select(**columns), len(buckets))


def _bucket_rows(counts: pl.LazyFrame, n: int) -> pl.LazyFrame:
    """One row per bucket from the one-row ``counts`` (``before_i``, ``after_i``, ``churned_i``)."""
    return pl.concat([
        counts.select(
            bucket=pl.lit(i, dtype=pl.Int64),
            active_before=pl.col(f"before_{i}"),
            churned=pl.col(f"churned_{i}"),
            active_customers=pl.col(f"after_{i}"),
            churn_rate=pl.when(pl.col(f"before_{i}") > 0).then(pl.col(f"churned_{i}") / pl.col(f"before_{i}")),
        )
        for i in range(n)
    ])


CHURN_DIMENSIONS: tuple[str, ...] = ("region", "segment", "industry", "source")
"""Customer attributes churn is broken down by."""


def churn_trend(ds: Dataset, period: Period, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.DataFrame:
    """Per calendar month overlapping the period (the first and last cut to it): customers active the
    day before it, active on its last day, churned, churn rate (the churn rule applied to the month),
    and the customer flow: new (first order ever in the month), returning (ordered in the month and
    active the day before it), reactivated (ordered in the month, not new, not active the day before).

    One pass over the orders: per customer, three bits per month (active the day before, active on
    its last day, ordered in it); a customer's first order is its first row (the orders are sorted
    by customer and date, see crm.dataset).

    On the subscription basis (``_subscription_flows``) new = created in the month, returning =
    subscribed the day before it and still on its last day, reactivated = 0 (a cancellation is final)."""
    months = _months(period)
    if ds.churn_basis is ChurnBasis.SUBSCRIPTION:
        return _subscription_flows(ds.customers, months)
    orders = ds.orders.select("customer_key", "order_date").filter(pl.col("order_date").is_not_null())
    firsts = orders.group_by("customer_key").agg(first=pl.col("order_date").first()).drop_nulls("customer_key").collect()
    step = _MASK_BITS // 3
    parts = [_month_flows(orders, firsts, months[i:i + step], window_days) for i in range(0, len(months), step)]
    return pl.concat(parts)


def _month_flows(orders: pl.LazyFrame, firsts: pl.DataFrame, months: list[Period], window_days: int) -> pl.DataFrame:
    """churn_trend for at most 20 months."""
    columns: dict[str, pl.Expr] = {}
    new: list[int] = []
    ranges: list[tuple[date, date]] = []
    for i, month in enumerate(months):
        before = month.start - timedelta(days=1)
        ranges += [(before - timedelta(days=window_days - 1), before),
                   (month.end - timedelta(days=window_days - 1), month.end), (month.start, month.end)]
        was_active, active, ordered = _bit(3 * i), _bit(3 * i + 1), _bit(3 * i + 2)
        known = pl.col("customer_key").is_not_null()  # an order without a customer is nobody's flow
        columns[f"active_before_{i}"] = was_active.sum().cast(pl.Int64)
        columns[f"active_customers_{i}"] = active.sum().cast(pl.Int64)
        columns[f"churned_{i}"] = _churned(was_active, active).sum().cast(pl.Int64)
        columns[f"ordered_{i}"] = (ordered & known).sum().cast(pl.Int64)
        columns[f"returning_{i}"] = (ordered & was_active & known).sum().cast(pl.Int64)
        new.append(int(firsts["first"].is_between(month.start, month.end).sum()))
    counts = range_masks(orders, ranges).select(**columns).collect().row(0, named=True)
    rows = []
    for i, month in enumerate(months):
        before, ordered = counts[f"active_before_{i}"], counts[f"ordered_{i}"]
        rows.append({
            "month": month.start, "month_end": month.end, "active_before": before,
            "active_customers": counts[f"active_customers_{i}"], "churned": counts[f"churned_{i}"],
            "churn_rate": counts[f"churned_{i}"] / before if before else None,
            "new": new[i], "returning": counts[f"returning_{i}"],
            "reactivated": ordered - new[i] - counts[f"returning_{i}"],
        })
    return pl.DataFrame(rows, schema=_FLOW_SCHEMA)


_FLOW_SCHEMA: dict[str, pl.DataType] = {
    "month": pl.Date(), "month_end": pl.Date(), "active_before": pl.Int64(), "active_customers": pl.Int64(),
    "churned": pl.Int64(), "churn_rate": pl.Float64(), "new": pl.Int64(), "returning": pl.Int64(),
    "reactivated": pl.Int64(),
}


def _subscription_flows(customers: pl.LazyFrame, months: list[Period]) -> pl.DataFrame:
    """churn_trend on the subscription basis: one pass over the customers, five counts per month."""
    columns: dict[str, pl.Expr] = {}
    for i, month in enumerate(months):
        was_active, active = _subscribed(month.start - timedelta(days=1)), _subscribed(month.end)
        columns[f"active_before_{i}"] = was_active.sum().cast(pl.Int64)
        columns[f"active_customers_{i}"] = active.sum().cast(pl.Int64)
        columns[f"churned_{i}"] = (was_active & ~active).sum().cast(pl.Int64)
        columns[f"new_{i}"] = pl.col("start").is_between(month.start, month.end).fill_null(False).sum().cast(pl.Int64)
        columns[f"returning_{i}"] = (was_active & active).sum().cast(pl.Int64)
    counts = _subscriptions(customers).select(**columns).collect().row(0, named=True)
    rows = []
    for i, month in enumerate(months):
        before, churned = counts[f"active_before_{i}"], counts[f"churned_{i}"]
        rows.append({
            "month": month.start, "month_end": month.end, "active_before": before,
            "active_customers": counts[f"active_customers_{i}"], "churned": churned,
            "churn_rate": churned / before if before else None,
            "new": counts[f"new_{i}"], "returning": counts[f"returning_{i}"], "reactivated": 0,
        })
    return pl.DataFrame(rows, schema=_FLOW_SCHEMA)


def _months(period: Period) -> list[Period]:
    months = []
    day = period.start
    while day <= period.end:
        nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        months.append(Period(day, min(nxt - timedelta(days=1), period.end)))
        day = nxt
    return months


def churn_by(ds: Dataset, period: Period, dimension: str, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.DataFrame:
    """Churn rate per value of a customer attribute (region, segment, industry, source) in the period
    and in the previous period, with the customers behind it; highest churn first. A missing value
    (or, on the activity basis, an order's customer not in the customers table) is "(none)"."""
    if dimension not in CHURN_DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}; one of {', '.join(CHURN_DIMENSIONS)}")
    previous = period.previous()
    days = [previous.start - timedelta(days=1), period.start - timedelta(days=1), period.end]  # previous.end = start - 1
    if ds.churn_basis is ChurnBasis.SUBSCRIPTION:
        active = _subscriptions(ds.customers, dimension).select(
            dimension, *(_subscribed(day).alias(f"active_{i}") for i, day in enumerate(days)))
    else:
        masks = activity_masks(ds.orders, days, window_days, keys=("customer_id",))
        active = masks.join(ds.customers.select("customer_id", dimension), on="customer_id", how="left").select(
            dimension, *(_bit(i).alias(f"active_{i}") for i in range(len(days))))
    was, before, after = pl.col("active_0"), pl.col("active_1"), pl.col("active_2")
    return (
        active.with_columns(pl.col(dimension).fill_null("(none)"))
        .group_by(dimension)
        .agg(
            active_before=before.sum().cast(pl.Int64),
            churned=(before & ~after).sum().cast(pl.Int64),
            active_before_previous=was.sum().cast(pl.Int64),
            churned_previous=(was & ~before).sum().cast(pl.Int64),
        )
        .with_columns(
            churn_rate=pl.when(pl.col("active_before") > 0).then(pl.col("churned") / pl.col("active_before")),
            churn_rate_previous=pl.when(pl.col("active_before_previous") > 0).then(
                pl.col("churned_previous") / pl.col("active_before_previous")),
        )
        .with_columns(change=pl.col("churn_rate") - pl.col("churn_rate_previous"))
        .sort(["churn_rate", dimension], descending=[True, False], nulls_last=True)
        .collect()
    )


COHORT_MONTHS = 12


def cohort_retention(ds: Dataset, period: Period, months: int = COHORT_MONTHS) -> pl.DataFrame:
    """Customers by the month of their first order (cohort c, the ``months`` months ending with the
    period's last month) and the months since (k = 0, 1, ...), as of the period end: cohort_size,
    customers who ordered in month c + k and their revenue; customer_retention = customers / size,
    revenue_retention = revenue / the cohort's revenue in its first month. Long form, one row per cell.
    About orders on either churn basis (DESIGN.md defines it by first order and orders)."""
    end_month = period.end.replace(day=1)
    first_cohort = _add_months(end_month, -(months - 1))
    orders = ds.orders.filter(pl.col("order_date") <= period.end)
    index = pl.col("order_date").dt.year().cast(pl.Int32) * 12 + pl.col("order_date").dt.month().cast(pl.Int32)
    firsts = orders.group_by("customer_key").agg(cohort_index=index.min(), cohort=pl.col("order_date").min().dt.month_start())
    cells = (
        orders.join(firsts.filter(pl.col("cohort") >= first_cohort), on="customer_key", how="inner")
        .with_columns(months_since=(index - pl.col("cohort_index")).cast(pl.Int32))
        .group_by("cohort", "months_since")
        .agg(customers=pl.col("customer_key").n_unique().cast(pl.Int64), revenue=cents_sum(pl.col("amount")))
    )
    first_month = cells.filter(pl.col("months_since") == 0).select(
        "cohort", cohort_size=pl.col("customers"), first_revenue=pl.col("revenue"))
    return (
        cells.join(first_month, on="cohort", how="left")
        .with_columns(
            customer_retention=pl.col("customers") / pl.col("cohort_size"),
            revenue_retention=pl.when(pl.col("first_revenue") > 0).then(pl.col("revenue") / pl.col("first_revenue")),
        )
        .drop("first_revenue")
        .sort("cohort", "months_since")
        .select("cohort", "months_since", "cohort_size", "customers", "revenue", "customer_retention", "revenue_retention")
        .collect()
    )


def _add_months(first_of_month: date, count: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)
