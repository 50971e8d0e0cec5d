"""The heavy tables of the Satisfaction and Service pages written plainly in pandas: a reference for
speed and for correctness.

Each function follows the definition in crm.metrics.satisfaction / crm.metrics.service docstrings
directly (boolean masks, ``groupby``, ``merge``, a loop over the buckets of a trend) and shares no
metric code with crm (only the Filters and Period objects, plain data, and the SLA defaults), so a
disagreement points at a bug in one of the two.

Computed: NPS and CSAT per month of the period with n, parts, 95% interval (NPS: normal
approximation of the +1/0/−1 mean; CSAT: Wilson) and the previous period moved onto this period's
months; the drill by product (CSAT and NPS side by side, worst CSAT first); per week of the period
tickets created / resolved, backlog at its end, p50/p90 first response and resolution (calendar
hours), SLA breach rate, reopened; the same percentiles per support team; SLA per priority.
Not computed: business hours (crm's ``basis="business"`` panels), the agent drill, the responses
list, "what moved", the service distribution and the watchlist.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pandas_reference as ref
import polars as pl

from crm.filters import Filters, Period

SLA_TARGET_HOURS = ref.SLA_TARGET_HOURS
LOW_CONFIDENCE_N = 30
Z = 1.96
_HOUR = np.timedelta64(3600, "s")
SERVICE_COLUMNS = {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "agent"}


@dataclass(frozen=True)
class ServiceData:
    """Tickets and survey responses as pandas frames, with the customer's region and segment."""

    tickets: pd.DataFrame
    surveys: pd.DataFrame


def prepare(raw: dict[str, pl.DataFrame]) -> ServiceData:
    """From the canonical Polars frames (as read from the store) to pandas, durations in calendar hours."""
    customers = raw["customers"].to_pandas()[["customer_id", "region", "segment"]]
    tickets = raw["tickets"].to_pandas().merge(customers, on="customer_id", how="left")
    tickets["first_answer_at"] = tickets["first_response_at"].fillna(tickets["resolved_at"])
    tickets["first_response_hours"] = (tickets["first_answer_at"] - tickets["created_at"]) / _HOUR
    tickets["resolution_hours"] = (tickets["resolved_at"] - tickets["created_at"]) / _HOUR
    tickets["target_hours"] = tickets["priority"].map(SLA_TARGET_HOURS).fillna(SLA_TARGET_HOURS["normal"])
    surveys = raw["survey_responses"].to_pandas().merge(customers, on="customer_id", how="left")
    return ServiceData(tickets=tickets, surveys=surveys)


def narrow(data: ServiceData, filters: Filters) -> ServiceData:
    """The rows one filter sees (owner = the ticket's / response's agent)."""
    return ServiceData(tickets=ref._narrow(data.tickets, SERVICE_COLUMNS, filters),
                       surveys=ref._narrow(data.surveys, SERVICE_COLUMNS, filters))


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time()))


def _bounds(period: Period) -> tuple[pd.Timestamp, pd.Timestamp]:
    return _ts(period.start), _ts(period.end + timedelta(days=1))


# --- satisfaction --------------------------------------------------------------------------


def _responses(data: ServiceData, period: Period, kind: str) -> pd.DataFrame:
    start, end = _bounds(period)
    s = data.surveys
    return s[(s["kind"] == kind) & (s["responded_at"] >= start) & (s["responded_at"] < end)]


def score_stats(scores: pd.Series, kind: str) -> dict[str, object]:
    """n, the parts, the score and its 95% interval, low confidence (n < 30)."""
    n = len(scores)
    if kind == "nps":
        promoters, detractors = int((scores >= 9).sum()), int((scores <= 6).sum())
        mean = (promoters - detractors) / n
        variance = max((promoters + detractors) / n - mean**2, 0.0)
        half = Z * 100 * np.sqrt(variance / n)
        score = 100 * mean
        out: dict[str, object] = {"n": n, "promoters": promoters, "passives": n - promoters - detractors,
                                  "detractors": detractors}
        out.update(score=score, low=score - half, high=score + half)
    else:
        satisfied = int((scores >= 4).sum())
        p = satisfied / n
        denom = 1 + Z**2 / n
        centre = (p + Z**2 / (2 * n)) / denom
        half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / denom
        out = {"n": n, "satisfied": satisfied, "score": p, "low": centre - half, "high": centre + half}
    out["low_confidence"] = n < LOW_CONFIDENCE_N
    return out


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_starts(period: Period) -> list[date]:
    starts = [_month_start(period.start)]
    while True:
        year, month = starts[-1].year, starts[-1].month
        following = date(year, month, calendar.monthrange(year, month)[1]) + timedelta(days=1)
        if following > period.end:
            return starts
        starts.append(following)


