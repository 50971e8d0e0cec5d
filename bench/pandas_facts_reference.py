"""Per-customer facts as of a date (crm/customer_facts.py) written plainly in pandas, as a reference for
speed and for correctness.

It follows /work/shared/DESIGN.md ("Active customer", "RFM", "SLA breach rate", the as-of rule) and the
docstring of crm.customer_facts.customer_facts directly: boolean masks, ``groupby``, ``rank``, ``merge``.
It shares no code with crm except the RFM rule tables (plain data: the definition of the segments and
tiers). Activity churn basis, calendar-hour SLA, the default SLA targets.

Money as crm sums it: each amount in whole cents (half to even), the cents added as integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import polars as pl

from crm.metrics.rfm import OTHER_SEGMENT, OTHER_TIER, SEGMENT_RULES, TIER_RULES, Rule

TARGET_HOURS = {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}
RECENT_DAYS = 90
RFM_DAYS = 365
ACTIVE_DAYS = 90


@dataclass(frozen=True)
class FactsData:
    """The pandas frames the reference reads."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    tickets: pd.DataFrame
    surveys: pd.DataFrame
    deals: pd.DataFrame
    interactions: pd.DataFrame


def prepare(raw: dict[str, pl.DataFrame]) -> FactsData:
    """From the canonical Polars frames to pandas (once per data version); survey scores off their scale
    are not responses."""
    surveys = raw["survey_responses"].filter(
        ((pl.col("kind") == "nps") & pl.col("score").is_between(0, 10))
        | ((pl.col("kind") == "csat") & pl.col("score").is_between(1, 5)))
    orders = raw["orders"].select("customer_id", "ordered_at", "amount").to_pandas()
    orders["cents"] = np.rint(orders["amount"].to_numpy() * 100).astype(np.int64)
    orders["day"] = orders["ordered_at"].dt.normalize()
    deals = raw["opportunities"].select("customer_id", "status", "created_at", "closed_at", "amount").to_pandas()
    deals["cents"] = np.rint(deals["amount"].fillna(0).to_numpy() * 100).astype(np.int64)
    return FactsData(
        customers=raw["customers"].select("customer_id", "name", "segment", "region", "industry", "owner",
                                          "created_at").to_pandas(),
        orders=orders,
        tickets=raw["tickets"].select("customer_id", "created_at", "first_response_at", "resolved_at",
                                      "priority").to_pandas(),
        surveys=surveys.select("response_id", "customer_id", "kind", "score", "responded_at").to_pandas(),
        deals=deals,
        interactions=raw["interactions"].select("customer_id", "occurred_at").to_pandas(),
    )


def _quintile(values: pd.Series) -> pd.Series:
    """⌈5 × r / n⌉ with r the average rank (ties share it), in integers: 2r is whole."""
    n = len(values)
    twice = (values.rank(method="average") * 2).round().astype(np.int64)
    return (5 * twice + 2 * n - 1) // (2 * n)


def _first_match(rules: tuple[Rule, ...], otherwise: str, r: int, f: int, m: int) -> str:
    return next((rule.name for rule in rules if rule.matches(r, f, m)), otherwise)


