"""Customer segments: a selection rule over RFM scores, the customers it selects, and saved segments.

A ``SegmentRule`` says which customers an analyst picked, in terms that can be
evaluated again: RFM as of a day (``as_of``) over the customers in a scope (the
dimension filters at the time), then any of these, all of which must hold:
named RFM segments, cockpit tiers, the segment a customer was in on an earlier
day (``moved_from`` + ``since``: a cell of the transition matrix), a box or a
lasso polygon on two RFM axes. The rule travels in the URL (``seg=``, compact
JSON) and is what a saved segment stores; with ``as_of`` left out, it is
evaluated at the period end of the filters it is opened with (fresh data).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from crm import schema
from crm.dataset import Frames
from crm.filters import DIMENSIONS, Filters, Period
from crm.format import format_money
from crm.metrics import rfm
from crm.metrics.money import from_cents
from crm.store import Store

NOT_SCORED = "Not scored"
"""The transition matrix's name for customers with no order in the 365 days before a date."""

AXES: dict[str, str] = {
    "recency_days": "Days since the last order",
    "frequency": "Orders in 365 days",
    "monetary": "Revenue in 365 days",
    "r": "R score",
    "f": "F score",
    "m": "M score",
}
"""Columns a scatter (and so a box or lasso) can use, with their axis titles."""

SEGMENT_NAMES = rfm.SEGMENT_NAMES
TIER_NAMES = rfm.TIER_NAMES


class SegmentRuleError(ValueError):
    """A rule that cannot be read or does not make sense (the message says why)."""


def _number(value: float) -> float:
    """Six significant digits: a short, stable URL and JSON without changing what was drawn."""
    return float(f"{float(value):.6g}")


