"""One customer at a glance (the Customer 360 page and ``report customer_timeline``): search, header, timeline,
open items.

Everything is read from a narrowed ``Dataset`` (crm.narrowing.narrow), so the person's scope applies: a customer
outside it is simply not found, and of a customer inside it only the rows the scope lets through are shown (a
manager limited to a team sees that team's deals and tickets). ``view_filters`` says what the page narrows with:
the person's scope only. The sidebar's dimension filters (region, product, ...) and customer selections choose
rows for the aggregate pages; they do not cut pieces out of one customer's history.

As of ``as_of`` means as of its end (midnight after it, DESIGN.md): an order, stage change, response,
resolution, survey or interaction stamped at or after that moment does not exist yet. A ticket resolved by then
whose recorded first response is later (or missing) was first answered when it was resolved (DESIGN.md); a
follow-up completed after then is still open then.

Search (``find_customers``) runs over an index built once per data version (``Frames.memo``): lower-cased name,
id and email, and the phone's digits, one row per customer; the scope's customers are a mask over it, also kept
per data version and scope. At 1M customers a warm search takes 25–50 ms (median; under 100 ms on a busy
two-core machine), building the index about 1–4 s once per data version (bench/bench_customer_view.py).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from crm.cross_sell import association_rules, next_products
from crm.customer_facts import customer_facts
from crm.dataset import Dataset, Frames
from crm.filters import Filters, Period
from crm.format import CURRENCY_SYMBOL, wait_text
from crm.masking import mask_contacts
from crm.metrics.funnel import stage_at
from crm.metrics.rfm import rfm_scores
from crm.metrics.sales import open_at
from crm.metrics.service import answered_at, breached_expr, response_hours_at
from crm.narrowing import narrow, narrowing_scope, scores
from crm.scope import Scope
from crm.segment_rules import SegmentRule

if TYPE_CHECKING:
    from crm.churn_model import ChurnModel

SEARCH_LIMIT = 20
"""How many matches a search returns by default."""
PHONE_DIGITS = 3
"""A query of phone characters only (digits, spaces, + - ( ) . /) with at least this many digits is also
compared with the phones' digits."""

_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000
_PHONE_QUERY = re.compile(r"[\d\s+().\-/]+")


class EventKind(StrEnum):
    """What a timeline row records (the ``kind`` column)."""

    ORDER = "order"
    DEAL_CREATED = "deal_created"
    STAGE_CHANGE = "stage_change"
    DEAL_WON = "deal_won"
    DEAL_LOST = "deal_lost"
    TICKET_OPENED = "ticket_opened"
    FIRST_RESPONSE = "first_response"
    TICKET_RESOLVED = "ticket_resolved"
    SURVEY_RESPONSE = "survey_response"
    INTERACTION = "interaction"


EVENT_LABELS: dict[EventKind, str] = {
    EventKind.ORDER: "Order", EventKind.DEAL_CREATED: "Deal created", EventKind.STAGE_CHANGE: "Stage change",
    EventKind.DEAL_WON: "Deal won", EventKind.DEAL_LOST: "Deal lost", EventKind.TICKET_OPENED: "Ticket opened",
    EventKind.FIRST_RESPONSE: "First response", EventKind.TICKET_RESOLVED: "Ticket resolved",
    EventKind.SURVEY_RESPONSE: "Survey response", EventKind.INTERACTION: "Interaction",
}
"""Each kind in words, for people (the page); the CLI prints the codes."""

_KIND_ORDER = {kind: i for i, kind in enumerate(EventKind)}
"""Events at the same moment in the order things happen: a deal is created before it changes stage, a ticket
opened before it is answered and resolved."""

TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "at": pl.Datetime("us"), "kind": pl.String(), "summary": pl.String(), "amount": pl.Float64(),
    "hours": pl.Float64(), "target_hours": pl.Float64(), "ref": pl.String(),
}
"""The columns of ``customer_timeline``."""

MATCH_COLUMNS: tuple[str, ...] = ("customer_id", "name", "email", "phone", "region", "segment", "owner")
"""The columns of a search's rows."""


