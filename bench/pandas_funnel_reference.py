"""The Funnel page's tables written plainly in pandas, as a reference for speed and for correctness.

One function per panel of pages/funnel.py (the reports it calls for one filter), each following the
definition in crm.metrics.funnel's docstrings directly: boolean masks, ``groupby``, ``merge``,
``drop_duplicates``, a sort and ``shift`` per deal. It shares no metric code with crm (only the
Filters and Period objects, plain data), so a disagreement points at a bug in one of the two. The
12-month KPI trend (the page's sales-cycle / win-rate chart) comes from bench/pandas_reference.py.

Computed: the cohort funnel (reached, amount, step and cumulative conversion, dropped), the same per
owner, the deals behind it (state at the period end and stage history), stage velocity (median and
p75 days), win / loss by owner with the previous period's win rate, lost reasons with the previous
period, the weighted forecast by expected close month, and the deals stuck in their stage.

Money is summed as crm.metrics.money defines it: each value rounded to whole cents (half to even),
the cents added as integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pandas_reference as ref
import polars as pl

from crm.filters import Filters, Period, month_periods

_DAY = np.timedelta64(86400, "s")
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class FunnelData:
    """The pandas frames the Funnel page needs: the KPI reference's frames and the full stage history."""

    base: ref.PandasData
    history: pd.DataFrame
    """Every stage-history row (open, won, lost) with position, kind, win_probability and open_step (1..K)."""
    stages: pd.DataFrame
    """pipeline_stages sorted by position, with open_step for the open ones."""


def prepare(raw: dict[str, pl.DataFrame], base: ref.PandasData | None = None) -> FunnelData:
    """From the canonical Polars frames to pandas (``base`` may be an already prepared KPI reference)."""
    base = base or ref.prepare(raw)
    stages = raw["pipeline_stages"].to_pandas().sort_values("position").reset_index(drop=True)
    is_open = stages["kind"] == "open"
    stages["open_step"] = pd.Series(np.nan, index=stages.index)
    stages.loc[is_open, "open_step"] = np.arange(1, int(is_open.sum()) + 1)
    history = raw["opportunity_stages"].to_pandas().merge(stages, on="stage", how="left")
    return FunnelData(base=base, history=history, stages=stages)


def narrow(data: FunnelData, filters: Filters) -> FunnelData:
    """The rows one filter sees: the deals by their own region/product/team/owner (segment: the customer's)."""
    base = ref.narrow(data.base, filters)
    history = data.history
    if filters.is_narrowed():
        history = history[history["opportunity_id"].isin(base.opportunities["opportunity_id"])]
    return FunnelData(base=base, history=history, stages=data.stages)


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time()))


def _bounds(period: Period) -> tuple[pd.Timestamp, pd.Timestamp]:
    return _ts(period.start), _ts(period.end + timedelta(days=1))


DEALS_GRID_ROWS = 5_000
"""The deals the Funnel page's grid holds (pages/funnel.py GRID_ROWS)."""


def money_sum(values: pd.Series) -> float:
    """Σ in whole cents (each value rounded half to even), as crm.metrics.money.cents_sum."""
    return float(np.round(values.to_numpy(dtype=np.float64) * 100).astype(np.int64).sum()) / 100


def _open_stages(data: FunnelData) -> pd.DataFrame:
    return data.stages[data.stages["kind"] == "open"]


# --- cohort funnel -----------------------------------------------------------


def levels(data: FunnelData, period: Period) -> pd.DataFrame:
    """Deals created in the period with ``level``: the funnel steps each reached (1..K+1, K+1 = won)."""
    start, end = _bounds(period)
    deals = data.base.opportunities
    cohort = deals[(deals["created_at"] >= start) & (deals["created_at"] < end)].copy()
    k = len(_open_stages(data))
    rows = data.history[data.history["open_step"].notna() & (data.history["entered_at"] < end)]
    rows = rows[rows["opportunity_id"].isin(cohort["opportunity_id"])]
    top = rows.groupby("opportunity_id")["open_step"].max()
    level = cohort["opportunity_id"].map(top).fillna(1).clip(lower=1).astype(np.int64)
    won = (cohort["status"] == "won") & (cohort["closed_at"] < end)
    cohort["level"] = np.where(won, k + 1, level)
    return cohort


