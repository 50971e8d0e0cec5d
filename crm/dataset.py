"""Tables read once per data version into Polars, enriched for fast filtering.

``load_frames`` reads only the columns the metrics need and copies the
customer's region/segment/owner onto the fact tables (joins once, not per
filter). ``Frames.narrow`` applies the dimension filters lazily; the period is
applied later, by each metric, because pipeline, backlog, churn and previous
periods need rows from before the period.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import polars as pl

from crm import schema, snapshot
from crm.business_hours import with_business_seconds
from crm.money import cents
from crm.quality import score_off_scale, usable
from crm.settings import ChurnBasis, ServiceSettings, load_churn_basis, load_settings, sla_target_expr
from crm.snapshot import SnapshotWriter, one_chunk, read_snapshot, snapshot_dir, unchanged_raw
from crm.store import Store

T = TypeVar("T")

COLUMNS: dict[str, list[str]] = {
    "customers": [
        "customer_id", "name", "email", "phone", "region", "country", "segment", "industry", "source", "owner",
        "created_at", "churned_at",
    ],
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
    "interactions": [
        "interaction_id", "customer_id", "opportunity_id", "kind", "occurred_at", "owner", "due_at", "completed_at",
    ],
}

_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000


class _Narrowed:
    """A table of a Dataset: ``Dataset.narrowed(name)`` on first use, then kept on the instance."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, ds: Dataset, owner: type | None = None) -> pl.LazyFrame:
        table = ds.narrowed(self.name)
        ds.__dict__[self.name] = table  # the instance's own attribute from now on (the Dataset is frozen)
        return table


@dataclass(frozen=True)
class Dataset:
    """The lazily narrowed frames one filter sees (no period applied yet). Each table is narrowed when a
    query first asks for it (``narrowed``), so a page pays only for the tables its numbers read."""

    narrowed: Callable[[str], pl.LazyFrame]
    """A table by its Frames field name, narrowed (Frames._select)."""
    pipeline_stages: pl.DataFrame
    deal_rows: Callable[[str, pl.Series], pl.LazyFrame]
    """``deal_rows(table, deal_keys)``: the rows of ``opportunities`` or ``stages`` of deals in view by their
    ``deal_key``, looked up rather than joined (Frames._deal_rows)."""
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    churn_basis: ChurnBasis = ChurnBasis.ACTIVITY
    """What "active customer" means for active customers and churn (a store setting)."""

    opportunities = _Narrowed()
    stages = _Narrowed()
    """The deal history, narrowed like the deals."""
    tickets = _Narrowed()
    surveys = _Narrowed()
    orders = _Narrowed()
    """Sorted by customer_key, then order_date (as ``Frames.orders``; narrowing only filters)."""
    customers = _Narrowed()
    deal_intervals = _Narrowed()
    """The deals' open stretches (see ``Frames.deal_intervals``), narrowed like the deals."""
    interactions = _Narrowed()
    """Calls, emails, meetings and chats (see ``Frames.interactions``)."""