def score_trend(data: ServiceData, period: Period, kind: str) -> pd.DataFrame:
    """NPS or CSAT per calendar month of the period (months without responses absent)."""
    rows = _responses(data, period, kind)
    month = rows["responded_at"].dt.to_period("M").dt.to_timestamp().dt.date
    out = [{"bucket": m, **score_stats(g["score"], kind)} for m, g in rows.groupby(month)]
    return pd.DataFrame(out)


def score_trend_with_previous(data: ServiceData, period: Period, kind: str) -> pd.DataFrame:
    """The monthly trend with the same month of the previous period as ``compared_score`` /
    ``compared_n``: for a period of n months, the n months just before, cut like it (Q2 against Q1)."""
    now = score_trend(data, period, kind)
    n = len(_month_starts(period))

    def back(day: date) -> date:
        moved = pd.Timestamp(day) - pd.DateOffset(months=n)
        return (moved + pd.offsets.MonthEnd(0) if pd.Timestamp(day).is_month_end else moved).date()

    before = score_trend(data, Period(back(period.start), back(period.end)), kind)
    if len(before):
        moved = [(pd.Timestamp(b) + pd.DateOffset(months=n)).date() for b in before["bucket"]]
        compared = pd.DataFrame({"bucket": moved, "compared_score": before["score"], "compared_n": before["n"]})
    else:
        compared = pd.DataFrame({"bucket": [], "compared_score": [], "compared_n": []})
    return now.merge(compared, on="bucket", how="left").sort_values("bucket").reset_index(drop=True)


def drill(data: ServiceData, period: Period, level: str = "product", kind: str = "csat") -> pd.DataFrame:
    """CSAT and NPS per ``level`` value side by side (score, interval, n), worst ``kind`` first."""
    parts = []
    for k in ("csat", "nps"):
        rows = _responses(data, period, k)
        keys = rows[level].fillna("(none)")
        stats = [{level: key, **score_stats(g["score"], k)} for key, g in rows.groupby(keys)]
        table = pd.DataFrame(stats, columns=[level, "score", "low", "high", "n"])[[level, "score", "low", "high", "n"]]
        parts.append(table.rename(columns={"score": k, "low": f"{k}_low", "high": f"{k}_high", "n": f"{k}_n"}))
    both = parts[0].merge(parts[1], on=level, how="outer")
    both[["csat_n", "nps_n"]] = both[["csat_n", "nps_n"]].fillna(0).astype(np.int64)
    both["low_confidence"] = both[f"{kind}_n"] < LOW_CONFIDENCE_N
    return both.sort_values([kind, level], na_position="last").reset_index(drop=True)


# --- service ----------------------------------------------------------------------------------


