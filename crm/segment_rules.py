"""A customer selection as a rule over RFM scores (pure: no data access, no store).

A ``SegmentRule`` says which customers an analyst picked, in terms that can be
evaluated again: RFM as of a day (``as_of``) over the customers in a scope (the
dimension filters at the time), then any of these, all of which must hold:
named RFM segments, cockpit tiers, the segment a customer was in on an earlier
day (``moved_from`` + ``since``: a cell of the transition matrix), a box or a
lasso polygon on two RFM axes. The rule travels in the URL (``seg=``, compact
JSON) and is what a saved segment stores; with ``as_of`` left out, it is
evaluated at the period end of the filters it is opened with (fresh data).

Evaluating a rule over the data is crm.narrowing's (``evaluate``, ``member_ids``): the customers
a rule selects narrow every view, so they are resolved where the person's scope is applied.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from crm.filters import DIMENSIONS, Filters, Period
from crm.format import format_money
from crm.metrics import rfm
from crm.scope import Scope

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
            raise SegmentRuleError("a segment rule is a JSON object, e.g. {\"tiers\": [\"Churn risk\"]}")
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
                segments=names("segments"), tiers=[rfm.FORMER_TIER_NAMES.get(t, t) for t in names("tiers")],
                moved_from=names("from"), since=day("since"),
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


def scope_filters(rule: SegmentRule, as_of: date, scope: Scope) -> Filters:
    """The filters RFM is scored under for ``rule``: its dimension filters (``rule.scope``), over the single
    day ``as_of``, within the person's row ``scope``."""
    dims = dict(rule.scope)
    return Filters.create(
        Period(as_of, as_of), regions=dims.get("region", ()), segments=dims.get("segment", ()),
        products=dims.get("product", ()), teams=dims.get("team", ()), owners=dims.get("owner", ()), scope=scope,
    )


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