def funnel(data: FunnelData, period: Period, by: str | None = None) -> pd.DataFrame:
    """Cohort funnel: per step (per ``by`` group) reached, amount, step / cumulative conversion, dropped."""
    cohort = levels(data, period)
    names = [*_open_stages(data)["stage"], data.stages.loc[data.stages["kind"] == "won", "stage"].iloc[0]]
    if by:
        cohort[by] = cohort[by].fillna("(none)")
        groups = sorted(cohort[by].unique())
    else:
        groups = [None]
    out = []
    for group in groups:
        deals = cohort if group is None else cohort[cohort[by] == group]
        previous = first = None
        for step, stage in enumerate(names, start=1):
            reached_mask = deals["level"] >= step
            reached = int(reached_mask.sum())
            row = {"step": step, "stage": stage, "reached": reached, "amount": money_sum(deals.loc[reached_mask, "amount"]),
                   "step_conversion": reached / previous if previous else None,
                   "cumulative_conversion": None, "dropped": None if previous is None else previous - reached}
            first = reached if first is None else first
            row["cumulative_conversion"] = reached / first if first else None
            out.append(({by: group} if by else {}) | row)
            previous = reached
    return pd.DataFrame(out)


# --- the stage at the period end ----------------------------------------------


def open_at_end(data: FunnelData, period: Period) -> pd.DataFrame:
    """Deals open at the period end: created before it, and open or closed at or after it."""
    _, end = _bounds(period)
    deals = data.base.opportunities
    keep = (deals["created_at"] < end) & (
        (deals["status"] == "open") | (deals["status"].isin(["won", "lost"]) & (deals["closed_at"] >= end))
    )
    return deals[keep]


def with_stage(data: FunnelData, period: Period, deals: pd.DataFrame) -> pd.DataFrame:
    """``deals`` with stage_now / stage_since / win_probability: their latest open-stage row entered by the
    period end (ties on the moment: the higher position), else the first open stage since creation."""
    _, end = _bounds(period)
    rows = data.history[data.history["open_step"].notna() & (data.history["entered_at"] < end)]
    rows = rows[rows["opportunity_id"].isin(deals["opportunity_id"])]
    current = (
        rows.sort_values(["opportunity_id", "entered_at", "position"], kind="stable")
        .drop_duplicates("opportunity_id", keep="last")[["opportunity_id", "stage", "entered_at"]]
        .rename(columns={"stage": "stage_now", "entered_at": "stage_since"})
    )
    out = deals.merge(current, on="opportunity_id", how="left")
    first = _open_stages(data)["stage"].iloc[0]
    out["stage_now"] = out["stage_now"].fillna(first)
    probability = dict(zip(_open_stages(data)["stage"], _open_stages(data)["win_probability"], strict=True))
    out["win_probability"] = out["stage_now"].map(probability)
    return out


# --- deals grid ------------------------------------------------------------------


def deals(data: FunnelData, period: Period, rows: int = DEALS_GRID_ROWS) -> pd.DataFrame:
    """The first ``rows`` deals of the cohort funnel (no selection) by creation: state at the period end and
    stage history, with the count and amount of every deal of the cohort on each row (``deals_in_all``,
    ``amount_in_all``): the Funnel page's grid and heading."""
    _, end = _bounds(period)
    cohort = with_stage(data, period, levels(data, period))
    totals = (len(cohort), money_sum(cohort["amount"]))
    cohort = cohort.sort_values(["created_at", "opportunity_id"], kind="stable").head(rows)
    closed = cohort["status"].isin(["won", "lost"]) & (cohort["closed_at"] < end)
    status = cohort["status"].where(closed, "open")
    history_rows = data.history[(data.history["entered_at"] < end)
                                & data.history["opportunity_id"].isin(cohort["opportunity_id"])]
    history_rows = history_rows.sort_values(["opportunity_id", "entered_at", "position"], kind="stable")
    history_rows = history_rows.assign(item=history_rows["stage"] + " " + history_rows["entered_at"].dt.strftime("%Y-%m-%d"))
    history = history_rows.groupby("opportunity_id", sort=False)["item"].agg(" → ".join)
    out = cohort[["opportunity_id", "customer_id", "owner", "team", "region", "product", "source", "amount",
                  "created_at"]].copy()
    out["status"] = status
    out["stage"] = cohort["stage_now"].where(status == "open", status)
    out["closed_at"] = cohort["closed_at"].where(status != "open")
    out["lost_reason"] = cohort["lost_reason"].where(status == "lost")
    out["history"] = cohort["opportunity_id"].map(history)
    out["deals_in_all"], out["amount_in_all"] = totals
    return out.reset_index(drop=True)


# --- velocity, win / loss, lost reasons ---------------------------------------------


