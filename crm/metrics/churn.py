"""Active customers and churn from order dates."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period
from crm.metrics.periods import Buckets, single

ACTIVE_WINDOW_DAYS = 90
_MASK_BITS = 62


def active_on(ds: Dataset, day: date, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.LazyFrame:
    """Customers (``customer_key``) with an order dated within the ``window_days`` days ending on ``day``."""
    first = day - timedelta(days=window_days - 1)
    return (
        ds.orders.filter(pl.col("order_date").is_between(first, day, closed="both"))
        .select("customer_key")
        .unique()
    )


def summarise_customers(ds: Dataset, period: Period, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.LazyFrame:
    """active_customers (on the last day) and churn_rate over the period."""
    return summarise_customers_over(ds, single(period), window_days).drop("bucket")


def summarise_customers_over(ds: Dataset, buckets: Buckets, window_days: int = ACTIVE_WINDOW_DAYS) -> pl.LazyFrame:
    """active_customers and churn_rate for every bucket, from one group-by over the orders.

    The days that matter are each period's last day and the day before it starts. An order
    dated o makes its customer active on the days d with o <= d <= o + window - 1: a run of
    those days, so a bit mask. OR-ed per customer, bit i says "active on day i". Per period,
    B = active the day before it starts, A = active on its last day; churned = B and not A.
    A missing customer key (an order without customer) never matches, as in an anti-join:
    it counts as churned whenever it is in B.
    """
    days = sorted({d for p in buckets.periods for d in (p.start - timedelta(days=1), p.end)})
    if len(days) > _MASK_BITS:  # more days than bits: a few periods at a time
        step = _MASK_BITS // 2
        parts = [
            summarise_customers_over(ds, Buckets(buckets.periods[i:i + step]), window_days)
            .with_columns(pl.col("bucket") + i)
            for i in range(0, len(buckets), step)
        ]
        return pl.concat(parts)
    first = days[0] - timedelta(days=window_days - 1)
    # the mask of every order date in range, looked up by day (one gather, not a search per order)
    masks_by_day = [
        sum(1 << i for i, d in enumerate(days) if 0 <= (d - (first + timedelta(days=j))).days < window_days)
        for j in range((days[-1] - first).days + 1)
    ]
    lookup = pl.Series("mask", masks_by_day, dtype=pl.UInt64)
    offset = (first - date(1970, 1, 1)).days
    masks = (
        ds.orders.filter(pl.col("order_date").is_between(first, days[-1]))
        .select("customer_key", mask=pl.lit(lookup).gather(pl.col("order_date").cast(pl.Int32) - offset))
        .group_by("customer_key")
        .agg(pl.col("mask").bitwise_or())
    )
    position = {d: i for i, d in enumerate(days)}

    def active(day: date) -> pl.Expr:
        return (pl.col("mask") & pl.lit(1 << position[day], dtype=pl.UInt64)) != 0

    columns: dict[str, pl.Expr] = {}
    for i, p in enumerate(buckets.periods):
        before, after = active(p.start - timedelta(days=1)), active(p.end)
        columns[f"before_{i}"] = before.sum().cast(pl.Int64)
        columns[f"after_{i}"] = after.sum().cast(pl.Int64)
        columns[f"churned_{i}"] = (before & (~after | pl.col("customer_key").is_null())).sum().cast(pl.Int64)
    counts = masks.select(**columns)
    return pl.concat([
        counts.select(
            bucket=pl.lit(i, dtype=pl.Int64),
            active_customers=pl.col(f"after_{i}"),
            churn_rate=pl.when(pl.col(f"before_{i}") > 0).then(pl.col(f"churned_{i}") / pl.col(f"before_{i}")),
        )
        for i in range(len(buckets))
    ])