@dataclass(frozen=True)
class SegmentRule:
    """Which customers: RFM as of ``as_of`` over ``scope``, narrowed by every condition that is set."""

    as_of: date | None = None
    scope: tuple[tuple[str, tuple[str, ...]], ...] = ()
    segments: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    moved_from: tuple[str, ...] = ()
    since: date | None = None
    x: str = ""
    y: str = ""
    box: tuple[float, float, float, float] | None = None
    """x0, x1, y0, y1 (inclusive; on the ``x`` and ``y`` axes)."""
    lasso: tuple[tuple[float, float], ...] = ()
    """The polygon's corners (x, y) on the ``x`` and ``y`` axes."""
    log: tuple[str, ...] = ()
    """The lasso's axes drawn on a log scale: its edges are straight in log10 there, so the
    polygon is tested in log10 of those columns (a box is the same on either scale)."""

    def __post_init__(self) -> None:
        unknown = [s for s in (*self.segments, *self.moved_from) if s not in (*SEGMENT_NAMES, NOT_SCORED)]
        if unknown:
            raise SegmentRuleError(f"unknown RFM segment(s) {', '.join(map(repr, unknown))}; "
                                   f"known: {', '.join(SEGMENT_NAMES)}")
        bad_tiers = [t for t in self.tiers if t not in TIER_NAMES]
        if bad_tiers:
            raise SegmentRuleError(f"unknown tier(s) {', '.join(map(repr, bad_tiers))}; known: {', '.join(TIER_NAMES)}")
        if (self.box is not None or self.lasso) and not (self.x in AXES and self.y in AXES):
            raise SegmentRuleError(f"a box or lasso needs axes x and y, each one of {', '.join(AXES)}")
        if self.box is not None and (len(self.box) != 4 or not all(math.isfinite(v) for v in self.box)):
            raise SegmentRuleError("a box is four finite numbers: x0, x1, y0, y1")
        if self.lasso and (len(self.lasso) < 3 or not all(math.isfinite(v) for p in self.lasso for v in p)):
            raise SegmentRuleError("a lasso is a polygon of at least three finite (x, y) points")
        if any(axis not in (self.x, self.y) for axis in self.log):
            raise SegmentRuleError("log names the lasso's axes drawn on a log scale (x or y)")
        for axis, index in ((self.x, 0), (self.y, 1)):
            if axis in self.log and any(p[index] <= 0 for p in self.lasso):
                raise SegmentRuleError(f"a lasso on a log-scale {axis} axis has corners above 0")
        bad_scope = [dim for dim, _ in self.scope if dim not in DIMENSIONS]
        if bad_scope:
            raise SegmentRuleError(f"unknown scope dimension(s) {', '.join(bad_scope)}; known: {', '.join(DIMENSIONS)}")

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        as_of: date | None = None,
        scope: Mapping[str, Sequence[str]] | None = None,
        segments: Sequence[str] = (),
        tiers: Sequence[str] = (),
        moved_from: Sequence[str] = (),
        since: date | None = None,
        x: str = "",
        y: str = "",
        box: Sequence[float] | None = None,
        lasso: Sequence[Sequence[float]] = (),
        log: Sequence[str] = (),
    ) -> SegmentRule:
        """A normalised rule (sorted names, rounded coordinates, a box with x0 ≤ x1 and y0 ≤ y1)."""
        normal_box = None
        if box is not None:
            x0, x1, y0, y1 = (_number(v) for v in box)
            normal_box = (min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
        return cls(
            as_of=as_of,
            scope=tuple(sorted((d, tuple(sorted(set(v)))) for d, v in (scope or {}).items() if v)),
            segments=tuple(sorted(set(segments))), tiers=tuple(sorted(set(tiers))),
            moved_from=tuple(sorted(set(moved_from))), since=since if moved_from else None,
            x=x if normal_box is not None or lasso else "", y=y if normal_box is not None or lasso else "",
            box=normal_box, lasso=tuple((_number(p[0]), _number(p[1])) for p in lasso),
            log=tuple(sorted({a for a in log if a in (x, y)})) if lasso else (),
        )

    @classmethod
    def for_filters(cls, filters: Filters, **conditions: Any) -> SegmentRule:
        """A rule as of the filters' period end over their dimension filters (the scope)."""
        scope = {d: v for d, v in filters.dimension_values().items() if v}
        return cls.create(as_of=filters.period.end, scope=scope, **conditions)

    def with_conditions(self, **conditions: Any) -> SegmentRule:
        """The same date and scope with other conditions (a movement without ``since`` is measured
        from the previous period's end, see ``dated``)."""
        return SegmentRule.create(as_of=self.as_of, scope=dict(self.scope), **conditions)

    def undated(self) -> SegmentRule:
        """The rule without its days (what a saved segment keeps): evaluated at a later period end,
        a movement is measured from the previous period's end."""
        return dataclasses.replace(self, as_of=None, since=None)

    def dated(self, period: Period) -> SegmentRule:
        """The rule with its days set from ``period`` where it has none: as of the period end, a
        movement since the previous period's end."""
        since = self.since if self.since is not None or not self.moved_from else period.previous().end
        return dataclasses.replace(self, as_of=self.as_of or period.end, since=since)

    def is_empty(self) -> bool:
        """True when no condition narrows the scored customers."""
        return not (self.segments or self.tiers or self.moved_from or self.box is not None or self.lasso)

    # --- text forms ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain JSON data; empty parts left out."""
        out: dict[str, Any] = {}
        if self.as_of is not None:
            out["as_of"] = self.as_of.isoformat()
        if self.scope:
            out["scope"] = {d: list(v) for d, v in self.scope}
        for key, value in (("segments", self.segments), ("tiers", self.tiers), ("from", self.moved_from)):
            if value:
                out[key] = list(value)
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.box is not None or self.lasso:
            out["x"], out["y"] = self.x, self.y
        if self.box is not None:
            out["box"] = list(self.box)
        if self.lasso:
            out["lasso"] = [list(p) for p in self.lasso]
        if self.log:
            out["log"] = list(self.log)
        return out

    def to_json(self) -> str:
        """Canonical compact JSON: equal rules give equal text (a cache key, the URL's ``seg=``)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SegmentRule:
        """Read a rule written by ``to_json`` (or by hand); SegmentRuleError says what is wrong."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SegmentRuleError(f"a segment rule is a JSON object: {exc}") from None
        if not isinstance(data, dict):
            raise SegmentRuleError("a segment rule is a JSON object, e.g. {\"tiers\": [\"at risk\"]}")
        known = {"as_of", "scope", "segments", "tiers", "from", "since", "x", "y", "box", "lasso", "log"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SegmentRuleError(f"unknown rule key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")

        def day(key: str) -> date | None:
            if data.get(key) in (None, ""):
                return None
            try:
                return date.fromisoformat(str(data[key]))
            except ValueError:
                raise SegmentRuleError(f"{key} must be a date YYYY-MM-DD, got {data[key]!r}") from None

        def names(key: str) -> list[str]:
            value = data.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SegmentRuleError(f"{key} must be a list of names")
            return value

        scope = data.get("scope", {})
        if not isinstance(scope, dict) or not all(isinstance(v, list) for v in scope.values()):
            raise SegmentRuleError("scope must map a dimension to a list of values, e.g. {\"region\": [\"Europe\"]}")
        try:
            box = data.get("box")
            lasso = data.get("lasso", [])
            return cls.create(
                as_of=day("as_of"), scope={str(k): [str(x) for x in v] for k, v in scope.items()},
                segments=names("segments"), tiers=names("tiers"), moved_from=names("from"), since=day("since"),
                x=str(data.get("x", "")), y=str(data.get("y", "")),
                box=None if box is None else [float(v) for v in box],
                lasso=[(float(p[0]), float(p[1])) for p in lasso], log=names("log"),
            )
        except (TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, SegmentRuleError):
                raise
            raise SegmentRuleError(f"box must be [x0, x1, y0, y1] and lasso a list of [x, y] points ({exc})") from None

    def describe(self) -> str:
        """One line for people: what the rule selects."""
        parts = [f"RFM as of {self.as_of.isoformat()}" if self.as_of else "RFM as of the period end"]
        parts += [f"{d} {' or '.join(v)}" for d, v in self.scope]
        if self.segments:
            parts.append("segment " + " or ".join(self.segments))
        if self.tiers:
            parts.append("tier " + " or ".join(self.tiers))
        if self.moved_from:
            since = self.since.isoformat() if self.since else "the previous period end"
            parts.append(f"was {' or '.join(self.moved_from)} on {since}")
        if self.box is not None:
            x0, x1, y0, y1 = self.box
            parts.append(f"box {AXES[self.x].lower()} {_axis_value(self.x, x0)}–{_axis_value(self.x, x1)}, "
                         f"{AXES[self.y].lower()} {_axis_value(self.y, y0)}–{_axis_value(self.y, y1)}")
        if self.lasso:
            scale = f", {' and '.join(self.log)} on a log scale" if self.log else ""
            parts.append(f"lasso on {AXES[self.x].lower()} × {AXES[self.y].lower()} ({len(self.lasso)} corners{scale})")
        if self.is_empty():
            parts.append("every scored customer")
        return " · ".join(parts)


def _axis_value(axis: str, value: float) -> str:
    return format_money(value) if axis == "monetary" else f"{value:,.4g}"


# --- evaluating a rule ---------------------------------------------------------------------------


def scope_filters(rule: SegmentRule, as_of: date) -> Filters:
    """The filters RFM is scored under for ``rule``: its scope, over the single day ``as_of``."""
    dims = dict(rule.scope)
    return Filters.create(
        Period(as_of, as_of), regions=dims.get("region", ()), segments=dims.get("segment", ()),
        products=dims.get("product", ()), teams=dims.get("team", ()), owners=dims.get("owner", ()),
    )


def scores(frames: Frames, rule: SegmentRule, as_of: date) -> pl.DataFrame:
    """RFM scores as of ``as_of`` over the rule's scope (kept per data version: frames.memo)."""
    key = ("rfm", rule.scope, as_of)
    return frames.memo(key, lambda: rfm.rfm_scores(frames.narrow(scope_filters(rule, as_of)), Period(as_of, as_of)))


def _inside(polygon: tuple[tuple[float, float], ...], x: str, y: str, log: tuple[str, ...] = ()) -> pl.Expr:
    """Even-odd (ray casting) point-in-polygon test of columns ``x`` and ``y``; an axis in ``log``
    is tested in log10 (the polygon's edges are straight there), values ≤ 0 and nulls are outside.
    In NumPy over the points inside the polygon's bounding box: each column is transformed once,
    then every edge is a few vector operations (an expression per edge would redo them per edge)."""
    corners = np.array(polygon, dtype=np.float64)
    if x in log:
        corners[:, 0] = np.log10(corners[:, 0])
    if y in log:
        corners[:, 1] = np.log10(corners[:, 1])
    edges = [(a, b) for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True) if a[1] != b[1]]
    (x_low, y_low), (x_high, y_high) = corners.min(axis=0), corners.max(axis=0)

    def axis_values(series: pl.Series, on_log: bool) -> np.ndarray:
        values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
        if on_log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, np.log10(values), np.nan)
        return values

    def test(points: pl.Series) -> pl.Series:
        px = axis_values(points.struct.field(x), x in log)
        py = axis_values(points.struct.field(y), y in log)
        candidates = np.flatnonzero((px >= x_low) & (px <= x_high) & (py >= y_low) & (py <= y_high))
        cx, cy = px[candidates], py[candidates]
        odd = np.zeros(candidates.size, dtype=bool)
        for (xi, yi), (xj, yj) in edges:
            straddles = (cy < yi) != (cy < yj)
            odd ^= straddles & (cx < (xj - xi) * (cy - yi) / (yj - yi) + xi)
        inside = np.zeros(px.size, dtype=bool)
        inside[candidates] = odd
        return pl.Series(inside)

    return pl.struct(x, y).map_batches(test, return_dtype=pl.Boolean)