GATHER_ROWS = 1 << 16
"""Rows of a child table whose deals ``Frames._deals_of`` looks up at a time (the slice stays in the CPU's
cache)."""


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
    of the stage, ``valid_from`` / ``valid_until`` (null: no end). As of any moment t (events stamped
    before t) a deal open then (``open_at``) has exactly one row with valid_from < t <= valid_until,
    carrying the probability of its stage then (``stage_at``); a deal not open has none. ``from_day`` /
    ``until_day``: the day numbers (days since 1970-01-01) of the first midnight after valid_from /
    valid_until.
    The pipeline at many moments is then a filter and sums, no join (crm.metrics.sales)."""
    interactions: pl.DataFrame
    """Calls, emails, meetings and chats with a customer (``owner``: who made it; ``due_at`` /
    ``completed_at``: a follow-up), with the customer's ``region``, ``segment`` and ``customer_owner``."""
    version: int = 0
    stamp: str | None = None
    """The stamp of the data state these frames were loaded from (crm.store.Store.data_state), which names
    its snapshot and the results kept next to it (crm.results); None when not loaded from a store."""
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    churn_basis: ChurnBasis = ChurnBasis.ACTIVITY
    _memo: dict[object, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _masks: OrderedDict[Hashable, dict[str, pl.Series | None]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False, hash=False)
    _masks_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False,
                                        hash=False)

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

    def _select(self, where: Mapping[str, pl.Expr], products: tuple[str, ...], key: Hashable) -> Dataset:
        """The rows ``where[table]`` keeps (lazily; a table not named keeps every row; tables by the store's
        names: ``survey_responses``); deal history and deal intervals follow their deals; with ``products``,
        the orders holding one of them.

        The rows a table keeps are worked out once, when a query first reads it, as a mask kept under
        ``key`` (what ``where`` and ``products`` were built from) for the next views of the same filter (the
        last ``KEPT_MASKS``): a page asks for many numbers of one filter, and each would otherwise evaluate
        the filter again, and look each history row's deal up (``_row_mask``).

        Private on purpose: crm.narrowing.narrow is the one door, which builds ``where`` from the
        filters, the customer selection and the person's scope together (tests/unit/test_narrowing.py
        checks that nothing else calls this)."""
        if not where and not products:
            return self._dataset(lambda name: getattr(self, name).lazy())

        def masked(name: str) -> pl.LazyFrame:
            mask = self._row_mask(key, name, where, products)
            frame = getattr(self, name).lazy()
            return frame if mask is None else frame.filter(pl.lit(mask))

        return self._dataset(masked)

    KEPT_MASKS = 8
    """How many filters' row masks ``_select`` keeps (a bit per row of every table: 16 MB at 10M deals)."""

    def _row_mask(self, key: Hashable, name: str, where: Mapping[str, pl.Expr], products: tuple[str, ...]
                  ) -> pl.Series | None:
        """The rows of table ``name`` (a Frames field) that ``where`` keeps, as a Boolean mask (null and
        false both drop a row, as in a filter), None when it keeps every row; the deal history and
        intervals get their deal's (a lookup by ``deal_key``, the deal's row number; no deal, no row).
        Kept per ``key`` and table; the masks of the last KEPT_MASKS keys."""
        with self._masks_lock:
            masks = self._masks.get(key)
            if masks is None:
                masks = self._masks[key] = {}
                while len(self._masks) > Frames.KEPT_MASKS:
                    self._masks.popitem(last=False)
            self._masks.move_to_end(key)
            if name in masks:
                return masks[name]
        if name in ("stages", "deal_intervals"):
            deal = self._row_mask(key, "opportunities", where, products)
            mask = None if deal is None else self._deals_of(name, deal)
        else:
            expr = where.get(_STORE_NAMES.get(name, name))
            if name == "orders" and products:
                expr = (pl.lit(True) if expr is None else expr) & _holding(self.order_items, products)
            mask = None if expr is None else getattr(self, name).select(expr.fill_null(False))[:, 0]
        with self._masks_lock:
            masks[name] = mask
        return mask

    def _deals_of(self, name: str, deal: pl.Series) -> pl.Series:
        """Per row of ``name`` (stages or deal_intervals), its deal's value in the deal mask ``deal``: a
        NumPy gather (4x faster than Polars' for a Boolean series), ``GATHER_ROWS`` keys at a time, each
        slice of the 32-bit keys widened to NumPy's index type first: NumPy widens 32-bit indices itself,
        all at once and slowly (31M history rows: 46 ms against 89 ms, without a 64-bit copy of the keys
        kept in memory)."""
        keys, known = self._deal_keys[name]
        looked_up = np.zeros(len(keys), dtype=bool)
        if deal.len():
            values = deal.to_numpy()
            for start in range(0, len(keys), GATHER_ROWS):
                stop = start + GATHER_ROWS
                np.take(values, keys[start:stop].astype(np.intp), out=looked_up[start:stop])
        mask = pl.Series("keep", looked_up, dtype=pl.Boolean)
        return mask if known is None else mask & known

    @cached_property
    def _deal_keys(self) -> dict[str, tuple[np.ndarray, pl.Series | None]]:
        """Each child table's ``deal_key`` as a NumPy array (nulls as 0: no copy when there are none) and
        which rows have one (None: all)."""
        out: dict[str, tuple[np.ndarray, pl.Series | None]] = {}
        for name in ("stages", "deal_intervals"):
            keys = getattr(self, name)["deal_key"]
            nulls = keys.null_count() > 0
            out[name] = (keys.fill_null(0).to_numpy() if nulls else keys.to_numpy(), keys.is_not_null() if nulls else None)
        return out

    def _dataset(self, narrowed: Callable[[str], pl.LazyFrame]) -> Dataset:
        return Dataset(narrowed, self.pipeline_stages, self._deal_rows, settings=self.settings,
                       churn_basis=self.churn_basis)

    def _deal_rows(self, table: str, deal_keys: pl.Series) -> pl.LazyFrame:
        """The rows of ``opportunities`` or of the deal history (``stages``) of the deals whose ``deal_key`` is
        in ``deal_keys``, deals a narrowed Dataset of these frames holds: every history row of a deal in view
        is in view, so no filter applies. Lookups by the deal's row number, not joins over the whole table:
        for a page's few thousand deals, a gather of their rows, and one key read per history row (31M rows
        at 10M deals) instead of hashing every row."""
        keys = deal_keys.drop_nulls().unique().sort()
        if table == "opportunities":
            return self.opportunities[keys].lazy()
        if table != "stages":
            raise ValueError(f"deal rows are looked up in opportunities or stages, not {table!r}")
        wanted = np.zeros(self.opportunities.height, dtype=bool)
        wanted[keys.to_numpy()] = True
        return self.stages.filter(self._deals_of("stages", pl.Series(wanted))).lazy()

    def last_event_date(self) -> date | None:
        """The latest date any business event is stamped with (None for an empty store)."""
        return self._last_event_date

    @cached_property
    def _last_event_date(self) -> date | None:
        candidates = [
            self.opportunities["created_at"].max(), self.opportunities["closed_at"].max(),
            self.tickets["created_at"].max(), self.surveys["responded_at"].max(), self.orders["ordered_at"].max(),
        ]
        if self.churn_basis is ChurnBasis.SUBSCRIPTION:  # sign-ups and cancellations are then the customers' events
            candidates += [self.customers["created_at"].max(), self.customers["churned_at"].max()]
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
        """True when the store holds no business rows a metric could use (customers count under the
        subscription churn basis: active customers and churn are then read from them)."""
        facts = [self.opportunities, self.tickets, self.surveys, self.orders]
        if self.churn_basis is ChurnBasis.SUBSCRIPTION:
            facts.append(self.customers)
        return all(f.height == 0 for f in facts)


