"""Per-customer facts as of a date: one row per customer, from the data only, nothing from after the date.

As of ``as_of`` means as of its end (midnight after it, DESIGN.md): an order, ticket, response or stage
change stamped at or after that moment does not exist yet, and neither does a customer created then.
The windows are whole calendar days ending on ``as_of``: "last 90 days" is as_of − 89 … as_of, "the 90
before" as_of − 179 … as_of − 90.

The caller narrows the frames (filters and the person's scope) and hands in the ``Dataset``; this module
never narrows. The segments grid, the customer page and the churn model (crm.churn_model) read it.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period
from crm.metrics.churn import ACTIVE_WINDOW_DAYS
from crm.metrics.rfm import rfm_scores
from crm.metrics.sales import open_at
from crm.metrics.service import Basis, breached_expr
from crm.settings import ChurnBasis

RECENT_DAYS = 90
"""The "last 90 days" of the order, ticket, SLA and interaction facts (and the 90 days before, for the change)."""
SHORT_DAYS = 30
"""The "last 30 days" of interactions."""

FACT_COLUMNS: tuple[str, ...] = (
    "customer_id", "name", "segment", "region", "industry", "owner",
    "tenure_days", "active",
    "recency_days", "frequency", "monetary", "r", "f", "m", "rfm_segment", "tier",
    "last_order_date", "lifetime_revenue",
    "orders_90d", "order_value_90d", "order_value_prev_90d", "order_value_change", "order_value_change_share",
    "tickets_90d", "sla_breaches_90d", "interactions_30d", "interactions_90d",
    "last_nps", "last_nps_at", "last_csat", "last_csat_at",
    "open_deals", "open_deal_amount",
)
"""The columns of ``customer_facts``, in order."""


def customer_facts(ds: Dataset, as_of: date, sla_basis: Basis = "calendar") -> pl.DataFrame:
    """One row per customer of ``ds.customers`` existing at the end of ``as_of`` (created_at before
    midnight after it, or unknown), sorted by customer_id. Columns (``FACT_COLUMNS``):

    - ``customer_id``, ``name``, ``segment``, ``region``, ``industry``, ``owner``: the customer's own.
    - ``tenure_days``: whole days from the date of created_at to ``as_of`` (null: created_at unknown).
    - ``active``: active on ``as_of`` on the store's churn basis (crm.metrics.churn): an order dated in the
      90 days ending on it, or (subscription) created on or before it and not cancelled on or before it.
    - ``recency_days``, ``frequency``, ``monetary``, ``r``, ``f``, ``m``, ``rfm_segment``, ``tier``: RFM
      as of ``as_of`` (crm.metrics.rfm.rfm_scores; null for a customer with no order in its 365 days).
    - ``last_order_date`` (null: none yet) and ``lifetime_revenue``: every order dated on or before it.
    - ``orders_90d``, ``order_value_90d``: orders and their amount in the last 90 days;
      ``order_value_prev_90d``: amount in the 90 days before; ``order_value_change`` = the first minus
      the second; ``order_value_change_share`` = that change / the amount before (null when there was
      none before). Amounts in currency units, summed in whole cents.
    - ``tickets_90d``: tickets created in the last 90 days; ``sla_breaches_90d``: those breaching their
      first-response target as judged at the end of ``as_of`` (crm.metrics.service, ``sla_basis``
      calendar or business hours).
    - ``interactions_30d``, ``interactions_90d``: calls, emails, meetings and chats that took place
      (``occurred_at``) in the last 30 / 90 days.
    - ``last_nps`` / ``last_csat`` and ``..._at``: the score and moment of the latest response of that
      kind before the end of ``as_of`` (null: none).
    - ``open_deals``, ``open_deal_amount``: deals open at the end of ``as_of`` (crm.metrics.sales.open_at)
      and their amount.

    Counts are 0 and amounts 0.0 where a customer has no such rows.
    """
    end = Period(as_of, as_of).end_ts
    recent = Period(as_of - timedelta(days=RECENT_DAYS - 1), as_of)
    before = Period(as_of - timedelta(days=2 * RECENT_DAYS - 1), as_of - timedelta(days=RECENT_DAYS))

    customers = ds.customers.filter(pl.col("created_at").is_null() | (pl.col("created_at") < end)).select(
        "customer_id", "name", "segment", "region", "industry", "owner",
        tenure_days=(pl.lit(as_of) - pl.col("created_at").dt.date()).dt.total_days().cast(pl.Int64),
        start=pl.col("created_at").dt.date(), cancelled=pl.col("churned_at").dt.date(),
    )
    day = pl.col("order_date")
    cents = pl.col("amount_cents")
    orders = (
        ds.orders.filter((day <= as_of) & pl.col("customer_id").is_not_null())
        .group_by("customer_key")
        .agg(
            customer_id=pl.col("customer_id").first(),
            last_order_date=day.max(),
            lifetime_cents=cents.sum(),
            orders_90d=day.is_between(recent.start, recent.end).sum().cast(pl.Int64),
            recent_cents=cents.filter(day.is_between(recent.start, recent.end)).sum(),
            before_cents=cents.filter(day.is_between(before.start, before.end)).sum(),
        )
        .drop("customer_key")
    )
    tickets = (
        ds.tickets.filter(pl.col("created_at").is_between(recent.start_ts, recent.end_ts, closed="left"))
        .group_by("customer_id")
        .agg(tickets_90d=pl.len().cast(pl.Int64),
             sla_breaches_90d=breached_expr(ds, recent, sla_basis).sum().cast(pl.Int64))
    )
    short = Period(as_of - timedelta(days=SHORT_DAYS - 1), as_of)
    interactions = (
        ds.interactions.filter(pl.col("occurred_at").is_between(recent.start_ts, recent.end_ts, closed="left"))
        .group_by("customer_id")
        .agg(interactions_90d=pl.len().cast(pl.Int64),
             interactions_30d=(pl.col("occurred_at") >= short.start_ts).sum().cast(pl.Int64))
    )
    deals = open_at(ds, Period(as_of, as_of)).group_by("customer_id").agg(
        open_deals=pl.len().cast(pl.Int64), open_deal_cents=_cents(pl.col("amount")).sum(),
    )
    surveys = (
        ds.surveys.filter((pl.col("responded_at") < end) & pl.col("kind").is_in(["nps", "csat"]))
        .group_by("customer_id", "kind")
        .agg(score=pl.col("score").sort_by("responded_at", "response_id").last(), at=pl.col("responded_at").max())
    )
    last = {
        kind: surveys.filter(pl.col("kind") == kind).select(
            "customer_id", pl.col("score").cast(pl.Float64).alias(f"last_{kind}"), pl.col("at").alias(f"last_{kind}_at"))
        for kind in ("nps", "csat")
    }
    rfm = rfm_scores(ds, Period(as_of, as_of)).select(
        "customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", rfm_segment="segment", tier="tier",
    )

    joined = customers
    for part in (orders, tickets, interactions, deals, last["nps"], last["csat"], rfm.lazy()):
        joined = joined.join(part, on="customer_id", how="left")
    return (
        joined.with_columns(
            pl.col("orders_90d", "tickets_90d", "sla_breaches_90d", "interactions_30d", "interactions_90d",
                   "open_deals").fill_null(0),
            pl.col("lifetime_cents", "recent_cents", "before_cents", "open_deal_cents").fill_null(0),
        )
        .with_columns(
            active=_active(ds.churn_basis, as_of),
            lifetime_revenue=_from_cents(pl.col("lifetime_cents")),
            order_value_90d=_from_cents(pl.col("recent_cents")),
            order_value_prev_90d=_from_cents(pl.col("before_cents")),
            order_value_change=_from_cents(pl.col("recent_cents") - pl.col("before_cents")),
            order_value_change_share=pl.when(pl.col("before_cents") > 0).then(
                (pl.col("recent_cents") - pl.col("before_cents")) / pl.col("before_cents")),
            open_deal_amount=_from_cents(pl.col("open_deal_cents")),
        )
        .select(FACT_COLUMNS)
        .sort("customer_id")
        .collect()
    )


def _active(basis: ChurnBasis, as_of: date) -> pl.Expr:
    """Active on ``as_of`` (crm.metrics.churn): an order dated within the activity window ending on it, or
    on the subscription basis started on or before it and not cancelled on or before it."""
    if basis is ChurnBasis.SUBSCRIPTION:
        return ((pl.col("start") <= as_of) & (pl.col("cancelled").is_null() | (pl.col("cancelled") > as_of))).fill_null(False)
    first = as_of - timedelta(days=ACTIVE_WINDOW_DAYS - 1)
    return (pl.col("last_order_date") >= first).fill_null(False)


def _cents(expr: pl.Expr) -> pl.Expr:
    """Money in whole cents (half a cent to the even cent), so sums are exact in any order."""
    return (expr * 100).round().cast(pl.Int64)


def _from_cents(expr: pl.Expr) -> pl.Expr:
    """Whole cents as the nearest float in currency units (a decimal division: exact to the cent)."""
    return (expr.cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64)