def rule_expr(rule: SegmentRule) -> pl.Expr:
    """The row condition of a rule's conditions on a table of scores (``previous_segment`` for a move)."""
    expr = pl.lit(True)
    if rule.segments:
        expr = expr & pl.col("segment").is_in(list(rule.segments))
    if rule.tiers:
        expr = expr & pl.col("tier").is_in(list(rule.tiers))
    if rule.moved_from:
        expr = expr & pl.col("previous_segment").is_in(list(rule.moved_from))
    if rule.box is not None:
        x0, x1, y0, y1 = rule.box
        expr = expr & pl.col(rule.x).is_between(x0, x1) & pl.col(rule.y).is_between(y0, y1)
    if rule.lasso:
        xs, ys = [p[0] for p in rule.lasso], [p[1] for p in rule.lasso]
        expr = (expr & pl.col(rule.x).is_between(min(xs), max(xs)) & pl.col(rule.y).is_between(min(ys), max(ys))
                & _inside(rule.lasso, rule.x, rule.y, rule.log))
    return expr


def with_previous_segment(now: pl.DataFrame, before: pl.DataFrame) -> pl.DataFrame:
    """``now`` with each customer's ``previous_segment`` from ``before``; customers scored only
    before appear with segment "Not scored" (they can be selected by a move to it)."""
    previous = before.select("customer_key", "customer_id", previous_segment=pl.col("segment"))
    joined = now.join(previous, on="customer_key", how="full", coalesce=True)
    # a customer scored only before has its id on the right
    joined = joined.with_columns(pl.col("customer_id").fill_null(pl.col("customer_id_right"))).drop("customer_id_right")
    return joined.with_columns(pl.col("segment").fill_null(NOT_SCORED), pl.col("previous_segment").fill_null(NOT_SCORED))


