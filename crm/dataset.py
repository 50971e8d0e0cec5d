"""Tables read once per data version into Polars, enriched for fast filtering.

``load_frames`` reads only the columns the metrics need and copies the
customer's region/segment/owner onto the fact tables (joins once, not per
filter). ``Frames.narrow`` applies the dimension filters lazily; the period is
applied later, by each metric, because pipeline, backlog, churn and previous
periods need rows from before the period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

import polars as pl

from crm import schema
from crm.business_hours import with_business_seconds
from crm.filters import Filters
from crm.settings import ServiceSettings, load_settings
from crm.store import Store

T = TypeVar("T")

COLUMNS: dict[str, list[str]] = {
    "customers": ["customer_id", "name", "region", "country", "segment", "industry", "source", "owner", "created_at"],
    "opportunities": [
        "opportunity_id", "customer_id", "owner", "team", "region", "product", "source", "amount",
        "created_at", "expected_close_date", "closed_at", "stage", "status", "lost_reason",
    ],
    "opportunity_stages": ["opportunity_id", "stage", "entered_at"],
    "pipeline_stages": ["stage", "position", "win_probability", "kind"],
    "orders": ["order_id", "customer_id", "ordered_at", "amount", "channel"],
    "order_items": ["order_id", "product", "quantity", "amount"],
    "tickets": [
        "ticket_id", "customer_id", "created_at", "first_response_at", "resolved_at", "status",
        "priority", "channel", "team", "agent", "product", "category", "reopened",
    ],
    "survey_responses": [
        "response_id", "customer_id", "ticket_id", "kind", "score", "responded_at", "comment", "product", "team", "agent",
    ],
}

_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Dataset:
    """The lazily narrowed frames one filter sees (no period applied yet)."""

    opportunities: pl.LazyFrame
    stages: pl.LazyFrame
    pipeline_stages: pl.DataFrame
    tickets: pl.LazyFrame
    surveys: pl.LazyFrame
    orders: pl.LazyFrame
    """Sorted by customer_key, then order_date (as ``Frames.orders``; narrowing only filters)."""
    customers: pl.LazyFrame
    deal_intervals: pl.LazyFrame
    """The deals' open stretches (see ``Frames.deal_intervals``), narrowed like the deals."""
    settings: ServiceSettings = field(default_factory=ServiceSettings)