def customer_facts(data: FactsData, as_of: date) -> pd.DataFrame:
    """The facts of crm.customer_facts (activity basis, calendar hours), one row per customer, by id."""
    end = datetime.combine(as_of + timedelta(days=1), time())
    day = pd.Timestamp(as_of)
    c = data.customers
    out = c[c["created_at"].isna() | (c["created_at"] < end)].copy()
    out["tenure_days"] = (day - out["created_at"].dt.normalize()).dt.days.astype("Int64")

    o = data.orders[data.orders["ordered_at"] < end]
    o = o[o["customer_id"].notna()]
    recent = o["day"] >= day - pd.Timedelta(days=RECENT_DAYS - 1)
    before = (o["day"] >= day - pd.Timedelta(days=2 * RECENT_DAYS - 1)) & ~recent
    per = o.groupby("customer_id").agg(last_order_date=("day", "max"), lifetime_cents=("cents", "sum"))
    per["orders_90d"] = o[recent].groupby("customer_id").size()
    per["recent_cents"] = o[recent].groupby("customer_id")["cents"].sum()
    per["before_cents"] = o[before].groupby("customer_id")["cents"].sum()
    window = o[o["day"] >= day - pd.Timedelta(days=RFM_DAYS - 1)]
    rfm = window.groupby("customer_id").agg(last=("day", "max"), frequency=("day", "size"), m_cents=("cents", "sum"))
    rfm["recency_days"] = (day - rfm["last"]).dt.days
    if len(rfm):
        rfm["r"] = _quintile(-rfm["recency_days"])
        rfm["f"] = _quintile(rfm["frequency"])
        rfm["m"] = _quintile(rfm["m_cents"])
        scores = list(zip(rfm["r"], rfm["f"], rfm["m"], strict=True))
        rfm["rfm_segment"] = [_first_match(SEGMENT_RULES, OTHER_SEGMENT, *s) for s in scores]
        rfm["tier"] = [_first_match(TIER_RULES, OTHER_TIER, *s) for s in scores]

    t = data.tickets
    t = t[(t["created_at"] >= end - pd.Timedelta(days=RECENT_DAYS)) & (t["created_at"] < end)].copy()
    answered = t["first_response_at"].where(t["first_response_at"] < end, t["resolved_at"].where(t["resolved_at"] < end))
    target = t["priority"].map(TARGET_HOURS).fillna(TARGET_HOURS["normal"])
    waited = ((answered.fillna(pd.Timestamp(end)) - t["created_at"]) / pd.Timedelta(hours=1))
    t["breach"] = waited > target
    tickets = t.groupby("customer_id").agg(tickets_90d=("breach", "size"), sla_breaches_90d=("breach", "sum"))

    i = data.interactions
    i = i[(i["occurred_at"] >= end - pd.Timedelta(days=RECENT_DAYS)) & (i["occurred_at"] < end)]
    interactions = pd.DataFrame({
        "interactions_90d": i.groupby("customer_id").size(),
        "interactions_30d": i[i["occurred_at"] >= end - pd.Timedelta(days=30)].groupby("customer_id").size(),
    })

    s = data.surveys[data.surveys["responded_at"] < end].sort_values(["responded_at", "response_id"])
    last = s.groupby(["customer_id", "kind"]).tail(1).set_index("customer_id")

    d = data.deals
    is_open = (d["created_at"] < end) & ((d["status"] == "open")
                                          | (d["status"].isin(["won", "lost"]) & (d["closed_at"] >= end)))
    deals = d[is_open].groupby("customer_id").agg(open_deals=("cents", "size"), open_cents=("cents", "sum"))

    out = out.join(per, on="customer_id").join(rfm[[c for c in rfm.columns if c in (
        "recency_days", "frequency", "m_cents", "r", "f", "m", "rfm_segment", "tier")]], on="customer_id")
    out = out.join(tickets, on="customer_id").join(interactions, on="customer_id").join(deals, on="customer_id")
    for kind in ("nps", "csat"):
        part = last[last["kind"] == kind]
        out = out.join(part[["score", "responded_at"]].rename(
            columns={"score": f"last_{kind}", "responded_at": f"last_{kind}_at"}), on="customer_id")
    counts = ["orders_90d", "tickets_90d", "sla_breaches_90d", "interactions_30d", "interactions_90d", "open_deals",
              "lifetime_cents", "recent_cents", "before_cents", "open_cents"]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    out["active"] = out["last_order_date"] >= day - pd.Timedelta(days=ACTIVE_DAYS - 1)
    out["monetary"] = out["m_cents"] / 100
    out["lifetime_revenue"] = out["lifetime_cents"] / 100
    out["order_value_90d"] = out["recent_cents"] / 100
    out["order_value_prev_90d"] = out["before_cents"] / 100
    out["order_value_change"] = (out["recent_cents"] - out["before_cents"]) / 100
    out["order_value_change_share"] = ((out["recent_cents"] - out["before_cents"]) / out["before_cents"]).where(
        out["before_cents"] > 0)
    out["open_deal_amount"] = out["open_cents"] / 100
    out["last_order_date"] = out["last_order_date"].dt.date
    return out.sort_values("customer_id").reset_index(drop=True)