def evaluate(frames: Frames, rule: SegmentRule, period: Period) -> pl.DataFrame:
    """The scored customers the rule selects (as of its day, else ``period``'s end), sorted by id,
    with their scores (and ``previous_segment`` when the rule has a move)."""
    dated = rule.dated(period)
    assert dated.as_of is not None
    table = scores(frames, dated, dated.as_of)
    if dated.moved_from:
        assert dated.since is not None
        table = with_previous_segment(table, scores(frames, dated, dated.since))
    return table.filter(rule_expr(dated)).sort("customer_key")  # customer_id order, see rfm_scores


def member_ids(frames: Frames, rule_json: str) -> pl.Series:
    """The customer ids a dated rule (the URL's ``seg=``) selects; kept per data version."""
    def compute() -> pl.Series:
        rule = SegmentRule.from_json(rule_json)
        if rule.as_of is None:
            raise SegmentRuleError("a rule in the filters needs its as_of day")
        return evaluate(frames, rule, Period(rule.as_of, rule.as_of))["customer_id"]
    return frames.memo(("members", rule_json), compute)


def transitions(frames: Frames, filters: Filters) -> pl.DataFrame:
    """RFM segment movement from the previous period's end to this period's end: from_segment,
    to_segment, customers, share of the from-segment; "Not scored" on either side for customers
    with no order in the 365 days before that day. In rule order."""
    rule = SegmentRule.for_filters(filters)
    end, before = filters.period.end, filters.period.previous().end
    now, then = scores(frames, rule, end), scores(frames, rule, before)
    # each customer's segment on either day as a position in ``names`` (by customer_key), then a count
    # per (from, to) pair: no join of the two score tables
    names = (*SEGMENT_NAMES, NOT_SCORED)
    now_keys, then_keys = now["customer_key"].to_numpy(), then["customer_key"].to_numpy()
    size = int(max(now_keys.max(initial=0), then_keys.max(initial=0))) + 1
    to_segment = np.full(size, len(names) - 1, dtype=np.int64)
    to_segment[now_keys] = rfm.segment_positions(now)
    from_segment = np.full(size, len(names) - 1, dtype=np.int64)
    from_segment[then_keys] = rfm.segment_positions(then)
    cells = np.bincount(from_segment * len(names) + to_segment, minlength=len(names) ** 2)
    cells[-1] = 0  # not scored on either day: not a customer of the matrix
    pairs = np.flatnonzero(cells)
    counts = pl.DataFrame({
        "from_segment": [names[i // len(names)] for i in pairs],
        "to_segment": [names[i % len(names)] for i in pairs],
        "customers": cells[pairs].astype(np.int64),
    }, schema={"from_segment": pl.String, "to_segment": pl.String, "customers": pl.Int64})
    return counts.with_columns(share_of_from=pl.col("customers") / pl.col("customers").sum().over("from_segment"))


# --- the customers behind a selection -------------------------------------------------------------

GRID_COLUMNS: tuple[str, ...] = (
    "customer_id", "name", "region", "country", "industry", "segment", "owner", "rfm_segment", "tier", "rfm",
    "recency_days", "frequency", "monetary", "lifetime_revenue", "last_order", "open_tickets", "last_nps",
    "last_nps_at",
)


def customer_table(frames: Frames, selected: pl.DataFrame, as_of: date, limit: int | None = None) -> pl.DataFrame:
    """The selected (scored) customers with what an analyst acts on, as of ``as_of``: their RFM
    (``rfm`` = R, F and M scores as digits), tier, revenue in the RFM window (``monetary``) and ever
    up to that day, last order date, tickets open at the end of that day, the latest NPS score and
    when it was given. Highest revenue first (ties by id); with ``limit``, only the first ``limit``.
    ``selected``: rows of ``scores`` / ``evaluate`` (customer_key, customer_id and the scores)."""
    if limit is not None and selected.height > limit:
        # the top rows without sorting them all (1.4M rows: 40 ms instead of 600)
        selected = selected.top_k(limit, by=["monetary", "customer_id"], reverse=[False, True])
    ids = selected.select("customer_id").filter(pl.col("customer_id").is_not_null())
    day_end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    orders = (
        _orders_of(frames, selected["customer_key"]).lazy().filter(pl.col("order_date") <= as_of)
        .group_by("customer_key")
        .agg(lifetime_revenue=from_cents(pl.col("amount_cents").sum()), last_order=pl.col("order_date").last())
    )
    tickets = (
        frames.tickets.lazy().join(ids.lazy(), on="customer_id", how="semi")
        .filter((pl.col("created_at") < day_end) & (pl.col("resolved_at").is_null() | (pl.col("resolved_at") >= day_end)))
        .group_by("customer_id").agg(open_tickets=pl.len().cast(pl.Int64))
    )
    nps = (
        frames.surveys.lazy().join(ids.lazy(), on="customer_id", how="semi")
        .filter((pl.col("kind") == "nps") & (pl.col("responded_at") < day_end))
        .sort("responded_at", "response_id")
        .group_by("customer_id")
        .agg(last_nps=pl.col("score").last(), last_nps_at=pl.col("responded_at").last())
    )
    people = frames.customers.lazy().select("customer_id", "name", "region", "country", "industry", "segment", "owner")
    scored = selected.lazy().select(
        "customer_id", "customer_key", rfm_segment=pl.col("segment"), tier=pl.col("tier"),
        rfm=pl.concat_str(pl.col("r").cast(pl.String), pl.col("f").cast(pl.String), pl.col("m").cast(pl.String)),
        recency_days=pl.col("recency_days"), frequency=pl.col("frequency"), monetary=pl.col("monetary"),
    )
    table = (
        scored.join(people, on="customer_id", how="left")
        .join(orders, on="customer_key", how="left")
        .join(tickets, on="customer_id", how="left")
        .join(nps, on="customer_id", how="left")
        .with_columns(pl.col("open_tickets").fill_null(0))
        .select(GRID_COLUMNS)
        .sort(["monetary", "customer_id"], descending=[True, False])
    )
    return table.collect()


def _orders_of(frames: Frames, customer_keys: pl.Series) -> pl.DataFrame:
    """customer_key, order_date and amount_cents of these customers' orders, sorted by key and date:
    the orders are sorted so, each customer's orders are one run of rows, found by a binary search."""
    keys = frames.orders["customer_key"]
    wanted = customer_keys.drop_nulls().unique().sort()
    starts = keys.search_sorted(wanted, side="left").to_numpy().astype(np.int64)
    ends = keys.search_sorted(wanted, side="right").to_numpy().astype(np.int64)
    lengths = ends - starts
    # row numbers start, start + 1, ..., end - 1 of every run, concatenated
    rows = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
    found = frames.orders.select("customer_key", "order_date", "amount_cents")[rows]
    return found.with_columns(pl.col("customer_key").set_sorted())


# --- scatter data ----------------------------------------------------------------------------------

SCATTER_POINTS = 6_000
"""At most this many customers are drawn as points; beyond it, a sample over a density layer."""


def scatter_points(scored: pl.DataFrame, limit: int = SCATTER_POINTS, seed: int = 0) -> pl.DataFrame:
    """All scored customers when there are at most ``limit``, else a seeded sample of ``limit``
    (what the browser draws as points; a selection is evaluated on every customer, not on these)."""
    if scored.height <= limit:
        return scored
    return scored.sample(limit, seed=seed).sort("customer_id")


def density(scored: pl.DataFrame, x: str, y: str, bins: int = 40) -> pl.DataFrame:
    """Customers per cell of a ``bins`` × ``bins`` grid over the two axes: x_mid, y_mid, customers."""
    if scored.is_empty():
        return pl.DataFrame(schema={"x_mid": pl.Float64, "y_mid": pl.Float64, "customers": pl.Int64})

    def cell(column: str) -> tuple[pl.Expr, float, float]:
        low, high = float(scored[column].min()), float(scored[column].max())  # type: ignore[arg-type]
        width = (high - low) / bins or 1.0
        index = ((pl.col(column).cast(pl.Float64) - low) / width).floor().clip(0, bins - 1)
        return index, low, width

    xi, x_low, x_width = cell(x)
    yi, y_low, y_width = cell(y)
    return (
        scored.group_by(xi.alias("xi"), yi.alias("yi")).agg(customers=pl.len().cast(pl.Int64))
        .select(x_mid=x_low + (pl.col("xi") + 0.5) * x_width, y_mid=y_low + (pl.col("yi") + 0.5) * y_width,
                customers="customers")
        .sort("x_mid", "y_mid")
    )


# --- saved segments ----------------------------------------------------------------------------------


class SavedSegmentError(ValueError):
    """A saved-segment action that cannot be done (a name taken, missing or empty)."""


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise SavedSegmentError("give the segment a name")
    if len(cleaned) > 200:
        raise SavedSegmentError("a segment name is at most 200 characters")
    return cleaned


def list_saved(store: Store) -> pl.DataFrame:
    """Saved segments: name, rule (JSON), description, created_by, created_at, updated_at; by name."""
    store.ensure_schema()
    table = schema.saved_segments
    with store.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.name)).mappings().all()
    frame = pl.DataFrame([dict(r) for r in rows], schema={
        "name": pl.String, "rule": pl.String, "created_by": pl.String,
        "created_at": pl.Datetime("us"), "updated_at": pl.Datetime("us")})
    return frame.with_columns(description=pl.col("rule").map_elements(
        lambda text: SegmentRule.from_json(text).describe(), return_dtype=pl.String))


