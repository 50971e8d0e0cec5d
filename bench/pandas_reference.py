"""The cockpit KPIs written plainly in pandas, as a reference for speed and for correctness.

It follows docs/DESIGN.md "Metric definitions" directly, one period at a time,
with boolean masks, ``groupby`` and ``drop_duplicates``: the way the numbers
would be computed without crm's tricks (no period buckets, no precomputed
stage intervals). It shares nothing with crm's metric code except the Filters
and Period objects (plain data) and the SLA defaults, so a disagreement points
at a bug in one of the two.

Computed: revenue_won, new_opportunities, won_deals, lost_deals, win_rate,
sales_cycle_days, pipeline_value, weighted_pipeline, open_deals, nps,
nps_responses, csat, csat_responses, tickets_created, first_response_p50/p90_hours,
resolution_p50/p90_hours, sla_breach_rate, reopened_tickets, backlog,
active_customers, churn_rate. Not computed: the business-hours variants (crm
computes five more metrics than this reference, so speed ratios favour pandas).
The weighted pipeline adds each deal's amount x probability in whole cents, as
crm.money defines money sums (since 8fc182e; amounts are whole cents already).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import polars as pl

from crm.filters import Filters, Period, month_periods

SLA_TARGET_HOURS = {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}
ACTIVE_WINDOW_DAYS = 90
KEYS: tuple[str, ...] = (
    "revenue_won", "new_opportunities", "won_deals", "lost_deals", "win_rate", "sales_cycle_days",
    "pipeline_value", "weighted_pipeline", "open_deals", "nps", "nps_responses", "csat", "csat_responses",
    "tickets_created", "first_response_p50_hours", "first_response_p90_hours", "resolution_p50_hours",
    "resolution_p90_hours", "sla_breach_rate", "reopened_tickets", "backlog", "active_customers", "churn_rate",
)
MONEY: frozenset[str] = frozenset({"revenue_won", "pipeline_value", "weighted_pipeline"})
_HOUR = np.timedelta64(3600, "s")
_DAY = np.timedelta64(86400, "s")


@dataclass(frozen=True)
class PandasData:
    """The tables as pandas frames, customer attributes copied onto the facts (like crm.dataset)."""

    opportunities: pd.DataFrame
    history: pd.DataFrame
    pipeline_stages: pd.DataFrame
    tickets: pd.DataFrame
    surveys: pd.DataFrame
    orders: pd.DataFrame
    order_items: pd.DataFrame


def prepare(raw: Mapping[str, pl.DataFrame]) -> PandasData:
    """From the canonical Polars frames (as read from the store) to enriched pandas frames."""
    customers = raw["customers"].to_pandas()[["customer_id", "region", "segment", "owner"]]
    opportunities = raw["opportunities"].to_pandas().merge(
        customers[["customer_id", "segment"]], on="customer_id", how="left"
    )
    stages = raw["pipeline_stages"].to_pandas().sort_values("position")
    history = raw["opportunity_stages"].to_pandas().merge(stages, on="stage", how="left")
    history = history[history["kind"] == "open"].sort_values(["opportunity_id", "entered_at", "position"])
    tickets = raw["tickets"].to_pandas().merge(customers[["customer_id", "region", "segment"]], on="customer_id",
                                               how="left")
    tickets["first_answer_at"] = tickets["first_response_at"].fillna(tickets["resolved_at"])
    tickets["first_response_hours"] = (tickets["first_answer_at"] - tickets["created_at"]) / _HOUR
    tickets["resolution_hours"] = (tickets["resolved_at"] - tickets["created_at"]) / _HOUR
    tickets["target_hours"] = tickets["priority"].map(SLA_TARGET_HOURS).fillna(SLA_TARGET_HOURS["normal"])
    surveys = raw["survey_responses"].to_pandas().merge(customers[["customer_id", "region", "segment"]],
                                                        on="customer_id", how="left")
    orders = raw["orders"].to_pandas().merge(customers, on="customer_id", how="left")
    orders["order_date"] = orders["ordered_at"].dt.normalize()
    return PandasData(
        opportunities=opportunities, history=history, pipeline_stages=stages, tickets=tickets,
        surveys=surveys, orders=orders, order_items=raw["order_items"].to_pandas()[["order_id", "product"]],
    )


def _narrow(frame: pd.DataFrame, columns: Mapping[str, str], filters: Filters) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    wanted = {"region": filters.regions, "segment": filters.segments, "product": filters.products,
              "team": filters.teams, "owner": filters.owners}
    for dim, column in columns.items():
        if wanted[dim]:
            keep &= frame[column].isin(wanted[dim])
    if filters.customers:
        keep &= frame["customer_id"].isin(filters.customers)
    return frame[keep]


def narrow(data: PandasData, filters: Filters) -> PandasData:
    """The rows one filter sees (DESIGN.md / crm.filters table: whose region, segment, ... applies)."""
    deals = _narrow(data.opportunities, {"region": "region", "segment": "segment", "product": "product",
                                         "team": "team", "owner": "owner"}, filters)
    service = {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "agent"}
    orders = _narrow(data.orders, {"region": "region", "segment": "segment", "owner": "owner"}, filters)
    if filters.products:
        with_product = data.order_items.loc[data.order_items["product"].isin(filters.products), "order_id"]
        orders = orders[orders["order_id"].isin(with_product)]
    return PandasData(
        opportunities=deals,
        history=data.history[data.history["opportunity_id"].isin(deals["opportunity_id"])]
        if filters.is_narrowed() else data.history,
        pipeline_stages=data.pipeline_stages,
        tickets=_narrow(data.tickets, service, filters),
        surveys=_narrow(data.surveys, service, filters),
        orders=orders,
        order_items=data.order_items,
    )


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time()))


def _none(value: object) -> object:
    """NaN / NaT / numpy scalars -> plain Python values (None where undefined)."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def metrics(data: PandasData, period: Period) -> dict[str, object]:
    """Every reference metric for one period of already narrowed data."""
    start, end = _ts(period.start), _ts(period.end + timedelta(days=1))
    out: dict[str, object] = {}

    deals = data.opportunities
    closed_in = (deals["closed_at"] >= start) & (deals["closed_at"] < end)
    won = deals[closed_in & (deals["status"] == "won")]
    lost = deals[closed_in & (deals["status"] == "lost")]
    out["revenue_won"] = float(won["amount"].sum())
    out["new_opportunities"] = int(((deals["created_at"] >= start) & (deals["created_at"] < end)).sum())
    out["won_deals"], out["lost_deals"] = len(won), len(lost)
    out["win_rate"] = len(won) / (len(won) + len(lost)) if len(won) + len(lost) else None
    out["sales_cycle_days"] = _none(((won["closed_at"] - won["created_at"]) / _DAY).median()) if len(won) else None

    # pipeline: deals open at the end, at the stage of their latest open-stage row entered before it
    # (an event stamped exactly at the end belongs to the next period)
    is_open = (deals["created_at"] < end) & (
        (deals["status"] == "open") | (deals["status"].isin(["won", "lost"]) & (deals["closed_at"] >= end))
    )
    open_deals = deals.loc[is_open, ["opportunity_id", "amount"]]
    history = data.history[data.history["entered_at"] < end]
    current = history.drop_duplicates("opportunity_id", keep="last")[["opportunity_id", "win_probability"]]
    first = data.pipeline_stages[data.pipeline_stages["kind"] == "open"]["win_probability"]
    at_stage = open_deals.merge(current, on="opportunity_id", how="left")
    probability = at_stage["win_probability"].fillna(first.iloc[0] if len(first) else 0.0)
    out["pipeline_value"] = float(at_stage["amount"].sum())
    # money as crm.money sums it: each deal's weighted amount in whole cents (half to even)
    out["weighted_pipeline"] = float(np.round((at_stage["amount"] * probability).to_numpy() * 100).sum()) / 100
    out["open_deals"] = len(at_stage)

    responses = data.surveys[(data.surveys["responded_at"] >= start) & (data.surveys["responded_at"] < end)]
    nps = responses.loc[responses["kind"] == "nps", "score"]
    csat = responses.loc[responses["kind"] == "csat", "score"]
    out["nps"] = 100.0 * (int((nps >= 9).sum()) - int((nps <= 6).sum())) / len(nps) if len(nps) else None
    out["nps_responses"] = len(nps)
    out["csat"] = int((csat >= 4).sum()) / len(csat) if len(csat) else None
    out["csat_responses"] = len(csat)

    tickets = data.tickets
    created = tickets[(tickets["created_at"] >= start) & (tickets["created_at"] < end)]
    # first answered, as seen at the end: the recorded response before it, else the resolution before it
    response_hours = (created["first_response_at"] - created["created_at"]) / _HOUR
    at_end = response_hours.where(created["first_response_at"] < end,
                                  created["resolution_hours"].where(created["resolved_at"] < end))
    answered = at_end.notna()
    first_times = at_end[answered]
    resolution = created.loc[created["resolved_at"] < end, "resolution_hours"]
    out["tickets_created"] = len(created)
    for name, values in (("first_response", first_times), ("resolution", resolution)):
        out[f"{name}_p50_hours"] = _none(values.quantile(0.5)) if len(values) else None
        out[f"{name}_p90_hours"] = _none(values.quantile(0.9)) if len(values) else None
    waited = (end - created["created_at"]) / _HOUR
    breached = np.where(answered, at_end > created["target_hours"],
                        waited > created["target_hours"])
    out["sla_breach_rate"] = float(breached.mean()) if len(created) else None
    out["reopened_tickets"] = int((created["reopened"].fillna(0) > 0).sum())
    out["backlog"] = int(((tickets["created_at"] < end)
                          & (tickets["resolved_at"].isna() | (tickets["resolved_at"] >= end))).sum())

    def active(day: date) -> pd.Series:
        first_day = _ts(day - timedelta(days=ACTIVE_WINDOW_DAYS - 1))
        dates = data.orders["order_date"]
        return data.orders.loc[(dates >= first_day) & (dates <= _ts(day)), "customer_id"].drop_duplicates()

    before, after = active(period.start - timedelta(days=1)), active(period.end)
    out["active_customers"] = len(after)
    out["churn_rate"] = int((~before.isin(after)).sum()) / len(before) if len(before) else None
    return {k: _none(out[k]) for k in KEYS}


def compute_with_previous(data: PandasData, filters: Filters) -> tuple[dict, dict]:
    """This period's and the previous period's metrics."""
    ds = narrow(data, filters)
    return metrics(ds, filters.period), metrics(ds, filters.period.previous())


def monthly_trend(data: PandasData, filters: Filters, months: int = 12) -> list[dict]:
    """Every metric for each of the ``months`` calendar months ending with the period's month."""
    ds = narrow(data, filters)
    return [{"month": p.start, **metrics(ds, p)} for p in month_periods(filters.period.end, months)]