def stage_velocity(data: FunnelData, period: Period) -> pd.DataFrame:
    """Days in each open stage for deals that left it within the period, whatever their creation
    (entering it to the deal's next history row): deals, median, p75 (linear)."""
    start, end = _bounds(period)
    known = data.base.opportunities["opportunity_id"]
    rows = data.history[data.history["opportunity_id"].isin(known)]
    rows = rows.sort_values(["opportunity_id", "entered_at", "position"], kind="stable", na_position="first")
    next_at = rows.groupby("opportunity_id", sort=False)["entered_at"].shift(-1)
    open_names = list(_open_stages(data)["stage"])
    left = rows[(next_at >= start) & (next_at < end) & rows["stage"].isin(open_names)]
    days = (next_at[left.index] - left["entered_at"]) / _DAY
    stats = days.groupby(left["stage"]).agg(["size", lambda s: s.quantile(0.5), lambda s: s.quantile(0.75)])
    stats.columns = ["deals", "median_days", "p75_days"]
    out = pd.DataFrame({"step": range(1, len(open_names) + 1), "stage": open_names})
    out = out.merge(stats, left_on="stage", right_index=True, how="left")
    out["deals"] = out["deals"].fillna(0).astype(np.int64)
    return out


def _closed_in(data: FunnelData, period: Period) -> pd.DataFrame:
    start, end = _bounds(period)
    deals = data.base.opportunities
    return deals[(deals["closed_at"] >= start) & (deals["closed_at"] < end) & deals["status"].isin(["won", "lost"])]


def win_loss(data: FunnelData, period: Period, by: str = "owner") -> pd.DataFrame:
    """Per owner over deals closed in the period: won, lost, win rate, revenue won, amount lost; the
    previous period's win rate and the change. Worst win rate first."""
    def summary(p: Period) -> pd.DataFrame:
        closed = _closed_in(data, p).assign(key=lambda d: d[by].fillna("(none)"))
        rows = []
        for key, group in closed.groupby("key"):
            won, lost = group["status"] == "won", group["status"] == "lost"
            rows.append({by: key, "won": int(won.sum()), "lost": int(lost.sum()),
                         "revenue_won": money_sum(group.loc[won, "amount"]),
                         "amount_lost": money_sum(group.loc[lost, "amount"])})
        out = pd.DataFrame(rows, columns=[by, "won", "lost", "revenue_won", "amount_lost"])
        out["win_rate"] = out["won"] / (out["won"] + out["lost"])
        return out

    now, before = summary(period), summary(period.previous())
    out = now.merge(before[[by, "win_rate"]].rename(columns={"win_rate": "previous_win_rate"}), on=by, how="left")
    out["change"] = out["win_rate"] - out["previous_win_rate"]
    return out.sort_values(["win_rate", by], kind="stable").reset_index(drop=True)


def lost_reasons(data: FunnelData, period: Period) -> pd.DataFrame:
    """Lost reasons over deals lost in the period: deals, amount, share; the previous period's; change."""
    def summary(p: Period) -> pd.DataFrame:
        lost = _closed_in(data, p)
        lost = lost[lost["status"] == "lost"].assign(reason=lambda d: d["lost_reason"].fillna("(not given)"))
        rows = [{"lost_reason": k, "deals": len(g), "amount": money_sum(g["amount"])} for k, g in lost.groupby("reason")]
        return pd.DataFrame(rows, columns=["lost_reason", "deals", "amount"])

    now, before = summary(period), summary(period.previous())
    out = now.merge(before.rename(columns={"deals": "previous_deals", "amount": "previous_amount"}), on="lost_reason",
                    how="outer")
    out[["deals", "previous_deals"]] = out[["deals", "previous_deals"]].fillna(0).astype(np.int64)
    out[["amount", "previous_amount"]] = out[["amount", "previous_amount"]].fillna(0.0)
    total = int(now["deals"].sum())
    out["share"] = out["deals"] / total if total else np.nan
    out["change"] = out["deals"] - out["previous_deals"]
    return out.sort_values(["deals", "amount", "lost_reason"], ascending=[False, False, True], kind="stable") \
        .reset_index(drop=True)


# --- forecast and ageing ----------------------------------------------------------------


def median_cycle_days(data: FunnelData, period: Period) -> float | None:
    """Median days created → won over deals won in the period; if none, over all won by its end."""
    start, end = _bounds(period)
    deals = data.base.opportunities
    won = deals[deals["status"] == "won"]
    days = (won["closed_at"] - won["created_at"]) / _DAY
    in_period = days[(won["closed_at"] >= start) & (won["closed_at"] < end)]
    if len(in_period.dropna()):
        return float(in_period.median())
    overall = days[won["closed_at"] < end].dropna()
    return float(overall.median()) if len(overall) else None