def load_saved(store: Store, name: str) -> SegmentRule:
    """The rule saved under ``name``."""
    table = schema.saved_segments
    store.ensure_schema()
    with store.connect() as conn:
        text = conn.execute(sa.select(table.c.rule).where(table.c.name == name)).scalar()
    if text is None:
        raise SavedSegmentError(f"no saved segment named {name!r}")
    return SegmentRule.from_json(text)


def save_segment(store: Store, name: str, rule: SegmentRule, user: str = "", replace: bool = False,
                 now: datetime | None = None) -> str:
    """Save the rule without its days (reopened later, it is evaluated on the data of then); returns
    the cleaned name. A taken name is an error unless ``replace``."""
    name = _clean_name(name)
    if rule.is_empty():
        raise SavedSegmentError("nothing is selected: select customers on a chart or choose segments first")
    stamp = (now or datetime.now()).replace(microsecond=0)
    table = schema.saved_segments
    store.ensure_schema()
    with store.transaction() as conn:
        exists = conn.execute(sa.select(table.c.created_at).where(table.c.name == name)).first()
        if exists is not None and not replace:
            raise SavedSegmentError(f"a segment named {name!r} exists; choose another name or replace it")
        text = rule.undated().to_json()
        if exists is None:
            conn.execute(table.insert().values(name=name, rule=text, created_by=user or None, created_at=stamp,
                                               updated_at=stamp))
        else:
            conn.execute(table.update().where(table.c.name == name).values(rule=text, updated_at=stamp))
    return name


