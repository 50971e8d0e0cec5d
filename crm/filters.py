"""The global filters: a frozen dataclass that is the cache key, renders to the URL
query string and back, to Polars expressions and to SQL conditions.

Dimension filters and which column they apply to on each table:

| filter   | opportunities | tickets | survey_responses | orders | customers |
|----------|---------------|---------|------------------|--------|-----------|
| region   | own region    | customer's | customer's    | customer's | own |
| segment  | customer's    | customer's | customer's    | customer's | own |
| product  | own product   | own     | own              | has an item of it | - |
| team     | own (sales)   | own (support) | own        | -      | - |
| owner    | own owner     | agent   | agent            | customer's owner | own |
| customers| customer_id   | customer_id | customer_id  | customer_id | customer_id |

"-" means the filter does not narrow that table. The enriched frames in
``crm.dataset`` carry the customer's region/segment/owner as ``region``,
``segment``, ``owner`` where the table has none of its own.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import polars as pl
import sqlalchemy as sa

from crm import schema
from crm.scope import Scope

DIMENSIONS: tuple[str, ...] = ("region", "segment", "product", "team", "owner")

# table -> dimension -> column of the enriched frame (None: not applicable)
DIMENSION_COLUMNS: dict[str, dict[str, str | None]] = {
    "opportunities": {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "owner"},
    "tickets": {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "agent"},
    "survey_responses": {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "agent"},
    "orders": {"region": "region", "segment": "segment", "product": None, "team": None, "owner": "owner"},
    "customers": {"region": "region", "segment": "segment", "product": None, "team": None, "owner": "owner"},
    "interactions": {"region": "region", "segment": "segment", "product": None, "team": None, "owner": "owner"},
}

# Columns that live on customers, not on the fact table itself (for SQL pushdown).
_CUSTOMER_SIDE: dict[str, set[str]] = {
    "opportunities": {"segment"},
    "tickets": {"region", "segment"},
    "survey_responses": {"region", "segment"},
    "orders": {"region", "segment", "owner"},
    "customers": set(),
    "interactions": {"region", "segment"},
}

TIME_COLUMNS: dict[str, str] = {
    "opportunities": "created_at",
    "opportunity_stages": "entered_at",
    "tickets": "created_at",
    "survey_responses": "responded_at",
    "orders": "ordered_at",
    "interactions": "occurred_at",
}

PRESETS: dict[str, str] = {
    "last_30": "Last 30 days",
    "last_90": "Last 90 days",
    "qtd": "Quarter to date",
    "ytd": "Year to date",
    "last_365": "Last 365 days",
    "custom": "Custom range",
}
DEFAULT_PRESET = "last_90"

PAGE_PARAMS: tuple[str, ...] = (
    "mode", "by", "grain", "vs", "kind", "drill", "basis", "split", "window", "measure", "dim", "x", "y", "customer",
    "support", "confidence", "lift",
)
"""Query parameters owned by pages (view settings): not filters, not unknown. Which page owns which, with
their values and defaults, is ``crm.views.VIEWS`` (a test keeps the two in step)."""


FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2100, 12, 31)
"""The calendar a link or the command line may ask for (the store's timestamps are bounded the same way,
crm.schema); the previous period and trends may reach before it."""


@dataclass(frozen=True, order=True)
class Period:
    """Inclusive calendar dates ``start``..``end``; its end moment is midnight after ``end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        """Number of calendar days, both ends included."""
        return (self.end - self.start).days + 1

    @property
    def start_ts(self) -> datetime:
        """Midnight at the start of ``start``."""
        return datetime.combine(self.start, time())

    @property
    def end_ts(self) -> datetime:
        """Midnight after ``end``: events stamped later do not exist for this period."""
        return datetime.combine(self.end + timedelta(days=1), time())

    def previous(self) -> Period:
        """The same number of days just before ``start``."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def label(self) -> str:
        """``2026-01-01 – 2026-03-31``."""
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


FEW_VALUES = 8
"""Up to this many values, ``one_of`` compares each instead of looking them up (``is_in``)."""


def one_of(column: str | pl.Expr, values: Sequence[str]) -> pl.Expr:
    """True where ``column`` holds one of ``values`` (null where it is null: a filter drops the row).

    For a few values an OR of equalities, which Polars evaluates on text 3-4 times faster than
    ``is_in`` (21 ms against 63 ms over 22M rows; bench/RESULTS.md, "10M deals"); for more, ``is_in``."""
    expr = pl.col(column) if isinstance(column, str) else column
    if not values:
        return pl.lit(False)
    if len(values) > FEW_VALUES:
        return expr.is_in(list(values))
    out = expr == values[0]
    for value in values[1:]:
        out = out | (expr == value)
    return out


def month_periods(end: date, months: int) -> list[Period]:
    """The ``months`` calendar months ending with the month of ``end`` (that one cut at ``end``)."""
    periods: list[Period] = []
    year, month = end.year, end.month
    for _ in range(months):
        first = date(year, month, 1)
        last = date(year, month, calendar.monthrange(year, month)[1])
        periods.append(Period(first, min(last, end)))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return periods[::-1]


def bucket_start(day: date, grain: str) -> date:
    """The Monday of ``day``'s week (``grain="week"``) or the first of its month."""
    return day - timedelta(days=day.weekday()) if grain == "week" else day.replace(day=1)


