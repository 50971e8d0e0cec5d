"""Active customers and churn from order dates."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period

ACTIVE_WINDOW_DAYS = 90


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
    before = active_on(ds, period.start - timedelta(days=1), window_days)
    after = active_on(ds, period.end, window_days)
    churned = before.join(after, on="customer_key", how="anti")
    counts = pl.concat(
        [
            before.select(active_before=pl.len().cast(pl.Int64)),
            after.select(active_customers=pl.len().cast(pl.Int64)),
            churned.select(churned_customers=pl.len().cast(pl.Int64)),
        ],
        how="horizontal",
    )
    return counts.select(
        "active_customers",
        churn_rate=pl.when(pl.col("active_before") > 0).then(
            pl.col("churned_customers") / pl.col("active_before")
        ),
    )