def rename_segment(store: Store, old: str, new: str, now: datetime | None = None) -> str:
    """Rename a saved segment; returns the cleaned new name."""
    new = _clean_name(new)
    table = schema.saved_segments
    store.ensure_schema()
    with store.transaction() as conn:
        if conn.execute(sa.select(table.c.name).where(table.c.name == old)).first() is None:
            raise SavedSegmentError(f"no saved segment named {old!r}")
        if new != old and conn.execute(sa.select(table.c.name).where(table.c.name == new)).first() is not None:
            raise SavedSegmentError(f"a segment named {new!r} exists already")
        conn.execute(table.update().where(table.c.name == old)
                     .values(name=new, updated_at=(now or datetime.now()).replace(microsecond=0)))
    return new


def delete_segment(store: Store, name: str) -> None:
    """Delete a saved segment (an error if there is none by that name)."""
    table = schema.saved_segments
    store.ensure_schema()
    with store.transaction() as conn:
        if conn.execute(table.delete().where(table.c.name == name)).rowcount == 0:
            raise SavedSegmentError(f"no saved segment named {name!r}")


# --- chart selections -> rules ------------------------------------------------------------------------


def shape_rule(selection: Mapping[str, Any], base: SegmentRule, x: str, y: str,
               log: tuple[str, ...] = ()) -> SegmentRule | None:
    """The rule of a box or lasso drawn on the scatter (Streamlit's plotly selection state:
    ``box`` = [{"x": [x0, x1], "y": [y0, y1]}], ``lasso`` = [{"x": [...], "y": [...]}]); the last
    shape drawn wins. Plotly reports data values, also on a log axis (checked in Chromium with
    plotly.js 3); ``log`` names the axes drawn on a log scale (a lasso's edges are straight in
    log10 there). None when there is no usable shape."""
    lassos = [s for s in selection.get("lasso") or [] if len(s.get("x") or []) >= 3]
    boxes = [s for s in selection.get("box") or [] if len(s.get("x") or []) == 2 and len(s.get("y") or []) == 2]
    try:
        if lassos:
            shape = lassos[-1]
            return base.with_conditions(x=x, y=y, lasso=list(zip(shape["x"], shape["y"], strict=True)), log=log)
        if boxes:
            shape = boxes[-1]
            return base.with_conditions(x=x, y=y, box=[*shape["x"], *shape["y"]])
    except (SegmentRuleError, TypeError, ValueError):
        return None  # not numbers (a date axis, say): nothing to select
    return None