@dataclass(frozen=True)
class Frames:
    """Enriched in-memory tables for one data version; shared by all sessions."""

    customers: pl.DataFrame
    opportunities: pl.DataFrame
    stages: pl.DataFrame
    """The stage history with its stages' position / kind / probability, ``open_step``, ``open_until``
    (see ``_stage_intervals``), ``deal_key`` (the row number of its deal in ``opportunities``, null
    when there is none), ``deal_created_at`` (the deal's created_at) and ``next_at`` (when the deal's
    next history row was entered, see ``_next_entered``)."""
    pipeline_stages: pl.DataFrame
    tickets: pl.DataFrame
    surveys: pl.DataFrame
    orders: pl.DataFrame
    """With the customer's region/segment/owner, ``customer_key`` (customers numbered in customer_id
    order), ``order_date`` and ``amount_cents``; sorted by customer_key, then order_date."""
    order_items: pl.DataFrame
    deal_intervals: pl.DataFrame
    """Each deal's open life cut where its stage changes: ``deal_key``, ``amount``, ``win_probability``
    of the stage, ``valid_from`` / ``valid_until`` (null: no end). At any moment t a deal open then
    (``open_at``) has exactly one row with valid_from <= t < valid_until, carrying the probability
    of its stage then (``stage_at``); a deal not open has none. ``from_day`` / ``until_day``: the day
    numbers (days since 1970-01-01) of the first midnight at or after valid_from / valid_until.
    The pipeline at many moments is then a filter and sums, no join (crm.metrics.sales)."""
    version: int = 0
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    _memo: dict[object, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def memo(self, key: object, compute: Callable[[], T]) -> T:
        """``compute()`` once per key for this data version (the last 64 kept): RFM scores and the
        customers of a segment rule, which several views and pages of one session ask for."""
        if key in self._memo:
            return self._memo[key]  # type: ignore[no-any-return]
        value = compute()
        if len(self._memo) >= 64:
            self._memo.pop(next(iter(self._memo)), None)
        self._memo[key] = value
        return value

    def narrow(self, filters: Filters) -> Dataset:
        """Apply the dimension and customer filters (not the period) lazily; a segment rule
        (``filters.segment_rule``) selects its customers (crm.segments.member_ids)."""
        members: pl.Series | None = None
        if filters.segment_rule:
            from crm.segments import member_ids  # crm.segments builds on this module

            members = member_ids(self, filters.segment_rule)

        def where(table: str) -> pl.Expr:
            expr = filters.polars_expr(table)
            return expr if members is None else expr & pl.col("customer_id").is_in(members)

        opportunities = self.opportunities.lazy().filter(where("opportunities"))
        stages = self.stages.lazy()
        deal_intervals = self.deal_intervals.lazy()
        if filters.is_narrowed():
            # deal_key is the deal's row number: look its filter result up instead of joining on the
            # string id (a history row without a deal has a null key and drops out, as in a semi-join)
            keep = self.opportunities.with_columns(_keep=where("opportunities"))["_keep"]
            stages = stages.filter(pl.lit(keep).gather(pl.col("deal_key")))
            deal_intervals = deal_intervals.filter(pl.lit(keep).gather(pl.col("deal_key")))
        orders = self.orders.lazy().filter(where("orders"))
        if filters.products:
            # a filter, not a semi-join: it keeps the orders' sort
            with_product = self.order_items.filter(pl.col("product").is_in(list(filters.products)))["order_id"]
            orders = orders.filter(pl.col("order_id").is_in(with_product.implode()))
        return Dataset(
            opportunities=opportunities,
            stages=stages,
            pipeline_stages=self.pipeline_stages,
            tickets=self.tickets.lazy().filter(where("tickets")),
            surveys=self.surveys.lazy().filter(where("survey_responses")),
            orders=orders,
            customers=self.customers.lazy().filter(where("customers")),
            deal_intervals=deal_intervals,
            settings=self.settings,
        )

    def last_event_date(self) -> date | None:
        """The latest date any business event is stamped with (None for an empty store)."""
        return self._last_event_date

    @cached_property
    def _last_event_date(self) -> date | None:
        candidates = [
            self.opportunities["created_at"].max(), self.opportunities["closed_at"].max(),
            self.tickets["created_at"].max(), self.surveys["responded_at"].max(), self.orders["ordered_at"].max(),
        ]
        stamps = [c for c in candidates if c is not None]
        return max(stamps).date() if stamps else None  # type: ignore[union-attr]

    def dimension_values(self) -> dict[str, list[str]]:
        """The values each filter dimension takes in the data, sorted (for pickers and URL checks)."""
        return self._dimension_values

    @cached_property
    def _dimension_values(self) -> dict[str, list[str]]:
        def values(*series: pl.Series) -> list[str]:
            merged = pl.concat([s.cast(pl.String) for s in series]).drop_nulls().unique().sort()
            return merged.to_list()

        return {
            "region": values(self.customers["region"], self.opportunities["region"]),
            "segment": values(self.customers["segment"]),
            "product": values(self.opportunities["product"], self.tickets["product"], self.order_items["product"]),
            "team": values(self.opportunities["team"], self.tickets["team"]),
            "owner": values(self.opportunities["owner"], self.tickets["agent"], self.customers["owner"]),
        }

    def is_empty(self) -> bool:
        """True when the store holds no business rows a metric could use."""
        return all(f.height == 0 for f in (self.opportunities, self.tickets, self.surveys, self.orders))


def enrich(raw: dict[str, pl.DataFrame], version: int = 0, settings: ServiceSettings | None = None) -> Frames:
    """Join customer attributes and stage metadata onto the raw tables; ticket durations in calendar
    and business hours (``settings.calendar``) and SLA target hours (``settings.targets``)."""
    from crm.metrics.money import cents
    from crm.metrics.service import sla_target_expr  # crm.metrics imports this module

    settings = settings or ServiceSettings()
    customers = raw["customers"]
    cust = customers.select("customer_id", "region", "segment", "owner")
    stages_meta = raw["pipeline_stages"].sort("position")
    stages = _stage_intervals(raw["opportunity_stages"], stages_meta)
    opportunities = (
        raw["opportunities"].join(cust.select("customer_id", "segment"), on="customer_id", how="left")
        .with_columns(deal_key=pl.int_range(pl.len(), dtype=pl.UInt32))  # the deal's row number
    )
    # each history row learns its deal's row number (null: no such deal), so narrowing is a lookup, and its
    # deal's creation, so "history of the deals created in the period" is a filter, not a join
    stages = stages.join(
        opportunities.select("opportunity_id", "deal_key", deal_created_at="created_at"),
        on="opportunity_id", how="left", maintain_order="left",
    ).with_columns(next_at=_next_entered(stages))
    deal_intervals = _deal_intervals(opportunities, stages, stages_meta)
    tickets = raw["tickets"].join(cust.select("customer_id", "region", "segment"), on="customer_id", how="left")
    first_answer = pl.coalesce("first_response_at", "resolved_at")
    tickets = tickets.with_columns(
        first_answer_at=first_answer,
        first_response_hours=(first_answer - pl.col("created_at")).dt.total_microseconds() / _HOUR_US,
        resolution_hours=(pl.col("resolved_at") - pl.col("created_at")).dt.total_microseconds() / _HOUR_US,
        sla_target_hours=sla_target_expr(settings.targets),
    )
    business = {"created_at": "created_bs", "first_answer_at": "first_answer_bs", "resolved_at": "resolved_bs"}
    tickets = (
        with_business_seconds(tickets.lazy(), business, settings.calendar)
        .with_columns(
            first_response_business_hours=(pl.col("first_answer_bs") - pl.col("created_bs")) / 3600.0,
            resolution_business_hours=(pl.col("resolved_bs") - pl.col("created_bs")) / 3600.0,
        )
        .collect()
    )
    surveys = raw["survey_responses"].join(
        cust.select("customer_id", "region", "segment"), on="customer_id", how="left"
    )
    # an integer key per customer, numbered in customer_id order: set operations (active customers,
    # churn) and per-customer tables (RFM) group, join and sort on ints, not strings; the key and the
    # customer's attributes come in one join (on text: the costly step at 20M orders)
    keys = raw["orders"].select(pl.col("customer_id").unique().sort(nulls_last=True)).with_row_index("customer_key")
    orders = (
        raw["orders"].join(keys.join(cust, on="customer_id", how="left"), on="customer_id", how="left")
        .with_columns(order_date=pl.col("ordered_at").dt.date(), amount_cents=cents(pl.col("amount")))
    )
    # sorted by customer, then date: per-customer group-bys (RFM, active customers, churn) find their
    # groups as slices instead of hashing, and a customer's first and last orders by date are its
    # group's first and last rows (filters keep that order). One Int64 sort key (key, day): a sort
    # on two columns took 5x as long at 20M orders.
    day = (pl.col("order_date").cast(pl.Int32).cast(pl.Int64) + 2**31).fill_null(2**32 - 1)
    orders = (
        orders.with_columns(_order=pl.col("customer_key").cast(pl.Int64) * 2**32 + day)
        .sort("_order", nulls_last=True, maintain_order=True)
        .drop("_order")
        .with_columns(pl.col("customer_key").set_sorted())
    )
    # one chunk per column: the readers and joins above leave several, and every query pays for them
    return Frames(
        customers=customers.rechunk(),
        opportunities=opportunities.rechunk(),
        stages=stages.rechunk(),
        pipeline_stages=stages_meta,
        tickets=tickets.rechunk(),
        surveys=surveys.rechunk(),
        orders=orders.rechunk(),
        order_items=raw["order_items"].rechunk(),
        deal_intervals=deal_intervals.rechunk(),
        version=version,
        settings=settings,
    )


def _stage_intervals(history: pl.DataFrame, stages_meta: pl.DataFrame) -> pl.DataFrame:
    """History rows with their stage's position, kind and probability, ``open_step`` (1..K for open
    stages, in position order) and ``open_until``: when the next open-stage row of the same deal was
    entered (null for its latest). The open stage at moment t is then the one row with
    entered_at <= t < open_until: a filter, not a sort and group-by per query. Rows at the same
    moment are ordered by position, the higher one last (DESIGN.md)."""
    open_steps = (
        stages_meta.filter(pl.col("kind") == "open").sort("position")
        .select("stage", open_step=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    )
    open_at = pl.when(pl.col("open_step").is_not_null()).then(pl.col("entered_at"))
    return (
        history.join(stages_meta, on="stage", how="left")
        .join(open_steps, on="stage", how="left")
        .sort("opportunity_id", "entered_at", "position", nulls_last=True)
        .with_columns(
            open_until=pl.when(pl.col("open_step").is_not_null()).then(
                open_at.shift(-1).backward_fill().over("opportunity_id")
            )
        )
    )


def _next_entered(stages: pl.DataFrame) -> pl.Series:
    """For each history row, when its deal's next history row (any stage) was entered: the rows of a
    deal ordered by entered_at, then position, nulls first (as stage velocity orders them); null for
    the last. Aligned with ``stages``' row order."""
    ordered = (
        stages.select("opportunity_id", "entered_at", "position", _row=pl.int_range(pl.len(), dtype=pl.UInt32))
        .sort("opportunity_id", "entered_at", "position", nulls_last=False)
        .select(
            "_row",
            next_at=pl.when(pl.col("opportunity_id").shift(-1) == pl.col("opportunity_id"))
            .then(pl.col("entered_at").shift(-1)),
        )
    )
    return ordered.sort("_row")["next_at"]


def _deal_intervals(deals: pl.DataFrame, stages: pl.DataFrame, stages_meta: pl.DataFrame) -> pl.DataFrame:
    """Frames.deal_intervals, from the deals (with ``deal_key``) and the stage history with intervals.

    A deal is open at t when it was created by t and is open, or won/lost and closed after t:
    from its creation until its closing (no end if open; never for a won/lost deal without
    closing moment or another status). An open-stage row is current from its entry until
    ``open_until``; before the first one the deal is at the first open stage. Intersecting the
    two gives the stretches; empty ones are dropped.
    """
    status = pl.col("status")
    can_be_open = (status == "open") | (status.is_in(["won", "lost"]) & pl.col("closed_at").is_not_null())
    open_rows = stages.filter(pl.col("open_step").is_not_null())
    first_open = open_rows.group_by("opportunity_id").agg(first_open_at=pl.col("entered_at").min())
    lives = (
        deals.filter(can_be_open & pl.col("created_at").is_not_null())
        .select("opportunity_id", "deal_key", "amount", open_from=pl.col("created_at"),
                open_until=pl.when(status.is_in(["won", "lost"])).then(pl.col("closed_at")))
    )
    first_stage = stages_meta.filter(pl.col("kind") == "open").sort("position")["win_probability"].head(1)
    at_stage = open_rows.filter(pl.col("entered_at").is_not_null()).select(
        "opportunity_id", "entered_at", "win_probability", row_until="open_until"
    )
    staged = at_stage.join(lives, on="opportunity_id", how="inner").select(
        "deal_key", "amount", "win_probability",
        valid_from=pl.max_horizontal("open_from", "entered_at"),
        valid_until=pl.min_horizontal("open_until", "row_until"),  # min ignores nulls: null is "no end"
    )
    before_first = lives.join(first_open, on="opportunity_id", how="left").select(
        "deal_key", "amount",
        win_probability=pl.lit(first_stage[0] if first_stage.len() else None, dtype=pl.Float64),
        valid_from="open_from",
        valid_until=pl.min_horizontal("open_until", "first_open_at"),
    )
    return (
        pl.concat([staged, before_first])
        .filter(pl.col("valid_until").is_null() | (pl.col("valid_until") > pl.col("valid_from")))
        .with_columns(from_day=_day_up("valid_from"), until_day=_day_up("valid_until"))
    )


def _day_up(column: str) -> pl.Expr:
    """Days since 1970-01-01 of the first midnight at or after the timestamp (null stays null)."""
    us: pl.Expr = pl.col(column).dt.epoch("us")
    return (-(-us // _DAY_US)).cast(pl.Int32)


def empty_raw() -> dict[str, pl.DataFrame]:
    """Empty canonical frames with the right dtypes (for a store with no data)."""
    return {name: pl.DataFrame(schema=schema.polars_schema(name, cols)) for name, cols in COLUMNS.items()}


def load_frames(store: Store, version: int | None = None) -> Frames:
    """Read every table the metrics need (projected columns) and enrich it."""
    version = store.data_version() if version is None else version
    if not store.has_schema():
        return enrich(empty_raw(), version)
    raw = {name: within_calendar(name, store.read(name, cols)) for name, cols in COLUMNS.items()}
    return enrich(raw, version, load_settings(store))


def within_calendar(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """A table as the metrics may use it: timestamps outside 1900–2100 (written by other tools) are
    unknown, and a row whose required timestamp is then unknown is left out."""
    stamps = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime | pl.Date)]
    if not stamps:
        return frame
    cleaned = frame.with_columns(
        pl.when(pl.col(c).cast(pl.Datetime("us")).is_between(schema.EARLIEST, schema.LATEST)).then(pl.col(c)).alias(c)
        for c in stamps)
    required = [c.name for c in schema.table(name).columns if not c.nullable and c.name in stamps]
    return cleaned.drop_nulls(required) if required else cleaned


DEMO_PIPELINE: list[dict[str, object]] = [
    {"stage": "lead", "position": 1, "win_probability": 0.1, "kind": "open"},
    {"stage": "qualified", "position": 2, "win_probability": 0.25, "kind": "open"},
    {"stage": "proposal", "position": 3, "win_probability": 0.5, "kind": "open"},
    {"stage": "negotiation", "position": 4, "win_probability": 0.75, "kind": "open"},
    {"stage": "won", "position": 5, "win_probability": 1.0, "kind": "won"},
    {"stage": "lost", "position": 6, "win_probability": 0.0, "kind": "lost"},
]
"""The demo store's stages (DESIGN.md), for hand-made frames in tests and examples."""


def frames_from_rows(tables: dict[str, list[dict[str, object]]], settings: ServiceSettings | None = None) -> Frames:
    """Frames from a few hand-written rows per table; missing columns and tables are empty.

    ``pipeline_stages`` defaults to the demo stages. Used by unit tests and docs.
    """
    raw = empty_raw()
    rows = {"pipeline_stages": DEMO_PIPELINE, **tables}
    for name, records in rows.items():
        target = schema.polars_schema(name, COLUMNS[name])
        raw[name] = pl.DataFrame(
            [{c: r.get(c) for c in target} for r in records], schema=target, orient="row"
        ) if records else raw[name]
    return enrich(raw, settings=settings)