class CustomerNotFound(LookupError):
    """No customer with that id in the person's view (wrong id, or outside their scope); ``str()`` says so."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no customer {customer_id!r} in your view (check the ID; customers outside the rows "
                         "you may see are not shown)")
        self.customer_id = customer_id


def view_filters(filters: Filters) -> Filters:
    """What the customer view narrows with: ``filters``' scope (crm.narrowing refuses none), as of the end of
    ``filters``' period; no dimension filter, customer list or segment rule."""
    return Filters.create(Period(filters.period.end, filters.period.end), scope=narrowing_scope(filters))


def has_view_filters(filters: Filters) -> bool:
    """True when ``filters`` hold anything besides the period and the scope that the customer view ignores
    (dimension values, a customer list, a segment rule, a chart selection)."""
    return any(filters.dimension_values().values()) or bool(filters.customers or filters.segment_rule or filters.selection)


# --- search ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerMatches:
    """A search's answer: the first ``rows`` (``MATCH_COLUMNS``) and how many customers matched in all."""

    rows: pl.DataFrame
    total: int


def _search_index(frames: Frames) -> pl.DataFrame:
    """One row per customer of ``frames.customers``, sorted by lower-cased name, then id: the ``MATCH_COLUMNS``,
    ``_row`` (the customer's row in ``frames.customers``) and what a search compares: ``_id`` and ``_name``
    lower-cased, ``_text`` (name and id), ``_all`` (name, id and email), ``_digits`` (the phone's digits).
    Cut into a chunk per thread, so a scan runs on every core. Built once per data version."""
    def build() -> pl.DataFrame:
        lower_id = pl.col("customer_id").cast(pl.String).str.to_lowercase().fill_null("")
        lower_name = pl.col("name").cast(pl.String).str.to_lowercase().fill_null("")
        text = pl.concat_str(lower_name, lower_id, separator="\n")
        # sorted first, the texts made after: made in that order, they lie in memory in the order a scan reads
        # them (texts sorted after being made are scattered, and a scan took ten times as long)
        index = (
            frames.customers.with_row_index("_row")
            .sort(lower_name, lower_id)
            .select(
                *MATCH_COLUMNS, "_row", _id=lower_id, _name=lower_name, _text=text,
                _all=pl.concat_str(text, pl.col("email").cast(pl.String).str.to_lowercase().fill_null(""),
                                   separator="\n"),
                _digits=pl.col("phone").cast(pl.String).str.replace_all(r"\D", "").fill_null(""),
            )
        )
        size = max(1, -(-index.height // max(1, 2 * pl.thread_pool_size())))
        return pl.concat([index.slice(i, size) for i in range(0, max(index.height, 1), size)], rechunk=False)
    return frames.memo(("customer_search_index",), build)


def _scope_mask(frames: Frames, scope: Scope) -> np.ndarray | None:
    """Which rows of the search index ``scope`` lets through (read through crm.narrowing.narrow), as a bool
    array in the index's order; None: every row. Kept per data version and scope."""
    if scope.unrestricted:
        return None

    def build() -> np.ndarray:
        day = date(2000, 1, 1)  # narrowing applies no period to customers
        allowed = narrow(frames, Filters.create(Period(day, day), scope=scope)).customers.select("customer_id").collect()
        inside = frames.customers["customer_id"].is_in(allowed["customer_id"].implode()).to_numpy()
        return np.asarray(inside[_search_index(frames)["_row"].to_numpy()], dtype=bool)
    return frames.memo(("customer_search_scope", scope), build)


def find_customers(frames: Frames, filters: Filters, query: str, limit: int = SEARCH_LIMIT,
                   contacts: bool = True) -> CustomerMatches:
    """The customers within ``filters``' scope whose name or id contains ``query`` (case-insensitive), or whose
    email contains it, or, for a query of phone characters with at least ``PHONE_DIGITS`` digits, whose phone's
    digits contain the query's digits. ``contacts`` False: email and phone are not searched (a role that may not
    see them must not find people by them either).

    Ranked: an exact id first, then names starting with the query, then the rest; each by name, then id. The
    first ``limit`` rows (``MATCH_COLUMNS``) and the number of matches. An empty query matches nobody."""
    needle = query.strip().lower()
    index = _search_index(frames)
    if not needle or limit < 1:
        return CustomerMatches(index.head(0).select(MATCH_COLUMNS), 0)
    match = pl.col("_all" if contacts else "_text").str.contains(needle, literal=True)
    digits = re.sub(r"\D", "", needle)
    if contacts and len(digits) >= PHONE_DIGITS and _PHONE_QUERY.fullmatch(needle):
        match = match | pl.col("_digits").str.contains(digits, literal=True)
    mask = index.select(match.fill_null(False)).to_series().to_numpy()
    allowed = _scope_mask(frames, narrowing_scope(filters))
    if allowed is not None:
        mask &= allowed
    hits = np.flatnonzero(mask)
    # the index is sorted by name: names starting with the query are one stretch of it, and every tier comes
    # out in name order by position alone
    names = index["_name"]
    low = int(names.search_sorted(needle, side="left"))
    high = int(names.search_sorted(needle + "\U0010ffff", side="left"))
    exact = np.flatnonzero(mask & (index["_id"] == needle).fill_null(False).to_numpy())
    prefix = hits[(hits >= low) & (hits < high)]
    rest = hits[(hits < low) | (hits >= high)]
    chosen = list(dict.fromkeys([*exact[:limit].tolist(), *prefix[:limit].tolist(), *rest[:limit].tolist()]))[:limit]
    return CustomerMatches(index[chosen].select(MATCH_COLUMNS), int(hits.size))


# --- one customer --------------------------------------------------------------------------------------------


def _one_customer(ds: Dataset, customer_id: str) -> Dataset:
    """``ds`` kept to one customer's rows (their deals' history and intervals follow the deals)."""
    mine = pl.col("customer_id") == customer_id
    keys = ds.opportunities.filter(mine).select("deal_key").collect()["deal_key"].implode()

    def narrowed(name: str) -> pl.LazyFrame:
        table: pl.LazyFrame = getattr(ds, name)
        return table.filter(pl.col("deal_key").is_in(keys) if name in ("stages", "deal_intervals") else mine)

    return dataclasses.replace(ds, narrowed=narrowed)


@dataclass(frozen=True)
class CustomerHeader:
    """Who the customer is and where they stand as of ``as_of`` (crm.customer_facts, RFM over the whole view).

    Money in currency units; ``r``/``f``/``m`` 1–5 and ``rfm_segment``/``tier`` None when the customer has no
    order in the 365 days ending on ``as_of`` (not scored); ``churn_risk`` 0–1 and ``churn_rule`` only when a
    churn model was given and the customer is active then."""

    customer_id: str
    as_of: date
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    segment: str | None = None
    region: str | None = None
    country: str | None = None
    industry: str | None = None
    owner: str | None = None
    created_at: datetime | None = None
    rfm_segment: str | None = None
    tier: str | None = None
    r: int | None = None
    f: int | None = None
    m: int | None = None
    recency_days: int | None = None
    frequency: int | None = None
    monetary: float | None = None
    lifetime_revenue: float = 0.0
    last_order_date: date | None = None
    active: bool = False
    open_deals: int = 0
    open_deal_amount: float = 0.0
    tickets_90d: int = 0
    sla_breaches_90d: int = 0
    last_nps: float | None = None
    last_csat: float | None = None
    churn_risk: float | None = None
    churn_rule: str | None = None

    def masked(self, role: str | None) -> CustomerHeader:
        """A copy with email and phone masked for ``role`` (crm.masking; unchanged for roles that see them)."""
        contacts = mask_contacts(pl.DataFrame({"email": [self.email], "phone": [self.phone]},
                                              schema={"email": pl.String, "phone": pl.String}), role)
        return dataclasses.replace(self, email=contacts["email"][0], phone=contacts["phone"][0])


def customer_header(ds: Dataset, customer_id: str, as_of: date, scores: pl.DataFrame | None = None,
                    churn_model: ChurnModel | None = None) -> CustomerHeader | None:
    """The header of ``customer_id`` as of ``as_of``; None when ``ds`` (a narrowed view) has no such customer.

    The facts (lifetime revenue, last order, open deals, tickets and SLA breaches in 90 days, last NPS/CSAT,
    active) are crm.customer_facts over the customer's own rows. RFM scores are relative to everyone scored in
    the view: ``scores`` are crm.metrics.rfm.rfm_scores of the whole view as of ``as_of`` (the page passes the
    ones kept per data version); None computes them from ``ds``. ``churn_model``: a crm.churn_model.ChurnModel
    (its ``risk`` and the tree leaf's rule in words); without one, no churn risk is given."""
    own = _one_customer(ds, customer_id)
    person = own.customers.collect()
    if person.height == 0:
        return None
    row = person.row(0, named=True)
    facts = customer_facts(own, as_of)
    fact = facts.row(0, named=True) if facts.height else {}
    scored = rfm_scores(ds, Period(as_of, as_of)) if scores is None else scores
    rfm = scored.filter(pl.col("customer_id") == customer_id)
    score = rfm.row(0, named=True) if rfm.height else {}
    risk, rule = _churn(churn_model, facts) if fact.get("active") else (None, None)
    return CustomerHeader(
        customer_id=customer_id, as_of=as_of, name=row.get("name"), email=row.get("email"), phone=row.get("phone"),
        segment=row.get("segment"), region=row.get("region"), country=row.get("country"), industry=row.get("industry"),
        owner=row.get("owner"), created_at=row.get("created_at"),
        rfm_segment=score.get("segment"), tier=score.get("tier"), r=score.get("r"), f=score.get("f"), m=score.get("m"),
        recency_days=score.get("recency_days"), frequency=score.get("frequency"), monetary=score.get("monetary"),
        lifetime_revenue=float(fact.get("lifetime_revenue") or 0.0), last_order_date=fact.get("last_order_date"),
        active=bool(fact.get("active")), open_deals=int(fact.get("open_deals") or 0),
        open_deal_amount=float(fact.get("open_deal_amount") or 0.0), tickets_90d=int(fact.get("tickets_90d") or 0),
        sla_breaches_90d=int(fact.get("sla_breaches_90d") or 0), last_nps=fact.get("last_nps"),
        last_csat=fact.get("last_csat"), churn_risk=risk, churn_rule=rule,
    )


def _churn(model: ChurnModel | None, facts: pl.DataFrame) -> tuple[float | None, str | None]:
    """The model's risk for the one row of ``facts`` and the rule of the tree leaf it falls in."""
    if model is None or facts.height != 1:
        return None, None
    from crm.churn_model import feature_matrix  # scikit-learn is imported only when a model is given

    risk = float(model.risk(facts)[0])
    leaf = int(model.tree.apply(feature_matrix(facts, model.features))[0])
    return risk, model.leaf_rules.get(leaf)


# --- the timeline ------------------------------------------------------------------------------------------


def _hours(value: pl.Expr) -> pl.Expr:
    """Hours as words, to a tenth: ``2.5 h``, ``4 h``."""
    return value.round(1).cast(pl.String).str.replace(r"\.0$", "") + pl.lit(" h")


def _words(*parts: pl.Expr) -> pl.Expr:
    """Parts joined by ", ", the missing ones left out."""
    return pl.concat_str(*parts, separator=", ", ignore_nulls=True)


def _event(frame: pl.LazyFrame, kind: EventKind, at: pl.Expr, summary: pl.Expr, ref: pl.Expr,
           amount: pl.Expr | None = None, hours: pl.Expr | None = None, target: pl.Expr | None = None) -> pl.LazyFrame:
    none = pl.lit(None, dtype=pl.Float64)
    return frame.select(
        at=at.cast(pl.Datetime("us")), kind=pl.lit(kind.value), summary=summary.cast(pl.String),
        amount=(amount if amount is not None else none).cast(pl.Float64),
        hours=(hours if hours is not None else none).cast(pl.Float64),
        target_hours=(target if target is not None else none).cast(pl.Float64), ref=ref.cast(pl.String),
    )


def customer_timeline(ds: Dataset, customer_id: str, as_of: date) -> pl.DataFrame:
    """One row per event of ``customer_id`` in ``ds`` (a narrowed view) stamped before the end of ``as_of``, in
    time order (``TIMELINE_SCHEMA``): ``at``, ``kind`` (an ``EventKind`` code), ``summary`` (plain words),
    ``amount`` (orders, deals created, won and lost), ``hours`` and ``target_hours`` (calendar hours: a ticket's
    first response against its priority's SLA target; its resolution time, which has no target), ``ref`` (the
    id of the order, deal, ticket, response or interaction). Events at the same moment: in ``EventKind`` order,
    then by ``ref``. Empty for an unknown customer."""
    own = _one_customer(ds, customer_id)
    end = Period(as_of, as_of).end_ts
    before = pl.col("at") < end
    deal = pl.lit("Deal ") + pl.col("opportunity_id")
    ticket = pl.lit("Ticket ") + pl.col("ticket_id")
    deals = own.opportunities
    tickets = own.tickets
    first_answer = answered_at(end)
    response_hours = response_hours_at(end)
    recorded = pl.col("first_response_at") < end
    parts = [
        _event(own.orders, EventKind.ORDER, pl.col("ordered_at"),
               pl.lit("Order ") + pl.col("order_id") + pl.when(pl.col("channel").is_not_null())
               .then(pl.lit(" via ") + pl.col("channel")).otherwise(pl.lit("")),
               pl.col("order_id"), amount=pl.col("amount")),
        _event(deals, EventKind.DEAL_CREATED, pl.col("created_at"),
               deal + pl.lit(" created: ") + _words(pl.col("product"), pl.lit("owner ") + pl.col("owner"),
                                                    pl.col("team")),
               pl.col("opportunity_id"), amount=pl.col("amount")),
        _stage_changes(own, end),
        _event(deals.filter((pl.col("status") == "won") & (pl.col("closed_at") < end)), EventKind.DEAL_WON,
               pl.col("closed_at"), deal + pl.lit(" won") + _suffix(pl.col("product")), pl.col("opportunity_id"),
               amount=pl.col("amount")),
        _event(deals.filter((pl.col("status") == "lost") & (pl.col("closed_at") < end)), EventKind.DEAL_LOST,
               pl.col("closed_at"), deal + pl.lit(" lost") + _suffix(pl.col("product"))
               + pl.when(pl.col("lost_reason").is_not_null()).then(pl.lit(": ") + pl.col("lost_reason"))
               .otherwise(pl.lit("")),
               pl.col("opportunity_id"), amount=pl.col("amount")),
        _event(tickets, EventKind.TICKET_OPENED, pl.col("created_at"),
               ticket + pl.lit(" opened: ") + _words(
                   pl.col("category"), pl.col("priority").fill_null("normal") + pl.lit(" priority"), pl.col("product"),
                   pl.lit("by ") + pl.col("channel")),
               pl.col("ticket_id"), target=pl.col("sla_target_hours")),
        _event(tickets.filter(first_answer.is_not_null()), EventKind.FIRST_RESPONSE, first_answer,
               ticket + pl.when(recorded).then(pl.lit(" answered")).otherwise(pl.lit(" first answered on resolution"))
               + _suffix(pl.col("agent"), " by ", "") + pl.lit(" after ") + _hours(response_hours)
               + pl.when(response_hours > pl.col("sla_target_hours"))
               .then(pl.lit(": ") + _hours(response_hours - pl.col("sla_target_hours")) + pl.lit(" over its ")
                     + _hours(pl.col("sla_target_hours")) + pl.lit(" target"))
               .otherwise(pl.lit(": within its ") + _hours(pl.col("sla_target_hours")) + pl.lit(" target")),
               pl.col("ticket_id"), hours=response_hours, target=pl.col("sla_target_hours")),
        _event(tickets.filter(pl.col("resolved_at") < end), EventKind.TICKET_RESOLVED, pl.col("resolved_at"),
               ticket + pl.lit(" resolved after ") + _hours(pl.col("resolution_hours"))
               + pl.when(pl.col("reopened").fill_null(0) > 0)
               .then(pl.lit(", reopened ") + pl.col("reopened").cast(pl.String) + pl.lit(" time(s)")).otherwise(pl.lit("")),
               pl.col("ticket_id"), hours=pl.col("resolution_hours")),
        _event(own.surveys, EventKind.SURVEY_RESPONSE, pl.col("responded_at"), _survey_words(), pl.col("response_id")),
        _event(own.interactions, EventKind.INTERACTION, pl.col("occurred_at"), _interaction_words(end),
               pl.col("interaction_id")),
    ]
    order = pl.col("kind").replace_strict({k.value: v for k, v in _KIND_ORDER.items()}, return_dtype=pl.Int8)
    return (
        pl.concat(parts, how="vertical")
        .filter(before & pl.col("at").is_not_null())
        .sort(pl.col("at"), order, pl.col("ref"))
        .collect()
        .cast(TIMELINE_SCHEMA)  # type: ignore[arg-type]
    )


def _suffix(value: pl.Expr, lead: str = " (", tail: str = ")") -> pl.Expr:
    """``lead`` + value + ``tail`` (`` (value)``), empty when the value is missing."""
    return pl.when(value.is_not_null()).then(pl.lit(lead) + value + pl.lit(tail)).otherwise(pl.lit(""))


def _stage_changes(own: Dataset, end: datetime) -> pl.LazyFrame:
    """Open-stage history rows entered after their deal's creation and before ``end``, with the open stage the
    deal was at before (the first open stage when it has no earlier row). Won and lost come from the deal's
    status and closing moment (DESIGN.md), not from history rows."""
    first_open = own.pipeline_stages.filter(pl.col("kind") == "open").sort("position")["stage"].head(1)
    start = first_open[0] if first_open.len() else None
    history = (
        own.stages.filter(pl.col("open_step").is_not_null() & (pl.col("entered_at") < end))
        .sort("opportunity_id", "entered_at", "position")
        .with_columns(before=pl.col("stage").shift(1).over("opportunity_id"))
        .filter(pl.col("deal_created_at").is_null() | (pl.col("entered_at") > pl.col("deal_created_at")))
    )
    return _event(history, EventKind.STAGE_CHANGE, pl.col("entered_at"),
                  pl.lit("Deal ") + pl.col("opportunity_id") + pl.lit(" moved to ") + pl.col("stage")
                  + pl.lit(" (from ") + pl.col("before").fill_null(pl.lit(start, dtype=pl.String)).fill_null("start")
                  + pl.lit(")"),
                  pl.col("opportunity_id"))


def _survey_words() -> pl.Expr:
    """``NPS 9 (promoter) on ticket T1: “comment”`` / ``CSAT 4 of 5 (satisfied)``."""
    score = pl.col("score")
    nps = (pl.lit("NPS ") + score.cast(pl.Int64).cast(pl.String)
           + pl.when(score >= 9).then(pl.lit(" (promoter)")).when(score >= 7).then(pl.lit(" (passive)"))
           .otherwise(pl.lit(" (detractor)")))
    csat = (pl.lit("CSAT ") + score.cast(pl.Int64).cast(pl.String) + pl.lit(" of 5")
            + pl.when(score >= 4).then(pl.lit(" (satisfied)")).otherwise(pl.lit(" (not satisfied)")))
    other = pl.lit("Survey ") + pl.col("kind").fill_null("response") + pl.lit(" ") + score.cast(pl.String)
    head = pl.when(pl.col("kind") == "nps").then(nps).when(pl.col("kind") == "csat").then(csat).otherwise(other)
    return (head.fill_null("Survey response") + _suffix(pl.col("ticket_id"), " on ticket ", "")
            + pl.when(pl.col("comment").str.strip_chars().str.len_chars() > 0)
            .then(pl.lit(": “") + pl.col("comment").str.strip_chars() + pl.lit("”")).otherwise(pl.lit("")))


def _interaction_words(end: datetime) -> pl.Expr:
    """``Call by Elena Rossi about deal D1; follow-up due 2024-07-17, done 2024-07-14`` (as seen at ``end``)."""
    kind = pl.col("kind").fill_null("interaction")
    head = kind.str.slice(0, 1).str.to_uppercase() + kind.str.slice(1)
    due = pl.col("due_at").dt.strftime("%Y-%m-%d")
    done = pl.col("completed_at") < end
    follow_up = (
        pl.when(pl.col("due_at").is_null()).then(pl.lit(""))
        .when(done).then(pl.lit("; follow-up due ") + due + pl.lit(", done ") + pl.col("completed_at").dt.strftime("%Y-%m-%d"))
        .when(pl.col("due_at") < end).then(pl.lit("; follow-up due ") + due + pl.lit(", overdue"))
        .otherwise(pl.lit("; follow-up due ") + due)
    )
    return (head + _suffix(pl.col("owner"), " by ", "") + _suffix(pl.col("opportunity_id"), " about deal ", "")
            + follow_up)


# --- open items --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenItems:
    """What is open for a customer at the end of ``as_of``.

    - ``deals``: opportunity_id, product, stage (then), amount, owner, created_at, expected_close_date,
      days_open (whole days from creation to the end of as_of); oldest first.
    - ``tickets``: ticket_id, created_at, priority, category, product, agent, answered (a first answer by
      then), waited_hours (creation to the end of as_of), target_hours (first-response SLA), breached;
      oldest first.
    - ``follow_ups``: overdue follow-ups: interactions made by then whose due_at is before the end of as_of
      and that were not completed by then: interaction_id, kind, occurred_at, due_at, owner, opportunity_id,
      days_overdue (whole days from due_at to the end of as_of); most overdue first.
    """

    deals: pl.DataFrame
    tickets: pl.DataFrame
    follow_ups: pl.DataFrame

    def is_empty(self) -> bool:
        """True when nothing is open."""
        return self.deals.is_empty() and self.tickets.is_empty() and self.follow_ups.is_empty()


def open_items(ds: Dataset, customer_id: str, as_of: date) -> OpenItems:
    """``customer_id``'s open deals, open tickets and overdue follow-ups in ``ds`` (a narrowed view) at the end
    of ``as_of`` (see ``OpenItems``)."""
    own = _one_customer(ds, customer_id)
    period = Period(as_of, as_of)
    end = period.end_ts
    since = (pl.lit(end) - pl.col("created_at")).dt.total_microseconds()
    deals = (
        stage_at(own, period, open_at(own, period))
        .select("opportunity_id", "product", stage="stage_now", amount="amount", owner="owner", created_at="created_at",
                expected_close_date="expected_close_date", days_open=(since // _DAY_US).cast(pl.Int64))
        .sort("created_at", "opportunity_id")
    )
    tickets = (
        own.tickets.filter((pl.col("created_at") < end) & (pl.col("resolved_at").is_null() | (pl.col("resolved_at") >= end)))
        .select("ticket_id", "created_at", "priority", "category", "product", "agent",
                answered=answered_at(end).is_not_null(), waited_hours=since / _HOUR_US,
                target_hours="sla_target_hours", breached=breached_expr(own, period))
        .sort("created_at", "ticket_id")
    )
    overdue = (pl.lit(end) - pl.col("due_at")).dt.total_microseconds()
    follow_ups = (
        own.interactions.filter(
            (pl.col("occurred_at").is_null() | (pl.col("occurred_at") < end)) & (pl.col("due_at") < end)
            & (pl.col("completed_at").is_null() | (pl.col("completed_at") >= end)))
        .select("interaction_id", "kind", "occurred_at", "due_at", "owner", "opportunity_id",
                days_overdue=(overdue // _DAY_US).cast(pl.Int64))
        .sort("due_at", "interaction_id")
    )
    found = pl.collect_all([deals, tickets, follow_ups])
    return OpenItems(*found)


# --- as a person reads them -----------------------------------------------------------------------------------


def _money_text(column: str) -> pl.Expr:
    """An amount as text, to the cent (``$1,234.50``, ``-$5.00``); "" when there is none."""
    def text(amount: float) -> str:
        return f"{'-' if amount < 0 else ''}{CURRENCY_SYMBOL}{abs(amount):,.2f}"
    return pl.col(column).map_elements(text, return_dtype=pl.String).fill_null("")


def _hours_text(column: str) -> pl.Expr:
    """Hours as text (``wait_text``: ``7.5 h``, ``3.2 d`` from 48 hours); "" when there are none."""
    return wait_text(column).fill_null("")


def timeline_table(timeline: pl.DataFrame) -> pl.DataFrame:
    """The timeline as a person reads it, newest first: ``at``; ``what`` (the kind in words, ``EVENT_LABELS``);
    ``summary``; ``amount`` and ``time`` as text ("" where they do not apply: a table cell never reads "None";
    ``time``: ``6.0 h of 4.0 h`` for a first response against its target, ``24.0 h`` for a resolution)."""
    labels = {k.value: v for k, v in EVENT_LABELS.items()}
    took, target = _hours_text("hours"), _hours_text("target_hours")
    return timeline.select(
        "at", what=pl.col("kind").replace_strict(labels, default=pl.col("kind")), summary="summary",
        amount=_money_text("amount"),
        time=pl.when(pl.col("hours").is_not_null() & pl.col("target_hours").is_not_null())
        .then(took + pl.lit(" of ") + target).otherwise(took),
    ).reverse()


def open_items_tables(items: OpenItems) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The open deals, tickets and overdue follow-ups as a person reads them: amounts, waits and flags as text,
    missing values as "" (a table cell never reads "None")."""
    def text(column: str) -> pl.Expr:
        return pl.col(column).cast(pl.String).fill_null("")

    deals = items.deals.select(
        text("opportunity_id"), text("product"), text("stage"), amount=_money_text("amount"), owner=text("owner"),
        created=pl.col("created_at").dt.strftime("%Y-%m-%d"), expected_close=text("expected_close_date"),
        days_open="days_open",
    )
    tickets = items.tickets.select(
        text("ticket_id"), opened=pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M"),
        priority=pl.col("priority").fill_null("normal"), category=text("category"), product=text("product"),
        agent=text("agent"), waited=_hours_text("waited_hours"), target=_hours_text("target_hours"),
        sla=pl.when(pl.col("breached")).then(pl.lit("breached"))
        .when(pl.col("answered")).then(pl.lit("answered in time")).otherwise(pl.lit("waiting, within target")),
    )
    follow_ups = items.follow_ups.select(
        text("interaction_id"), kind=text("kind"), due=pl.col("due_at").dt.strftime("%Y-%m-%d %H:%M"),
        days_overdue="days_overdue", owner=text("owner"), deal=text("opportunity_id"),
        made=pl.col("occurred_at").dt.strftime("%Y-%m-%d").fill_null(""),
    )
    return deals, tickets, follow_ups


# --- the whole view ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerView:
    """Everything the Customer 360 page shows of one customer: header, timeline, open items and the next
    products to offer (crm.cross_sell.next_products: product, antecedent, confidence, lift; best first)."""

    header: CustomerHeader
    timeline: pl.DataFrame
    open_items: OpenItems
    next_products: pl.DataFrame


def customer_view(frames: Frames, filters: Filters, customer_id: str, churn_model: ChurnModel | None = None
                  ) -> CustomerView | None:
    """``customer_id`` as of the end of ``filters``' period within their scope (``view_filters``); None when the
    view has no such customer. RFM scores over the view are kept per data version, as-of day and scope
    (crm.narrowing.scores, shared with the Segments page); the cross-sell rules behind the next products come
    from the baskets of ``filters``' period in the view (default thresholds), kept per data version, period and
    scope."""
    plain_filters = view_filters(filters)
    as_of = plain_filters.period.end
    ds = narrow(frames, plain_filters)
    scope = narrowing_scope(plain_filters)
    header = customer_header(ds, customer_id, as_of, scores(frames, SegmentRule.for_filters(plain_filters), as_of, scope),
                             churn_model)
    if header is None:
        return None
    period = filters.period
    rules = frames.memo(("customer_view_rules", period, scope), lambda: association_rules(ds, frames, period))
    offers = next_products(ds, frames, period, rules, customers=[customer_id]).select(
        "product", "antecedent", "confidence", "lift")
    return CustomerView(header, customer_timeline(ds, customer_id, as_of), open_items(ds, customer_id, as_of), offers)


def timeline_for(frames: Frames, filters: Filters, customer_id: str) -> pl.DataFrame:
    """``customer_timeline`` of ``customer_id`` as of the end of ``filters``' period within their scope; raises
    CustomerNotFound when the view has no such customer."""
    plain_filters = view_filters(filters)
    ds = narrow(frames, plain_filters)
    if ds.customers.filter(pl.col("customer_id") == customer_id).select(pl.len()).collect().item() == 0:
        raise CustomerNotFound(customer_id)
    return customer_timeline(ds, customer_id, plain_filters.period.end)