Keep = Callable[[str, pl.DataFrame], pl.DataFrame]
"""Told each prepared table as it is finished (its Frames field name); returns the frame to go on with
(crm.snapshot.SnapshotWriter.prepared: the same rows, written and memory-mapped, or kept to be written)."""


def enrich(raw: dict[str, pl.DataFrame], version: int = 0, settings: ServiceSettings | None = None,
           churn_basis: ChurnBasis = ChurnBasis.ACTIVITY, keep: Keep | None = None) -> Frames:
    """Join customer attributes and stage metadata onto the raw tables; ticket durations in calendar
    and business hours (``settings.calendar``) and SLA target hours (``settings.targets``); the
    metrics count active customers on ``churn_basis``. ``keep`` (optional) takes each table as soon as
    it is prepared, so what is finished need not stay in the process's memory."""

    settings = settings or ServiceSettings()
    done: Keep = keep or (lambda name, frame: frame)
    # one chunk per column: the readers and joins leave several, and every query pays for them
    customers = done("customers", one_chunk(raw["customers"]))
    cust = customers.select("customer_id", "region", "segment", "owner")
    stages_meta = done("pipeline_stages", raw["pipeline_stages"].sort("position"))
    opportunities = done("opportunities", (
        raw["opportunities"].join(cust.select("customer_id", "segment"), on="customer_id", how="left")
        .with_columns(deal_key=pl.int_range(pl.len(), dtype=pl.UInt32))  # the deal's row number
    ).rechunk())
    stages = _stage_intervals(raw["opportunity_stages"], stages_meta)
    # each history row learns its deal's row number (null: no such deal), so narrowing is a lookup, and its
    # deal's creation, so "history of the deals created in the period" is a filter, not a join
    stages = done("stages", stages.join(
        opportunities.select("opportunity_id", "deal_key", deal_created_at="created_at"),
        on="opportunity_id", how="left", maintain_order="left",
    ).with_columns(next_at=_next_entered(stages)).rechunk())
    deal_intervals = done("deal_intervals", _deal_intervals(opportunities, stages, stages_meta).rechunk())
    tickets = raw["tickets"].join(cust.select("customer_id", "region", "segment"), on="customer_id", how="left")
    first_answer = pl.coalesce("first_response_at", "resolved_at")
    tickets = tickets.with_columns(
        first_answer_at=first_answer,
        first_response_hours=(first_answer - pl.col("created_at")).dt.total_microseconds() / _HOUR_US,
        resolution_hours=(pl.col("resolved_at") - pl.col("created_at")).dt.total_microseconds() / _HOUR_US,
        sla_target_hours=sla_target_expr(settings.targets),
    )
    business = {"created_at": "created_bs", "first_answer_at": "first_answer_bs", "resolved_at": "resolved_bs"}
    tickets = done("tickets", (
        with_business_seconds(tickets.lazy(), business, settings.calendar)
        .with_columns(
            first_response_business_hours=(pl.col("first_answer_bs") - pl.col("created_bs")) / 3600.0,
            resolution_business_hours=(pl.col("resolved_bs") - pl.col("created_bs")) / 3600.0,
        )
        .collect()
    ).rechunk())
    # a score off its scale is not a response (DESIGN.md); load_frames already left such rows out
    # (quality.usable), hand-made frames come here directly
    surveys = done("surveys", raw["survey_responses"].filter(~score_off_scale().fill_null(False)).join(
        cust.select("customer_id", "region", "segment"), on="customer_id", how="left"
    ).rechunk())
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
    orders = done("orders", (
        orders.with_columns(_order=pl.col("customer_key").cast(pl.Int64) * 2**32 + day)
        .sort("_order", nulls_last=True, maintain_order=True)
        .drop("_order")
        .with_columns(pl.col("customer_key").set_sorted())
    ).rechunk())
    return Frames(
        customers=customers,
        opportunities=opportunities,
        stages=stages,
        pipeline_stages=stages_meta,
        tickets=tickets,
        surveys=surveys,
        orders=orders,
        order_items=done("order_items", one_chunk(raw["order_items"])),
        deal_intervals=deal_intervals,
        interactions=done("interactions", raw["interactions"].join(
            cust.select("customer_id", "region", "segment", customer_owner="owner"), on="customer_id", how="left"
        ).rechunk()),
        version=version,
        settings=settings,
        churn_basis=churn_basis,
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
        .with_columns(from_day=_day_after("valid_from"), until_day=_day_after("valid_until"))
    )