def bucket_end(start: date, grain: str) -> date:
    """The last day of the week or month starting on ``start``."""
    if grain == "week":
        return start + timedelta(days=6)
    return date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])


def period_from_range(low: date, high: date, grain: str, within: Period) -> Period:
    """The period a brushed time range on a week/month trend stands for, in whole buckets.

    A bucket is drawn at its first day; the buckets drawn inside ``low``..``high``
    are chosen (none: the one holding the middle of the range), and the period
    runs from the first one's start to the last one's end, kept inside ``within``.
    """
    low, high = min(low, high), max(low, high)
    first = bucket_start(low, grain)
    if first < low:
        first = bucket_start(bucket_end(first, grain) + timedelta(days=1), grain)
    last = bucket_start(high, grain)
    if first > last:  # no bucket start inside the range
        first = last = bucket_start(low + (high - low) / 2, grain)
    start = max(first, within.start)
    end = min(bucket_end(last, grain), within.end)
    return Period(start, max(start, end))


def resolve_preset(preset: str, anchor: date) -> Period:
    """The period a preset names, ending on ``anchor`` (the last day with data, or today)."""
    if preset == "last_30":
        return Period(anchor - timedelta(days=29), anchor)
    if preset == "last_90":
        return Period(anchor - timedelta(days=89), anchor)
    if preset == "last_365":
        return Period(anchor - timedelta(days=364), anchor)
    if preset == "qtd":
        return Period(date(anchor.year, 3 * ((anchor.month - 1) // 3) + 1, 1), anchor)
    if preset == "ytd":
        return Period(date(anchor.year, 1, 1), anchor)
    raise ValueError(f"unknown period preset {preset!r}; one of {', '.join(PRESETS)}")


def _clean(values: Sequence[str]) -> tuple[str, ...]:
    """Sorted unique non-empty values: equal selections give equal cache keys."""
    return tuple(sorted({v.strip() for v in values if v and v.strip()}))


@dataclass(frozen=True)
class Filters:
    """Everything that narrows what a page shows. Hashable: it is the cache key."""

    period: Period
    preset: str = "custom"
    compare: bool = True
    regions: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    customers: tuple[str, ...] = field(default=())
    selection: tuple[tuple[str, str], ...] = ()
    """A chart selection as (key, value) pairs, e.g. (("owner", "Ann"), ("step", "3")); pages interpret it."""
    segment_rule: str = ""
    """A customer set as a rule (crm.segments.SegmentRule JSON, with its as_of day): the customers it
    selects narrow every table, like ``customers``. In the URL as ``seg=``."""
    scope: Scope | None = None
    """The rows the person may see (crm.scope), from who is signed in (the app) or ``--as USER`` (the CLI);
    never from the URL. Part of the cache key like every other field. ``None`` is "nobody said": the one
    narrowing step (crm.narrowing.narrow) refuses such filters, so no view can forget the scope."""

    @classmethod
    def create(
        cls,
        period: Period,
        preset: str = "custom",
        compare: bool = True,
        *,
        regions: Sequence[str] = (),
        segments: Sequence[str] = (),
        products: Sequence[str] = (),
        teams: Sequence[str] = (),
        owners: Sequence[str] = (),
        customers: Sequence[str] = (),
        selection: Sequence[tuple[str, str]] = (),
        segment_rule: str = "",
        scope: Scope | None = None,
    ) -> Filters:
        """Build with normalised (sorted, unique, stripped) dimension values and selection pairs."""
        return cls(
            period=period, preset=preset, compare=compare,
            regions=_clean(regions), segments=_clean(segments), products=_clean(products), teams=_clean(teams),
            owners=_clean(owners), customers=_clean(customers),
            selection=tuple(sorted({(str(k), str(v)) for k, v in selection})),
            segment_rule=segment_rule.strip(), scope=scope,
        )

    def dimension_values(self) -> dict[str, tuple[str, ...]]:
        """``{"region": (...), ...}`` for the five dimensions."""
        return {
            "region": self.regions, "segment": self.segments, "product": self.products,
            "team": self.teams, "owner": self.owners,
        }

    def with_selection(self, selection: Sequence[tuple[str, str]]) -> Filters:
        """A copy with another chart selection (normalised)."""
        return dataclasses.replace(self, selection=tuple(sorted({(str(k), str(v)) for k, v in selection})))

    def selected(self, key: str) -> tuple[str, ...]:
        """The selected values for one selection key, e.g. ``selected("step")``."""
        return tuple(v for k, v in self.selection if k == key)

    def with_scope(self, scope: Scope) -> Filters:
        """A copy limited to ``scope`` (the signed-in person's rows)."""
        return dataclasses.replace(self, scope=scope)

    def with_period(self, period: Period, preset: str = "custom") -> Filters:
        """A copy over another period."""
        return dataclasses.replace(self, period=period, preset=preset)

    def ending(self) -> Filters:
        """A copy over the period's last day only: the cache key of views anchored there (12-month trends)."""
        return self.with_period(Period(self.period.end, self.period.end))

    def without_period(self) -> tuple[object, ...]:
        """The part of the key that does not depend on the period (for trends)."""
        return (self.regions, self.segments, self.products, self.teams, self.owners, self.customers,
                self.segment_rule, self.scope)

    def is_narrowed(self) -> bool:
        """True when any dimension, customer or scope filter is set."""
        return any(self.without_period()[:-1]) or not (self.scope is None or self.scope.unrestricted)

    def describe(self) -> str:
        """A short human description, e.g. for captions and export file names."""
        parts = [self.period.label()]
        for dim, values in self.dimension_values().items():
            if values:
                parts.append(f"{dim}={'+'.join(values)}")
        if self.customers:
            parts.append(f"{len(self.customers)} selected customers")
        if self.segment_rule:
            parts.append("a customer segment")
        if self.selection:
            parts.append("selected " + " ".join(f"{k}={v}" for k, v in self.selection))
        if self.scope is not None and not self.scope.unrestricted:
            parts.append(f"within the scope {self.scope.describe()}")
        return ", ".join(parts)

    # --- URL ----------------------------------------------------------------

    def to_query_params(self) -> dict[str, list[str]]:
        """Query-string form: ``period`` (preset) or ``from``/``to``, repeatable dimensions."""
        params: dict[str, list[str]] = {}
        if self.preset != "custom":
            params["period"] = [self.preset]
        else:
            params["from"] = [self.period.start.isoformat()]
            params["to"] = [self.period.end.isoformat()]
        if not self.compare:
            params["compare"] = ["0"]
        for dim, values in self.dimension_values().items():
            if values:
                params[dim] = list(values)
        if self.customers:
            params["customers"] = [",".join(self.customers)]
        if self.segment_rule:
            params["seg"] = [self.segment_rule]
        if self.selection:
            params["select"] = [f"{k}:{v}" for k, v in self.selection]
        return params

    @classmethod
    def from_query_params(
        cls,
        params: Mapping[str, Sequence[str]],
        anchor: date,
        known: Mapping[str, Sequence[str]] | None = None,
        page_keys: Sequence[str] = PAGE_PARAMS,
        latest: date | None = None,
    ) -> tuple[Filters, list[str]]:
        """Parse a query string; invalid parts are dropped and described in the notices.

        ``known`` maps a dimension to its valid values; values outside it are dropped.
        ``page_keys`` are parameters pages own (a funnel mode, say): not filters, not unknown.
        ``latest`` is the last day a period may end on (the date picker's limit): a
        period running past it is cut there, one starting after it is ignored.
        """
        notices: list[str] = []
        first = {k: (v[0] if v else "") for k, v in params.items()}
        preset = first.get("period", "") or ("custom" if "from" in first or "to" in first else DEFAULT_PRESET)
        period: Period | None = None
        if preset == "custom":
            try:
                start = date.fromisoformat(first.get("from", ""))
                end = date.fromisoformat(first.get("to", ""))
                if not FIRST_DAY <= start <= end <= LAST_DAY:
                    raise ValueError("outside the calendar")
                period = Period(start, end)
            except ValueError:
                notices.append(
                    f"Ignored the period from the link (from={first.get('from', '')!r}, "
                    f"to={first.get('to', '')!r}): dates must be YYYY-MM-DD between {FIRST_DAY} and {LAST_DAY}, with from ≤ to."
                )
            if period is not None and latest is not None and period.end > latest:
                if period.start > latest:
                    notices.append(f"Ignored the period from the link: it starts after {latest.isoformat()}, "
                                   "the last day that can be shown.")
                    period = None
                else:
                    notices.append(f"The link's period ran past {latest.isoformat()}, the last day that can be "
                                   "shown; it now ends there.")
                    period = Period(period.start, latest)
        elif preset not in PRESETS:
            notices.append(f"Ignored the unknown period {preset!r}; known: {', '.join(PRESETS)}.")
        else:
            period = resolve_preset(preset, anchor)
        if period is None:
            preset, period = DEFAULT_PRESET, resolve_preset(DEFAULT_PRESET, anchor)

        compare_raw = first.get("compare", "1").lower()
        compare = compare_raw not in ("0", "false", "no", "off")
        if compare_raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            notices.append(f"Ignored compare={compare_raw!r}: use 0 or 1.")
            compare = True

        dims: dict[str, list[str]] = {}
        for dim in DIMENSIONS:
            values = [v for v in params.get(dim, []) if v]
            if known is not None and dim in known:
                valid = set(known[dim])
                bad = [v for v in values if v not in valid]
                if bad:
                    notices.append(f"Ignored unknown {dim} value(s) from the link: {', '.join(map(repr, bad))}.")
                values = [v for v in values if v in valid]
            dims[dim + "s"] = values
        customers = [c for raw in params.get("customers", []) for c in raw.split(",") if c.strip()]
        selection: list[tuple[str, str]] = []
        for raw in params.get("select", []):
            key, sep, value = raw.partition(":")
            if sep and key.strip() and value.strip():
                selection.append((key.strip(), value.strip()))
            else:
                notices.append(f"Ignored the selection {raw!r}: use select=key:value.")
        filters = cls.create(period, preset=preset, compare=compare, customers=customers, selection=selection,
                             segment_rule=first.get("seg", ""), regions=dims["regions"], segments=dims["segments"],
                             products=dims["products"], teams=dims["teams"], owners=dims["owners"])
        unknown = sorted(set(params) - {"period", "from", "to", "compare", "customers", "seg", "select", *DIMENSIONS,
                                        *page_keys})
        if unknown:
            notices.append(f"Ignored unknown link parameter(s): {', '.join(unknown)}.")
        return filters, notices

    # --- Polars -------------------------------------------------------------

    def polars_expr(self, table: str) -> pl.Expr:
        """Row filter for an enriched frame of ``table`` (dimensions and customer set, not time)."""
        expr = pl.lit(True)
        columns = DIMENSION_COLUMNS.get(table, {})
        for dim, values in self.dimension_values().items():
            column = columns.get(dim)
            if values and column:
                expr = expr & one_of(column, list(values))
        if self.customers and table in DIMENSION_COLUMNS:
            expr = expr & one_of("customer_id", list(self.customers))
        return expr

    # --- SQL ----------------------------------------------------------------

    def sql_conditions(self, table: sa.Table, period_bound: bool = True) -> list[sa.ColumnElement[bool]]:
        """WHERE conditions (bound parameters) selecting the rows this filter can need.

        Dimensions become ``IN`` lists, customer-side ones a sub-select on
        customers; with ``period_bound`` rows stamped after the period end are
        left out (every metric sees the store as of the period end).
        """
        name = table.name
        conditions: list[sa.ColumnElement[bool]] = []
        columns = DIMENSION_COLUMNS.get(name, {})
        customers = schema.customers
        for dim, values in self.dimension_values().items():
            if not values:
                continue
            if name == "orders" and dim == "product":
                items = schema.order_items
                sub = sa.select(items.c.order_id).where(items.c.product.in_(values))
                conditions.append(table.c.order_id.in_(sub))
                continue
            column = columns.get(dim)
            if column is None:
                continue
            if dim in _CUSTOMER_SIDE.get(name, set()):
                sub = sa.select(customers.c.customer_id).where(customers.c[dim].in_(values))
                conditions.append(table.c.customer_id.in_(sub))
            else:
                conditions.append(table.c[column].in_(values))
        if self.customers and "customer_id" in table.c:
            conditions.append(table.c.customer_id.in_(self.customers))
        if period_bound and name in TIME_COLUMNS:
            conditions.append(table.c[TIME_COLUMNS[name]] < self.period.end_ts)
        return conditions
