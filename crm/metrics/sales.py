"""Sales metrics over opportunities: revenue, win rate, cycle, pipeline.

Each ``summarise_*`` function takes the narrowed frames and a period and
returns a one-row LazyFrame whose columns are metric keys (see
crm.metrics.registry); its ``*_over`` twin answers several periods at once
(crm.metrics.periods), one row per period, and is what ``compute_many`` uses.
"""

from __future__ import annotations

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period, one_of
from crm.metrics.periods import Buckets, single
from crm.money import cents, cents_sum, from_cents

_DAY_US = 86_400_000_000
CLOSED = ("won", "lost")
"""The statuses of a closed deal."""


def summarise_sales(ds: Dataset, period: Period) -> pl.LazyFrame:
    """revenue_won, new_opportunities, won_deals, lost_deals, win_rate, sales_cycle_days."""
    return summarise_sales_over(ds, single(period)).drop("bucket")


def summarise_sales_over(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    """The sales summary for every bucket in one pass: deals closed (won/lost) by the bucket of
    ``closed_at``, deals created by the bucket of ``created_at``."""
    won = pl.col("status") == "won"
    cycle_days = (pl.col("closed_at") - pl.col("created_at")).dt.total_microseconds() / _DAY_US
    closed = (
        ds.opportunities.filter(buckets.within("closed_at") & one_of("status", CLOSED))
        .select("amount", "created_at", "closed_at", "status", bucket=buckets.index("closed_at"))
        .filter(pl.col("bucket").is_not_null())
        .group_by("bucket")
        .agg(
            revenue_won=cents_sum(pl.col("amount").filter(won)),
            won_deals=won.sum().cast(pl.Int64),
            lost_deals=(pl.col("status") == "lost").sum().cast(pl.Int64),
            sales_cycle_days=cycle_days.filter(won).median(),
        )
    )
    created = (
        ds.opportunities.filter(buckets.within("created_at")).select(bucket=buckets.index("created_at"))
        .filter(pl.col("bucket").is_not_null())
        .group_by("bucket")
        .agg(new_opportunities=pl.len().cast(pl.Int64))
    )
    return buckets.per_bucket(
        [closed, created], {"revenue_won": 0.0, "won_deals": 0, "lost_deals": 0, "new_opportunities": 0}
    ).select(
        "bucket", "revenue_won", "new_opportunities", "won_deals", "lost_deals", "sales_cycle_days",
        win_rate=pl.when(pl.col("won_deals") + pl.col("lost_deals") > 0).then(
            pl.col("won_deals") / (pl.col("won_deals") + pl.col("lost_deals"))
        ),
    )


def summarise_revenue_over(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    """``revenue_won`` and ``won_deals`` for every bucket, as ``summarise_sales_over`` gives them, without
    its other columns: one scan of the won deals (the revenue chart's two years of months; the sales
    summary's deals created and sales cycle median cost five times as much)."""
    won = (
        ds.opportunities.filter(buckets.within("closed_at") & (pl.col("status") == "won"))
        .select("amount", bucket=buckets.index("closed_at"))
        .filter(pl.col("bucket").is_not_null())
        .group_by("bucket")
        .agg(revenue_won=cents_sum(pl.col("amount")), won_deals=pl.len().cast(pl.Int64))
    )
    return buckets.per_bucket([won], {"revenue_won": 0.0, "won_deals": 0})


def open_at(ds: Dataset, period: Period) -> pl.LazyFrame:
    """Deals open at the period end: created before it, and open or closed at or after it (an event
    stamped exactly at the end belongs to the next period)."""
    end = period.end_ts
    return ds.opportunities.filter(
        (pl.col("created_at") < end)
        & ((pl.col("status") == "open") | (one_of("status", CLOSED) & (pl.col("closed_at") >= end)))
    )


def stage_at(ds: Dataset, period: Period, deals: pl.LazyFrame) -> pl.LazyFrame:
    """``deals`` (rows of ``ds.opportunities``, with their ``deal_key``) with ``stage_now``, ``stage_since`` and
    ``win_probability``: their open stage at the period end.

    The stage at a moment is the latest open-stage history row entered before it
    (same-moment rows ordered by position, the higher last); a deal with no such
    row is at the first open stage (``stage_since`` null: since its creation).
    """
    stages = ds.pipeline_stages.filter(pl.col("kind") == "open").sort("position")
    first_stage = stages["stage"][0] if stages.height else None
    end = period.end_ts
    current = ds.stages.filter(
        pl.col("open_step").is_not_null()
        & (pl.col("entered_at") < end)
        & (pl.col("open_until").is_null() | (pl.col("open_until") >= end))
    ).select("deal_key", stage_now="stage", stage_since="entered_at")
    probabilities = stages.lazy().select(pl.col("stage").alias("stage_now"), "win_probability")
    return (
        deals.join(current, on="deal_key", how="left")  # deal_key: the deal's row number (an integer join)
        .with_columns(pl.col("stage_now").fill_null(pl.lit(first_stage, dtype=pl.String)))
        .join(probabilities, on="stage_now", how="left")
    )


def summarise_pipeline(ds: Dataset, period: Period) -> pl.LazyFrame:
    """pipeline_value, weighted_pipeline, open_deals at the period end."""
    return summarise_pipeline_over(ds, single(period)).drop("bucket")


def summarise_pipeline_over(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    """The pipeline at every bucket's end (the rules of ``open_at`` and ``stage_at``), in one pass
    over ``deal_intervals``: a stretch counts at the ends from the first one after ``valid_from``
    (``lo``) up to, not including, the first one after ``valid_until`` (``hi``).

    Ends are midnights, so "end > valid_from" is "end day >= from_day" (the first midnight after
    valid_from) and "end <= valid_until" is "end day < until_day": whole-day integers and lookups.
    Summed over the buckets by ``Buckets.at_ends`` (a running sum of what opens and closes: whole cents).
    """
    n = len(buckets)
    until = pl.col("until_day")
    stretches = (
        ds.deal_intervals.filter(
            (pl.col("from_day") <= buckets.end_day(n - 1)) & (until.is_null() | (until > buckets.end_day(0)))
        )
        .select(
            amount=cents(pl.col("amount")),
            weighted=cents(pl.col("amount") * pl.col("win_probability").fill_null(0.0)),
            lo=buckets.first_end_from_day(pl.col("from_day")),
            hi=pl.when(until.is_null()).then(pl.lit(n, dtype=pl.Int64)).otherwise(buckets.first_end_from_day(until)),
            deals=pl.lit(1, dtype=pl.Int64),
        )
    )
    return buckets.at_ends(stretches, ["amount", "weighted", "deals"]).select(
        "bucket",
        pipeline_value=from_cents(pl.col("amount")),
        weighted_pipeline=from_cents(pl.col("weighted")),
        open_deals=pl.col("deals").cast(pl.Int64),
    )
