"""The Segments page's tables (and the Churn page's monthly trend) written plainly in pandas, as a
reference for speed and for correctness.

Each function follows the definitions in /work/shared/DESIGN.md ("RFM", "Active customer", "Churn
rate") and the docstrings of crm/metrics/rfm.py and crm/metrics/churn.py directly: boolean masks,
``groupby``, ``rank``, ``merge``, sets of ids per day. It shares no metric code with crm: only the
Filters, Period and SegmentRule objects (plain data: the period, the dimensions, the shape's
corners) and the rule tables ``SEGMENT_RULES`` / ``TIER_RULES`` (plain data, the definition of the
segments), so a disagreement points at a bug in one of the two.

Computed: RFM scores per customer as of a day (R, F, M; scores ⌈5 × average rank / n⌉; segment and
tier by the first matching rule), the summary per segment and per tier, the transition matrix
between the previous period's end and this one's, the monthly churn trend with new / returning /
reactivated customers, and the customers inside a box or a lasso on two RFM axes.

Money is summed as crm.money defines it: each value rounded to whole cents (half to even),
the cents added as integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl

from crm.filters import Filters, Period
from crm.metrics.rfm import OTHER_SEGMENT, OTHER_TIER, SEGMENT_RULES, TIER_RULES, Rule
from crm.segments import SegmentRule

RFM_WINDOW_DAYS = 365
ACTIVE_WINDOW_DAYS = 90
NOT_SCORED = "Not scored"
SEGMENT_ORDER = [r.name for r in SEGMENT_RULES] + [OTHER_SEGMENT]


@dataclass(frozen=True)
class SegmentsData:
    """The pandas frames the reference reads."""

    orders: pd.DataFrame
    """customer_id, order_date (midnight of ordered_at), amount, and the customer's region, segment
    and owner (joined once, as crm's enrich does)."""


def prepare(raw: dict[str, pl.DataFrame]) -> SegmentsData:
    """From the canonical Polars frames to pandas (once per data version)."""
    customers = raw["customers"].select("customer_id", "region", "segment", "owner").to_pandas()
    orders = raw["orders"].select("customer_id", "ordered_at", "amount").to_pandas()
    orders["order_date"] = orders["ordered_at"].dt.normalize()
    orders = orders.drop(columns="ordered_at").merge(customers, on="customer_id", how="left")
    return SegmentsData(orders=orders)


def narrow(data: SegmentsData, filters: Filters) -> pd.DataFrame:
    """The orders one filter sees: by the customer's region, segment and owner (orders have no product
    or team of their own; a product filter is not supported here)."""
    if filters.products:
        raise ValueError("the pandas segments reference does not narrow orders by product")
    orders = data.orders
    mask = pd.Series(True, index=orders.index)
    for column, values in (("region", filters.regions), ("segment", filters.segments), ("owner", filters.owners)):
        if values:
            mask &= orders[column].isin(values)
    return orders[mask] if filters.is_narrowed() else orders


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(day)


def money_sum_cents(values: pd.Series) -> np.ndarray:
    """Each amount in whole cents (half to even), as integers."""
    return np.round(values.to_numpy(dtype=np.float64) * 100).astype(np.int64)


# --- RFM ---------------------------------------------------------------------------------------


def _first_match(scores: pd.DataFrame, rules: tuple[Rule, ...], otherwise: str) -> np.ndarray:
    conditions = [scores["r"].between(*rule.r) & scores["f"].between(*rule.f) & scores["m"].between(*rule.m)
                  for rule in rules]
    return np.select(conditions, [rule.name for rule in rules], default=otherwise)


def rfm_scores(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One row per customer with an order dated within the 365 days ending on ``as_of``: customer_id,
    recency_days, frequency, monetary, r, f, m, segment, tier; sorted by customer_id."""
    first, end = _ts(as_of - timedelta(days=RFM_WINDOW_DAYS - 1)), _ts(as_of)
    window = orders[(orders["order_date"] >= first) & (orders["order_date"] <= end) & orders["customer_id"].notna()]
    window = window.assign(cents=money_sum_cents(window["amount"]))
    grouped = window.groupby("customer_id", sort=True)
    out = pd.DataFrame({
        "recency_days": (end - grouped["order_date"].max()).dt.days.astype(np.int64),
        "frequency": grouped.size().astype(np.int64),
        "monetary": grouped["cents"].sum() / 100,
    }).reset_index()
    n = len(out)
    for column, letter, ascending in (("recency_days", "r", False), ("frequency", "f", True), ("monetary", "m", True)):
        rank = out[column].rank(method="average", ascending=ascending)  # the better value ranks higher
        out[letter] = np.ceil(5 * rank / n).astype(np.int8)
    out["segment"] = _first_match(out, SEGMENT_RULES, OTHER_SEGMENT)
    out["tier"] = _first_match(out, TIER_RULES, OTHER_TIER)
    return out


def segment_summary(scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per segment (or tier) in rule order: customers, revenue, revenue_share, average recency days,
    frequency and monetary."""
    order = SEGMENT_ORDER if by == "segment" else [r.name for r in TIER_RULES] + [OTHER_TIER]
    total = scores["monetary"].sum()
    rows = []
    for name in order:
        group = scores[scores[by] == name]
        if group.empty:
            continue
        revenue = group["monetary"].sum()
        rows.append({by: name, "customers": len(group), "revenue": round(revenue, 2),
                     "avg_recency_days": group["recency_days"].mean(), "avg_frequency": group["frequency"].mean(),
                     "avg_monetary": group["monetary"].mean(),
                     "revenue_share": revenue / total if total > 0 else None})
    return pd.DataFrame(rows)


def transitions(orders: pd.DataFrame, period: Period, now: pd.DataFrame | None = None) -> pd.DataFrame:
    """Customers per (segment at the previous period's end, segment at this period's end), "Not scored"
    for a side without an order in the 365 days before; share of the from-segment. In rule order.
    ``now``: this end's scores when already computed (the page reuses them)."""
    now = rfm_scores(orders, period.end) if now is None else now
    before = rfm_scores(orders, period.previous().end)
    joined = now[["customer_id", "segment"]].merge(
        before[["customer_id", "segment"]].rename(columns={"segment": "previous_segment"}), on="customer_id",
        how="outer")
    joined = joined.fillna({"segment": NOT_SCORED, "previous_segment": NOT_SCORED})
    counts = joined.groupby(["previous_segment", "segment"]).size().rename("customers").reset_index()
    counts = counts.rename(columns={"previous_segment": "from_segment", "segment": "to_segment"})
    counts["share_of_from"] = counts["customers"] / counts.groupby("from_segment")["customers"].transform("sum")
    rank = {name: i for i, name in enumerate([*SEGMENT_ORDER, NOT_SCORED])}
    counts["_a"], counts["_b"] = counts["from_segment"].map(rank), counts["to_segment"].map(rank)
    return counts.sort_values(["_a", "_b"]).drop(columns=["_a", "_b"]).reset_index(drop=True)


# --- churn trend -------------------------------------------------------------------------------------


def active_on(orders: pd.DataFrame, day: date, window_days: int = ACTIVE_WINDOW_DAYS) -> pd.Index:
    """Customers with an order dated within the ``window_days`` days ending on ``day``."""
    first = _ts(day - timedelta(days=window_days - 1))
    dates = orders["order_date"]
    return pd.Index(orders.loc[(dates >= first) & (dates <= _ts(day)), "customer_id"].unique())


def months(period: Period) -> list[Period]:
    """Calendar months overlapping the period, the first and last cut to it."""
    out, day = [], period.start
    while day <= period.end:
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        out.append(Period(day, min(following - timedelta(days=1), period.end)))
        day = following
    return out


def churn_trend(orders: pd.DataFrame, period: Period, window_days: int = ACTIVE_WINDOW_DAYS) -> pd.DataFrame:
    """Per month: active the day before it, active on its last day, churned (the first and not the
    second), churn rate; new (first order ever in the month), returning (ordered in the month, older,
    active the day before), reactivated (ordered in the month, older, not active the day before)."""
    first_order = orders.groupby("customer_id")["order_date"].min()
    rows = []
    for month in months(period):
        before = active_on(orders, month.start - timedelta(days=1), window_days)
        after = active_on(orders, month.end, window_days)
        churned = int((~before.isin(after)).sum())
        dates = orders["order_date"]
        ordered = pd.Index(orders.loc[(dates >= _ts(month.start)) & (dates <= _ts(month.end)), "customer_id"].unique())
        is_new = (first_order.reindex(ordered) >= _ts(month.start)).to_numpy()
        was_active = ordered.isin(before)
        rows.append({
            "month": month.start, "month_end": month.end, "active_before": len(before), "active_customers": len(after),
            "churned": churned, "churn_rate": churned / len(before) if len(before) else None,
            "new": int(is_new.sum()), "returning": int((~is_new & was_active).sum()),
            "reactivated": int((~is_new & ~was_active).sum()),
        })
    return pd.DataFrame(rows)


# --- box and lasso ------------------------------------------------------------------------------------


def in_box(scores: pd.DataFrame, x: str, y: str, box: tuple[float, float, float, float]) -> pd.Series:
    """Customers with x0 <= x <= x1 and y0 <= y <= y1."""
    x0, x1, y0, y1 = box
    return scores[x].between(x0, x1) & scores[y].between(y0, y1)


def in_lasso(scores: pd.DataFrame, x: str, y: str, polygon: tuple[tuple[float, float], ...],
             log: tuple[str, ...] = ()) -> pd.Series:
    """Customers inside the polygon by the even-odd rule (a horizontal ray to the left of the point
    crosses an odd number of edges), within its bounding box. An axis in ``log`` was drawn on a log
    scale: the polygon's edges are straight in log10 there, so that axis is tested in log10 (values
    at or below 0 are outside)."""
    px, py = scores[x].to_numpy(dtype=np.float64), scores[y].to_numpy(dtype=np.float64)
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    bounded = (px >= min(xs)) & (px <= max(xs)) & (py >= min(ys)) & (py <= max(ys))
    cx, cy = np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # the same log10 for points and corners
        if x in log:
            bounded &= px > 0
            px, cx = np.log10(px), np.log10(cx)
        if y in log:
            bounded &= py > 0
            py, cy = np.log10(py), np.log10(cy)
    corners = list(zip(cx.tolist(), cy.tolist(), strict=True))
    inside = np.zeros(len(px), dtype=bool)
    for (xi, yi), (xj, yj) in zip(corners, corners[1:] + corners[:1], strict=True):
        if yi == yj:
            continue
        straddles = (py < yi) != (py < yj)
        inside ^= straddles & (px < (xj - xi) * (py - yi) / (yj - yi) + xi)
    return pd.Series(inside & bounded, index=scores.index)


def select(scores: pd.DataFrame, rule: SegmentRule) -> pd.Series:
    """The ids (sorted) of the customers inside the rule's box or lasso."""
    if rule.box is not None:
        mask = in_box(scores, rule.x, rule.y, rule.box)
    else:
        mask = in_lasso(scores, rule.x, rule.y, rule.lasso, rule.log)
    return scores.loc[mask, "customer_id"].sort_values()


# --- the page --------------------------------------------------------------------------------------------

PANELS = ("RFM scores", "segment_summary (tier)", "segment_summary (segment)", "transitions", "churn_trend (Churn page)")
"""The panels the reference computes, by bench_segments.SEGMENTS_PAGE's names."""


def page(data: SegmentsData, filters: Filters, timer: Callable[[], float]) -> dict[str, tuple[float, object]]:
    """Every panel for one filter: name -> (seconds, table). RFM is scored once and reused by the
    summaries and the transition matrix (as crm's memo does within a page)."""
    out: dict[str, tuple[float, object]] = {}
    started = timer()
    orders = narrow(data, filters)
    scores = rfm_scores(orders, filters.period.end)
    out["RFM scores"] = (timer() - started, scores)
    for by in ("tier", "segment"):
        started = timer()
        summary = segment_summary(scores, by)
        out[f"segment_summary ({by})"] = (timer() - started, summary)
    started = timer()
    moves = transitions(orders, filters.period, scores)
    out["transitions"] = (timer() - started, moves)
    started = timer()
    trend = churn_trend(narrow(data, filters), filters.period)
    out["churn_trend (Churn page)"] = (timer() - started, trend)
    return out