def _breached(tickets: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """First response later than the target, or none before ``end`` while more than the target had passed."""
    response = _response_hours(tickets, end)
    waited = (end - tickets["created_at"]) / _HOUR
    return pd.Series(np.where(response.notna(), response > tickets["target_hours"],
                              waited > tickets["target_hours"]), index=tickets.index)


def _response_hours(tickets: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
    """First response hours as seen at ``end`` (NaN: not answered before it): the recorded response
    before ``end``, else the resolution before it."""
    recorded = (tickets["first_response_at"] - tickets["created_at"]) / _HOUR
    return recorded.where(tickets["first_response_at"] < end,
                          tickets["resolution_hours"].where(tickets["resolved_at"] < end))


def _quantile(values: pd.Series, q: float) -> float | None:
    return float(values.quantile(q)) if len(values) else None


def _times(created: pd.DataFrame, end: pd.Timestamp) -> dict[str, object]:
    first = _response_hours(created, end).dropna()
    resolution = created.loc[created["resolved_at"] < end, "resolution_hours"]
    return {"first_response_p50": _quantile(first, 0.5), "first_response_p90": _quantile(first, 0.9),
            "resolution_p50": _quantile(resolution, 0.5), "resolution_p90": _quantile(resolution, 0.9)}


def week_periods(period: Period) -> list[Period]:
    """The weeks (Monday–Sunday) overlapping the period, cut to it."""
    out, day = [], period.start
    while day <= period.end:
        last = min(day + timedelta(days=6 - day.weekday()), period.end)
        out.append(Period(day, last))
        day = last + timedelta(days=1)
    return out


def service_trend(data: ServiceData, period: Period) -> pd.DataFrame:
    """Per week of the period: created, p50/p90 first response and resolution (calendar hours) and
    SLA breach rate judged at the week's end, reopened, resolved in the week, backlog at its end."""
    t = data.tickets
    rows = []
    for week in week_periods(period):
        start, end = _bounds(week)
        created = t[(t["created_at"] >= start) & (t["created_at"] < end)]
        rows.append({
            "bucket": week.start, "bucket_end": week.end, "created": len(created), **_times(created, end),
            "sla_breach_rate": float(_breached(created, end).mean()) if len(created) else None,
            "reopened": int((created["reopened"].fillna(0) > 0).sum()),
            "resolved": int(((t["resolved_at"] >= start) & (t["resolved_at"] < end)).sum()),
            "backlog": int(((t["created_at"] < end) & (t["resolved_at"].isna() | (t["resolved_at"] >= end))).sum()),
        })
    return pd.DataFrame(rows)


def service_times(data: ServiceData, period: Period, by: str = "team") -> pd.DataFrame:
    """Tickets created in the period per ``by`` group: p50/p90 first response and resolution (calendar
    hours), SLA breach rate, reopened; slowest first response first."""
    start, end = _bounds(period)
    t = data.tickets
    created = t[(t["created_at"] >= start) & (t["created_at"] < end)]
    rows = []
    for key, group in created.groupby(created[by].fillna("(none)")):
        rows.append({by: key, "tickets": len(group), **_times(group, end),
                     "sla_breach_rate": float(_breached(group, end).mean()),
                     "reopened": int((group["reopened"].fillna(0) > 0).sum())})
    out = pd.DataFrame(rows)
    return out.sort_values(["first_response_p50", by], ascending=[False, True], na_position="last").reset_index(drop=True)


def sla_by_priority(data: ServiceData, period: Period) -> pd.DataFrame:
    """Per priority: target hours, tickets created in the period, breached (unknown priority: normal), rate."""
    start, end = _bounds(period)
    t = data.tickets
    created = t[(t["created_at"] >= start) & (t["created_at"] < end)]
    priority = created["priority"].where(created["priority"].isin(list(SLA_TARGET_HOURS)), "normal")
    breached = _breached(created, end)
    rows = []
    for name, target in SLA_TARGET_HOURS.items():
        mine = priority == name
        tickets, hits = int(mine.sum()), int(breached[mine].sum())
        rows.append({"priority": name, "target_hours": target, "tickets": tickets, "breached": hits,
                     "sla_breach_rate": hits / tickets if tickets else None})
    return pd.DataFrame(rows)


# --- the pages' heavy panels ---------------------------------------------------------------------

PANELS: dict[str, Callable[[ServiceData, Filters], pd.DataFrame]] = {
    "nps_trend (month, vs previous)": lambda d, f: score_trend_with_previous(d, f.period, "nps"),
    "csat_trend (month, vs previous)": lambda d, f: score_trend_with_previous(d, f.period, "csat"),
    "satisfaction_drill (product)": lambda d, f: drill(d, f.period, "product", "csat"),
    "service_trend (week)": lambda d, f: service_trend(d, f.period),
    "service_times (team, calendar)": lambda d, f: service_times(d, f.period, "team"),
    "sla (calendar)": lambda d, f: sla_by_priority(d, f.period),
}
"""The heavy panels, keyed like bench_pages' Satisfaction / Service page lists."""


def panels(data: ServiceData, filters: Filters, timer: Callable[[], float]) -> dict[str, tuple[float, pd.DataFrame]]:
    """Every reference panel for one filter: name -> (seconds, table); each narrows for itself."""
    out: dict[str, tuple[float, pd.DataFrame]] = {}
    for name, build in PANELS.items():
        started = timer()
        table = build(narrow(data, filters), filters)
        out[name] = (timer() - started, table)
    return out