_STORE_NAMES = {"surveys": "survey_responses"}
"""Frames fields whose table has another name in the store (and in ``where``)."""


def _holding(order_items: pl.DataFrame, products: tuple[str, ...]) -> pl.Expr:
    """Orders holding one of ``products`` (a filter, not a semi-join: it keeps the orders' sort)."""
    with_product = order_items.filter(pl.col("product").is_in(list(products)))["order_id"]
    return pl.col("order_id").is_in(with_product.implode())


def _day_after(column: str) -> pl.Expr:
    """Days since 1970-01-01 of the first midnight strictly after the timestamp (null stays null): an
    event stamped exactly at midnight exists from the next midnight on."""
    us: pl.Expr = pl.col(column).dt.epoch("us")
    return (us // _DAY_US + 1).cast(pl.Int32)


def empty_raw() -> dict[str, pl.DataFrame]:
    """Empty canonical frames with the right dtypes (for a store with no data)."""
    return {name: pl.DataFrame(schema=schema.polars_schema(name, cols)) for name, cols in COLUMNS.items()}


Progress = Callable[[float, str], None]
"""Told how far a load is: a fraction 0..1 and the step in words (``Reading table 2 of 9: …``)."""

READ_SHARE = 0.8
"""The part of a load's progress given to reading tables; the rest is preparing them (``enrich``)."""


def load_frames(store: Store, version: int | None = None, progress: Progress | None = None,
                snapshots: bool = True, save_in_background: bool = False) -> Frames:
    """Read every table the metrics need (projected columns) and enrich it; or, when a prepared snapshot
    of the store's current data state exists (crm.snapshot) and ``snapshots``, memory-map that instead.

    ``progress`` (optional) hears each step: before table i of n is read ``(READ_SHARE × (i − 1) / n,
    "Reading table i of n: NAME (R rows so far)")``, then ``(READ_SHARE, "Preparing R rows: …")`` and
    ``(1.0, "Ready: R rows")``, R counting the rows read. A snapshot is one step: ``(1.0, "Ready: …")``.
    A load from the store writes the snapshot of that data state (crm.snapshot.SnapshotWriter), put in place
    when nothing changed while reading. A large store (more than SPILL_ROWS deals and tickets) is written as
    it goes, each table once read or prepared, then mapped back, so the load holds little in memory; a
    smaller one at the end: ``(1.0, "Saving a prepared snapshot …")``, or with ``save_in_background`` (the
    app) by a thread, so the first page need not wait for the disk.
    """
    say = progress or (lambda fraction, text: None)
    current, stamp = store.data_state()
    version = current if version is None else version
    if not store.has_schema():
        return enrich(empty_raw(), version)
    folder = snapshot_dir() if snapshots and version == current else None
    mapped = read_snapshot(folder, version, stamp)
    if mapped is not None:
        frames = Frames(**mapped, version=version, stamp=stamp, settings=load_settings(store),
                        churn_basis=load_churn_basis(store))
        say(1.0, f"Ready: {sum(t.height for t in mapped.values()):,} prepared rows from the snapshot")
        return frames
    present = store.column_names(list(COLUMNS))
    writer = None
    if folder is not None and stamp is not None:
        spill = sum(store.row_count(t) for t in ("opportunities", "tickets") if present.get(t)) > snapshot.SPILL_ROWS
        writer = SnapshotWriter(folder, version, stamp, spill=spill)
    stamps = store.table_stamps() if writer is not None else {}
    kept = unchanged_raw(folder, stamps)  # tables no write touched since a snapshot: not read again
    raw: dict[str, pl.DataFrame] = {}
    rows = 0
    for i, (name, cols) in enumerate(COLUMNS.items(), start=1):
        if writer is not None and name in kept:
            say(READ_SHARE * (i - 1) / len(COLUMNS), f"Table {i} of {len(COLUMNS)}: {name} unchanged ({rows:,} rows so far)")
            raw[name] = writer.linked(name, kept[name], stamps[name])
        else:
            say(READ_SHARE * (i - 1) / len(COLUMNS), f"Reading table {i} of {len(COLUMNS)}: {name} ({rows:,} rows so far)")
            table = usable(name, _read_present(store, name, cols, present[name]))
            raw[name] = writer.raw(name, table, stamps.get(name)) if writer is not None else table
            del table  # spilling: not held while the next table is read
        rows += raw[name].height
    say(READ_SHARE, f"Preparing {rows:,} rows: joins, stage history, business hours")
    frames = enrich(raw, version, load_settings(store), load_churn_basis(store),
                    keep=writer.prepared if writer is not None else None)
    if writer is not None:
        if store.data_state() != (current, stamp):  # changed while reading: the snapshot would name the wrong state
            writer.discard()
            writer = None
        elif writer.spill or not save_in_background:
            if not writer.spill:
                say(1.0, f"Saving a prepared snapshot of {rows:,} rows for the next start")
            writer.commit()
        else:  # the frames are immutable: the person need not wait for the disk
            threading.Thread(target=writer.commit, name=f"crm-snapshot-v{version}").start()
    say(1.0, f"Ready: {rows:,} rows")
    # the stamp names the snapshot (and its kept results, crm.results) of what was read: only when it was kept
    return dataclasses.replace(frames, stamp=stamp) if writer is not None else frames


def _read_present(store: Store, name: str, columns: list[str], present: set[str]) -> pl.DataFrame:
    """``store.read`` of the columns the stored table has: a nullable column a newer schema added (such as
    customers.churned_at) that an older store lacks reads as empty until its next write adds it
    (Store.ensure_schema), so reading never needs to write. A missing table is read as usual (and fails)."""
    if not present or all(c in present for c in columns):
        return store.read(name, columns)
    target = schema.polars_schema(name, columns)
    frame = store.read(name, [c for c in columns if c in present])
    return frame.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in target.items() if c not in present).select(columns)


DEMO_PIPELINE: list[dict[str, object]] = [
    {"stage": "lead", "position": 1, "win_probability": 0.1, "kind": "open"},
    {"stage": "qualified", "position": 2, "win_probability": 0.25, "kind": "open"},
    {"stage": "proposal", "position": 3, "win_probability": 0.5, "kind": "open"},
    {"stage": "negotiation", "position": 4, "win_probability": 0.75, "kind": "open"},
    {"stage": "won", "position": 5, "win_probability": 1.0, "kind": "won"},
    {"stage": "lost", "position": 6, "win_probability": 0.0, "kind": "lost"},
]
"""The demo store's stages (DESIGN.md), for hand-made frames in tests and examples."""


def frames_from_rows(tables: dict[str, list[dict[str, object]]], settings: ServiceSettings | None = None,
                     churn_basis: ChurnBasis = ChurnBasis.ACTIVITY) -> Frames:
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
    return enrich(raw, settings=settings, churn_basis=churn_basis)