def forecast(data: FunnelData, period: Period) -> pd.DataFrame:
    """Deals open at the period end by expected close month (expected_close_date, else created + the
    median cycle): deals, amount, weighted amount (amount x the stage's win probability); overdue."""
    cycle = median_cycle_days(data, period) or 0.0
    deals = with_stage(data, period, open_at_end(data, period))
    fallback = (deals["created_at"] + pd.to_timedelta(int(cycle * DAY_US), unit="us")).dt.normalize()
    expected = pd.to_datetime(deals["expected_close_date"]).fillna(fallback)
    deals = deals.assign(month=expected.dt.to_period("M").dt.to_timestamp(),
                         weighted=deals["amount"] * deals["win_probability"].fillna(0.0))
    rows = [{"month": month.date(), "deals": len(g), "amount": money_sum(g["amount"]),
             "weighted_amount": money_sum(g["weighted"])} for month, g in deals.groupby("month")]
    out = pd.DataFrame(rows, columns=["month", "deals", "amount", "weighted_amount"])
    out["overdue"] = out["month"] < period.end.replace(day=1)
    return out


def ageing(data: FunnelData, period: Period, days: int = 30) -> pd.DataFrame:
    """Deals open at the period end in their stage for more than ``days`` days, oldest first."""
    _, end = _bounds(period)
    deals = with_stage(data, period, open_at_end(data, period))
    since = deals["stage_since"].fillna(deals["created_at"])
    deals = deals.assign(days_in_stage=(end - since) / _DAY, stage=deals["stage_now"])
    out = deals[deals["days_in_stage"] > days].sort_values(["days_in_stage", "opportunity_id"], ascending=[False, True])
    return out[["opportunity_id", "customer_id", "owner", "team", "region", "product", "amount", "stage",
                "days_in_stage", "created_at", "expected_close_date"]].reset_index(drop=True)


SALES_TREND_KEYS = ("revenue_won", "new_opportunities", "win_rate", "sales_cycle_days")


def win_cycle_trend(data: ref.PandasData, filters: Filters, months: int = 12) -> list[dict]:
    """The sales part of the monthly KPI trend (win rate, sales cycle, revenue won, new deals) for the
    ``months`` calendar months ending with the period's month, as bench/pandas_reference.metrics
    computes it, without the other areas."""
    ds = ref.narrow(data, filters.with_period(Period(filters.period.end, filters.period.end)))
    deals = ds.opportunities
    rows = []
    for p in month_periods(filters.period.end, months):
        start, end = ref._ts(p.start), ref._ts(p.end + timedelta(days=1))
        closed_in = (deals["closed_at"] >= start) & (deals["closed_at"] < end)
        won = deals[closed_in & (deals["status"] == "won")]
        lost = deals[closed_in & (deals["status"] == "lost")]
        rows.append({
            "month": p.start,
            "revenue_won": float(won["amount"].sum()),
            "new_opportunities": int(((deals["created_at"] >= start) & (deals["created_at"] < end)).sum()),
            "win_rate": len(won) / (len(won) + len(lost)) if len(won) + len(lost) else None,
            "sales_cycle_days": ref._none(((won["closed_at"] - won["created_at"]) / ref._DAY).median()) if len(won) else None,
        })
    return rows


# --- the page ------------------------------------------------------------------------------

PANELS: dict[str, Callable[[FunnelData, Filters], object]] = {
    "funnel": lambda d, f: funnel(d, f.period),
    "funnel by owner": lambda d, f: funnel(d, f.period, "owner"),
    "deals": lambda d, f: deals(d, f.period),
    "stage_velocity": lambda d, f: stage_velocity(d, f.period),
    "win_cycle_trend (12 months)": lambda d, f: win_cycle_trend(d.base, f),
    "win_loss by owner": lambda d, f: win_loss(d, f.period, "owner"),
    "lost_reasons": lambda d, f: lost_reasons(d, f.period),
    "forecast": lambda d, f: forecast(d, f.period),
    "ageing (30 days)": lambda d, f: ageing(d, f.period, 30),
}
"""The Funnel page's panels for one filter, in page order (keys match bench_pages.FUNNEL_PAGE)."""


def page(data: FunnelData, filters: Filters, timer: Callable[[], float]) -> dict[str, tuple[float, object]]:
    """Every panel for one filter: name -> (seconds, table). Each panel narrows for itself, as crm's
    reports do (the KPI trend narrows inside pandas_reference)."""
    out: dict[str, tuple[float, object]] = {}
    for name, build in PANELS.items():
        started = timer()
        narrowed = data if name.startswith("win_cycle_trend") else narrow(data, filters)
        table = build(narrowed, filters)
        out[name] = (timer() - started, table)
    return out
