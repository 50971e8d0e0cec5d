"""Sales metrics over opportunities: revenue, win rate, cycle, pipeline.

Each function takes the narrowed frames and a period and returns a one-row
LazyFrame whose columns are metric keys (see crm.metrics.registry).
"""

from __future__ import annotations

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period

_DAY_US = 86_400_000_000


def _in_period(column: str, period: Period) -> pl.Expr:
    return pl.col(column).is_between(period.start_ts, period.end_ts, closed="left")


def summarise_sales(ds: Dataset, period: Period) -> pl.LazyFrame:
    """revenue_won, new_opportunities, won_deals, lost_deals, win_rate, sales_cycle_days."""
    closed = _in_period("closed_at", period)
    won = closed & (pl.col("status") == "won")
    lost = closed & (pl.col("status") == "lost")
    cycle_days = (pl.col("closed_at") - pl.col("created_at")).dt.total_microseconds() / _DAY_US
    return (
        ds.opportunities.select(
            revenue_won=pl.col("amount").filter(won).sum().cast(pl.Float64),
            new_opportunities=_in_period("created_at", period).sum().cast(pl.Int64),
            won_deals=won.sum().cast(pl.Int64),
            lost_deals=lost.sum().cast(pl.Int64),
            sales_cycle_days=cycle_days.filter(won).median(),
        )
        .with_columns(
            win_rate=pl.when(pl.col("won_deals") + pl.col("lost_deals") > 0).then(
                pl.col("won_deals") / (pl.col("won_deals") + pl.col("lost_deals"))
            )
        )
    )


def open_at(ds: Dataset, period: Period) -> pl.LazyFrame:
    """Deals open at the period end: created by then, and open or closed after it."""
    end = period.end_ts
    return ds.opportunities.filter(
        (pl.col("created_at") <= end)
        & ((pl.col("status") == "open") | (pl.col("status").is_in(["won", "lost"]) & (pl.col("closed_at") > end)))
    )


def stage_at(ds: Dataset, period: Period, deals: pl.LazyFrame) -> pl.LazyFrame:
    """``deals`` with ``stage_now``, ``stage_since`` and ``win_probability``: their open stage at the period end.

    The stage at a moment is the latest open-stage history row entered by then
    (same-moment rows ordered by position, the higher last); a deal with no such
    row is at the first open stage (``stage_since`` null: since its creation).
    """
    stages = ds.pipeline_stages.filter(pl.col("kind") == "open").sort("position")
    first_stage = stages["stage"][0] if stages.height else None
    end = period.end_ts
    current = ds.stages.filter(
        pl.col("open_step").is_not_null()
        & (pl.col("entered_at") <= end)
        & (pl.col("open_until").is_null() | (pl.col("open_until") > end))
    ).select("opportunity_id", stage_now="stage", stage_since="entered_at")
    probabilities = stages.lazy().select(pl.col("stage").alias("stage_now"), "win_probability")
    return (
        deals.join(current, on="opportunity_id", how="left")
        .with_columns(pl.col("stage_now").fill_null(pl.lit(first_stage, dtype=pl.String)))
        .join(probabilities, on="stage_now", how="left")
    )


def summarise_pipeline(ds: Dataset, period: Period) -> pl.LazyFrame:
    """pipeline_value, weighted_pipeline, open_deals at the period end."""
    deals = stage_at(ds, period, open_at(ds, period).select("opportunity_id", "amount"))
    return deals.select(
        pipeline_value=pl.col("amount").sum().cast(pl.Float64),
        weighted_pipeline=(pl.col("amount") * pl.col("win_probability").fill_null(0.0)).sum().cast(pl.Float64),
        open_deals=pl.len().cast(pl.Int64),
    )
