"""The sales funnel and what explains it: conversion, velocity, win/loss, forecast, ageing.

Stage order and meaning come from ``pipeline_stages`` (kind open/won/lost,
positions order the open stages), so a store with other stage names works
unchanged. Definitions (DESIGN.md, binding):

- cohort funnel: deals created in the period. Every created deal starts at the
  first open stage. A deal has reached open stage k if its history up to the
  period end holds stage k or a later open stage; a won deal (status won,
  closed by the period end) has reached every open stage and the final step
  "won"; lost adds nothing. Step conversion = reached(k) / reached(k−1);
  cumulative = reached(k) / reached(first).
- strict funnel: a deal counts only along its in-order path: it stops at its
  first skipped stage (a row more than one open stage beyond the furthest it
  had reached); a deal that skipped never counts as won.
- snapshot: deals open at the period end by their stage then (count, amount).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from crm.dataset import Dataset
from crm.digest import per_frame
from crm.filters import Period, one_of
from crm.metrics.sales import CLOSED, open_at, stage_at
from crm.money import cents_sum

FunnelMode = Literal["cohort", "strict", "snapshot"]
MODES: tuple[str, ...] = ("cohort", "strict", "snapshot")
BREAKDOWNS: tuple[str, ...] = ("owner", "team", "region", "product", "source")
DEFAULT_AGEING_DAYS = 30
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class StageSet:
    """The configured stages: open ones in order, the won label, probabilities."""

    open: tuple[str, ...]
    won: str
    probability: dict[str, float]

    @property
    def steps(self) -> tuple[str, ...]:
        """Funnel steps: the open stages, then won."""
        return (*self.open, self.won)


def stage_set(pipeline_stages: pl.DataFrame) -> StageSet:
    """Read the stage configuration; the first ``won`` stage names the final step. Worked out once per
    configuration frame (the Frames' own, which every query of a data version passes): a funnel page asks
    dozens of times, and each read of a small frame costs Polars a few milliseconds."""
    return per_frame(pipeline_stages, "stage_set", _read_stage_set)


def _read_stage_set(pipeline_stages: pl.DataFrame) -> StageSet:
    ordered = pipeline_stages.sort("position")
    open_stages = tuple(ordered.filter(pl.col("kind") == "open")["stage"].to_list())
    won = ordered.filter(pl.col("kind") == "won")["stage"].to_list()
    probability = dict(zip(ordered["stage"].to_list(), ordered["win_probability"].to_list(), strict=True))
    return StageSet(open_stages, won[0] if won else "won", probability)


def _created_in(ds: Dataset, period: Period) -> pl.LazyFrame:
    return ds.opportunities.filter(pl.col("created_at").is_between(period.start_ts, period.end_ts, closed="left"))


def _won_by_end(period: Period) -> pl.Expr:
    return (pl.col("status") == "won") & (pl.col("closed_at") < period.end_ts)


def _cohort_history(ds: Dataset, period: Period) -> pl.LazyFrame:
    """The history rows of the deals created in the period (``_created_in``): each row carries its
    deal's creation (``deal_created_at``), so this is a filter, not a join with the deals."""
    return ds.stages.filter(pl.col("deal_created_at").is_between(period.start_ts, period.end_ts, closed="left"))


def _open_rows(ds: Dataset, period: Period) -> pl.LazyFrame:
    """History rows of open stages entered before the period end of the deals created in the period,
    with ``step`` = 1..K."""
    return _cohort_history(ds, period).filter(
        (pl.col("entered_at") < period.end_ts) & pl.col("open_step").is_not_null()
    ).select("deal_key", "entered_at", "position", step="open_step")


def reached_levels(ds: Dataset, period: Period, mode: FunnelMode = "cohort") -> pl.LazyFrame:
    """Deals created in the period with ``level``: how many funnel steps each reached (1..K+1)."""
    stages = stage_set(ds.pipeline_stages)
    k = len(stages.open)
    deals = _created_in(ds, period)
    rows = _open_rows(ds, period)  # deal_key: the deal's row number, an integer key for the group-bys and the join
    if mode == "strict":
        ordered = rows.sort("deal_key", "entered_at", "position").with_columns(
            before=pl.col("step").cum_max().shift(1).over("deal_key").fill_null(1).clip(lower_bound=1)
        )
        ordered = ordered.with_columns(
            skipped=(pl.col("step") > pl.col("before") + 1).cast(pl.Int64).cum_sum().over("deal_key") > 0
        )
        per_deal = ordered.group_by("deal_key").agg(
            top=pl.col("step").filter(~pl.col("skipped")).max(),
            any_skip=pl.col("skipped").any(),
        )
    else:
        per_deal = rows.group_by("deal_key").agg(top=pl.col("step").max(), any_skip=pl.lit(False))
    level = pl.max_horizontal(pl.col("top").fill_null(1), pl.lit(1))
    won = _won_by_end(period) & ~pl.col("any_skip").fill_null(False)
    if mode == "strict":
        won = won & (level == k)
    return deals.join(per_deal, on="deal_key", how="left").with_columns(
        level=pl.when(won).then(pl.lit(k + 1)).otherwise(level).cast(pl.Int64)
    ).drop("top", "any_skip")


def _conversion(counts: pl.DataFrame, stages: StageSet, by: str | None) -> pl.DataFrame:
    """From deals per exact level to reached/amount per step with step and cumulative conversion."""
    keys = [by] if by else []
    steps = pl.DataFrame({"step": list(range(1, len(stages.steps) + 1)), "stage": list(stages.steps)},
                         schema={"step": pl.Int64, "stage": pl.String})
    groups = counts.select(keys).unique() if keys else pl.DataFrame({"_": [0]})
    grid = groups.join(steps, how="cross").drop("_", strict=False)
    reached = grid.join(counts, on=keys, how="left") if keys else grid.join(counts, how="cross")
    reached = (
        reached.filter(pl.col("level") >= pl.col("step"))
        .group_by([*keys, "step"])
        .agg(reached=pl.col("deals").sum(), amount=cents_sum(pl.col("amount")))
    )
    out = grid.join(reached, on=[*keys, "step"], how="left").with_columns(
        pl.col("reached").fill_null(0).cast(pl.Int64), pl.col("amount").fill_null(0.0)
    ).sort([*keys, "step"])
    first = pl.col("reached").first().over(keys) if keys else pl.col("reached").first()
    previous = pl.col("reached").shift(1).over(keys) if keys else pl.col("reached").shift(1)
    return out.with_columns(
        step_conversion=pl.when(previous > 0).then(pl.col("reached") / previous),
        cumulative_conversion=pl.when(first > 0).then(pl.col("reached") / first),
        dropped=(previous - pl.col("reached")).cast(pl.Int64),
    ).select([*keys, "step", "stage", "reached", "amount", "step_conversion", "cumulative_conversion", "dropped"])


def compute_funnel(ds: Dataset, period: Period, mode: FunnelMode = "cohort", by: str | None = None) -> pl.DataFrame:
    """One row per funnel step (per ``by`` group): reached, amount, step and cumulative conversion, dropped.

    Snapshot mode gives one row per open stage: deals open at the period end in it, and their amount.
    """
    stages = stage_set(ds.pipeline_stages)
    if mode == "snapshot":
        return compute_snapshot(ds, period, by)
    levels = reached_levels(ds, period, mode)
    keys = [by] if by else []
    counts = (
        levels.with_columns(pl.col(by).fill_null("(none)") if by else pl.lit(None).alias("_"))
        .group_by([*keys, "level"])
        .agg(deals=pl.len().cast(pl.Int64), amount=cents_sum(pl.col("amount")))
        .collect()
    )
    return _conversion(counts, stages, by)


def compute_snapshot(ds: Dataset, period: Period, by: str | None = None) -> pl.DataFrame:
    """Deals open at the period end by their stage then: deals, amount, weighted amount."""
    stages = stage_set(ds.pipeline_stages)
    keys = [by] if by else []
    deals = stage_at(ds, period, open_at(ds, period))
    if by:
        deals = deals.with_columns(pl.col(by).fill_null("(none)"))
    grouped = deals.group_by([*keys, "stage_now"]).agg(
        deals=pl.len().cast(pl.Int64),
        amount=cents_sum(pl.col("amount")),
        weighted_amount=cents_sum(pl.col("amount") * pl.col("win_probability").fill_null(0.0)),
    ).collect()
    index = pl.DataFrame({"stage": list(stages.open), "step": list(range(1, len(stages.open) + 1))},
                         schema={"stage": pl.String, "step": pl.Int64})
    groups = grouped.select(keys).unique() if keys else pl.DataFrame({"_": [0]})
    grid = groups.join(index, how="cross").drop("_", strict=False)
    return (
        grid.join(grouped.rename({"stage_now": "stage"}), on=[*keys, "stage"], how="left")
        .with_columns(pl.col("deals").fill_null(0), pl.col("amount").fill_null(0.0),
                      pl.col("weighted_amount").fill_null(0.0))
        .sort([*keys, "step"])
        .select([*keys, "step", "stage", "deals", "amount", "weighted_amount"])
    )


def compute_stage_velocity(ds: Dataset, period: Period) -> pl.DataFrame:
    """Time in each open stage, days: for deals that left it within the period (whatever their
    creation date), entering the stage to their next history row (median, p75, n).

    ``next_at`` (crm.dataset) is when the deal's next history row was entered (rows in order of
    entered_at, then position): the stage was left within the period when that is in it."""
    stages = stage_set(ds.pipeline_stages)
    rows = (
        ds.stages
        .filter(pl.col("deal_key").is_not_null()  # a history row of no known deal is no deal
                & pl.col("next_at").is_between(period.start_ts, period.end_ts, closed="left")
                & pl.col("open_step").is_not_null())  # an open stage (crm.dataset: open_step is its step)
        .with_columns(days=(pl.col("next_at") - pl.col("entered_at")).dt.total_microseconds() / _DAY_US)
        .group_by("stage")
        .agg(
            deals=pl.len().cast(pl.Int64),
            median_days=pl.col("days").quantile(0.5, "linear"),
            p75_days=pl.col("days").quantile(0.75, "linear"),
        )
        .collect()
    )
    index = pl.DataFrame({"stage": list(stages.open), "step": list(range(1, len(stages.open) + 1))},
                         schema={"stage": pl.String, "step": pl.Int64})
    return (
        index.join(rows, on="stage", how="left")
        .with_columns(pl.col("deals").fill_null(0))
        .sort("step")
        .select("step", "stage", "deals", "median_days", "p75_days")
    )


def _closed_in(ds: Dataset, period: Period) -> pl.LazyFrame:
    return ds.opportunities.filter(
        pl.col("closed_at").is_between(period.start_ts, period.end_ts, closed="left")
        & one_of("status", CLOSED)
    )


def compute_win_loss(ds: Dataset, period: Period, by: str = "owner") -> pl.DataFrame:
    """Per ``by`` group, over deals closed in the period: won, lost, win rate, revenue won, amount lost;
    with the previous period's win rate. Worst win rate first."""
    def summary(p: Period) -> pl.LazyFrame:
        return (
            _closed_in(ds, p).with_columns(pl.col(by).fill_null("(none)"))
            .group_by(by)
            .agg(
                won=(pl.col("status") == "won").sum().cast(pl.Int64),
                lost=(pl.col("status") == "lost").sum().cast(pl.Int64),
                revenue_won=cents_sum(pl.col("amount").filter(pl.col("status") == "won")),
                amount_lost=cents_sum(pl.col("amount").filter(pl.col("status") == "lost")),
            )
            .with_columns(win_rate=pl.col("won") / (pl.col("won") + pl.col("lost")))
        )

    now, before = pl.collect_all([summary(period), summary(period.previous())])
    return (
        now.join(before.select(by, previous_win_rate="win_rate"), on=by, how="left")
        .with_columns(change=pl.col("win_rate") - pl.col("previous_win_rate"))
        .sort(["win_rate", by])
    )


def compute_lost_reasons(ds: Dataset, period: Period) -> pl.DataFrame:
    """Lost reasons ranked by deals lost in the period: deals, amount, share; the previous period's deals and the change."""
    def summary(p: Period) -> pl.LazyFrame:
        return (
            _closed_in(ds, p).filter(pl.col("status") == "lost")
            .with_columns(pl.col("lost_reason").fill_null("(not given)"))
            .group_by("lost_reason")
            .agg(deals=pl.len().cast(pl.Int64), amount=cents_sum(pl.col("amount")))
        )

    now, before = pl.collect_all([summary(period), summary(period.previous())])
    total = now["deals"].sum()
    return (
        now.join(before.rename({"deals": "previous_deals", "amount": "previous_amount"}), on="lost_reason",
                 how="full", coalesce=True)
        .with_columns(pl.col("deals", "previous_deals").fill_null(0), pl.col("amount", "previous_amount").fill_null(0.0))
        .with_columns(
            share=pl.col("deals") / total if total else pl.lit(None, dtype=pl.Float64),
            change=pl.col("deals") - pl.col("previous_deals"),
        )
        .sort(["deals", "amount", "lost_reason"], descending=[True, True, False])
    )


def median_cycle_days(ds: Dataset, period: Period) -> float | None:
    """Median sales cycle (days) of deals won in the period; if none, of all deals won by its end."""
    won = ds.opportunities.filter(pl.col("status") == "won").with_columns(
        days=(pl.col("closed_at") - pl.col("created_at")).dt.total_microseconds() / _DAY_US
    )
    in_period, overall = pl.collect_all([
        won.filter(pl.col("closed_at").is_between(period.start_ts, period.end_ts, closed="left")).select(
            pl.col("days").median()),
        won.filter(pl.col("closed_at") < period.end_ts).select(pl.col("days").median()),
    ])
    value = in_period.item()
    return value if value is not None else overall.item()


def compute_forecast(ds: Dataset, period: Period) -> pl.DataFrame:
    """Deals open at the period end by expected close month: deals, amount, weighted amount.

    Expected close is ``expected_close_date`` where present, else created_at + the
    median sales cycle. Months before the period end's month are ``overdue``.
    """
    cycle = median_cycle_days(ds, period) or 0.0
    deals = stage_at(ds, period, open_at(ds, period)).with_columns(
        expected=pl.coalesce(
            pl.col("expected_close_date"),
            (pl.col("created_at") + pl.duration(microseconds=int(cycle * _DAY_US))).dt.date(),
        ),
        weighted=pl.col("amount") * pl.col("win_probability").fill_null(0.0),
    )
    this_month = period.end.replace(day=1)
    return (
        deals.group_by(month=pl.col("expected").dt.month_start())
        .agg(deals=pl.len().cast(pl.Int64), amount=cents_sum(pl.col("amount")), weighted_amount=cents_sum(pl.col("weighted")))
        .with_columns(overdue=pl.col("month") < pl.lit(this_month))
        .sort("month")
        .collect()
    )


def compute_ageing(ds: Dataset, period: Period, days: int = DEFAULT_AGEING_DAYS) -> pl.DataFrame:
    """Deals open at the period end that have been in their stage longer than ``days``, oldest first."""
    end = period.end_ts
    return (
        stage_at(ds, period, open_at(ds, period))
        .with_columns(
            days_in_stage=(pl.lit(end) - pl.coalesce("stage_since", "created_at")).dt.total_microseconds() / _DAY_US
        )
        .filter(pl.col("days_in_stage") > days)
        .sort("days_in_stage", descending=True)
        .join(ds.customers.select("customer_id", customer_name="name"), on="customer_id", how="left",
              maintain_order="left")
        .select("opportunity_id", "customer_id", "customer_name", "owner", "team", "region", "product", "amount",
                pl.col("stage_now").alias("stage"), "days_in_stage", "created_at", "expected_close_date")
        .collect()
    )


def stage_history(ds: Dataset, period: Period, ids: pl.LazyFrame) -> pl.LazyFrame:
    """``deal_key`` -> ``history``: 'lead 2026-01-02 → proposal 2026-01-10 → won 2026-02-01' (to the period end),
    for the deals whose ``deal_key`` is in ``ids``."""
    return (
        ds.stages.join(ids, on="deal_key", how="semi")
        .filter(pl.col("entered_at") < period.end_ts)
        .sort("deal_key", "entered_at", "position")
        .group_by("deal_key", maintain_order=True)
        # a list per deal joined afterwards: much faster than a string aggregation in the group-by
        .agg(history=pl.format("{} {}", pl.col("stage"), pl.col("entered_at").dt.strftime("%Y-%m-%d")))
        .with_columns(pl.col("history").list.join(" → "))
    )


@dataclass(frozen=True)
class DealDrill:
    """Which deals a chart selection points at: funnel steps (1-based) and/or a breakdown value."""

    steps: tuple[int, ...] = ()
    by: str | None = None
    values: tuple[str, ...] = ()


def _selected(ds: Dataset, period: Period, mode: FunnelMode, drill: DealDrill) -> pl.LazyFrame:
    """The deals a selection points at (rows of ``ds.opportunities``; in snapshot mode with their stage at the
    period end): see deals_behind."""
    if mode == "snapshot":
        stages = stage_set(ds.pipeline_stages)
        deals = stage_at(ds, period, open_at(ds, period))
        if drill.steps:
            names = [stages.open[s - 1] for s in drill.steps if 0 < s <= len(stages.open)]
            deals = deals.filter(pl.col("stage_now").is_in(names))
    else:
        deals = reached_levels(ds, period, mode)
        if drill.steps:
            deals = deals.filter(pl.col("level") >= min(drill.steps))
    if drill.by and drill.values:
        deals = deals.filter(pl.col(drill.by).fill_null("(none)").is_in(list(drill.values)))
    return deals


_ORDER = ("created_at", "opportunity_id")
"""The order of a deal list: oldest first."""


def _described(ds: Dataset, period: Period, deals: pl.LazyFrame) -> pl.DataFrame:
    """``deals`` (with their stage at the period end) as a deal list: customer name, state at the period end,
    stage history; oldest first."""
    status_then = (
        pl.when(one_of("status", CLOSED) & (pl.col("closed_at") < period.end_ts))
        .then(pl.col("status")).otherwise(pl.lit("open"))
    )
    deals = deals.with_columns(status_at_end=status_then).sort(*_ORDER)
    history = stage_history(ds, period, deals.select("deal_key"))
    return (
        deals.join(history, on="deal_key", how="left", maintain_order="left")
        .join(ds.customers.select("customer_id", customer_name="name"), on="customer_id", how="left",
              maintain_order="left")
        .select(
            "opportunity_id", "customer_id", "customer_name", "owner", "team", "region", "product", "source", "amount",
            "created_at", "expected_close_date", pl.col("status_at_end").alias("status"),
            pl.when(pl.col("status_at_end") == "open").then(pl.col("stage_now")).otherwise(pl.col("status_at_end"))
            .alias("stage"),
            pl.when(pl.col("status_at_end") != "open").then(pl.col("closed_at")).alias("closed_at"),
            pl.when(pl.col("status_at_end") == "lost").then(pl.col("lost_reason")).alias("lost_reason"),
            "history",
        )
        .collect()
    )


def deals_behind(ds: Dataset, period: Period, mode: FunnelMode = "cohort", drill: DealDrill | None = None) -> pl.DataFrame:
    """The deals behind a funnel selection, with their customer's name, expected close date, current state
    and stage history, oldest first.

    Cohort/strict: deals created in the period whose level reached any selected
    step (or all of the cohort); snapshot: deals open at the period end in a
    selected stage. A breakdown value narrows to that owner/team/...
    """
    deals = _selected(ds, period, mode, drill or DealDrill())
    return _described(ds, period, deals if mode == "snapshot" else stage_at(ds, period, deals))


@dataclass(frozen=True)
class DealList:
    """The first deals of deals_behind (``rows``, in its order and columns) and how many deals it holds in
    all, with their amount: what a page shows of a list that may hold millions of deals."""

    rows: pl.DataFrame
    deals: int
    amount: float

    def estimated_size(self) -> int:
        """Bytes held (Polars' estimate), for a cache's memory budget."""
        return int(self.rows.estimated_size())


def first_deals(ds: Dataset, period: Period, mode: FunnelMode = "cohort", drill: DealDrill | None = None,
                rows: int = 5_000) -> DealList:
    """deals_behind's first ``rows`` deals, its count and its amount, without building the rest: only the
    keys of every selected deal are collected; their rows, stage, history and customer name are looked up
    for the first ``rows`` alone (at 10M deals a funnel holds millions; ``Dataset.deal_rows``)."""
    keys = _selected(ds, period, mode, drill or DealDrill()).select("deal_key", *_ORDER, "amount").collect()
    totals = keys.select(deals=pl.len(), amount=cents_sum(pl.col("amount")))
    first = keys.bottom_k(rows, by=list(_ORDER)).get_column("deal_key")

    deals = ds.deal_rows("opportunities", first).collect()
    looked_up = {"stages": ds.deal_rows("stages", first).collect().lazy(),
                 "customers": ds.customers.filter(pl.col("customer_id").is_in(deals["customer_id"].unique().implode()))}
    shown = replace(ds, narrowed=lambda name: looked_up[name] if name in looked_up else ds.narrowed(name))
    listed = _described(shown, period, stage_at(shown, period, deals.lazy()))
    return DealList(listed, int(totals["deals"][0]), float(totals["amount"][0] or 0.0))
