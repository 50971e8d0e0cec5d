"""Customer segments: movement between RFM segments, the customer grid, chart points, saved segments.

The selection rule itself is crm.segment_rules' (pure); the customers a rule selects are resolved by
crm.narrowing (``scores``, ``evaluate``, ``member_ids``), within the person's scope. Both are
re-exported here for the pages and scripts that think of them as "segments".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import schema
from crm.auth import audit
from crm.dataset import Frames
from crm.filters import Filters
from crm.metrics import rfm
from crm.money import from_cents
from crm.narrowing import evaluate, member_ids, narrowing_scope, scores
from crm.roles import NotPermitted, may, require
from crm.segment_rules import (
    AXES,
    NOT_SCORED,
    SEGMENT_NAMES,
    TIER_NAMES,
    SegmentRule,
    SegmentRuleError,
)
from crm.store import Store

__all__ = [  # the rule and its evaluation live in crm.segment_rules and crm.narrowing; here for callers
    "AXES", "NOT_SCORED", "SEGMENT_NAMES", "TIER_NAMES", "SavedSegmentError", "SegmentRule", "SegmentRuleError",
    "customer_table", "delete_segment", "density", "evaluate", "list_saved", "load_saved", "member_ids",
    "rename_segment", "save_segment", "scatter_points", "scores", "shape_rule", "share_segment", "transitions",
]


def transitions(frames: Frames, filters: Filters) -> pl.DataFrame:
    """RFM segment movement from the previous period's end to this period's end: from_segment,
    to_segment, customers, share of the from-segment; "Not scored" on either side for customers
    with no order in the 365 days before that day. In rule order."""
    rule = SegmentRule.for_filters(filters)
    end, before = filters.period.end, filters.period.previous().end
    scope = narrowing_scope(filters)
    now, then = scores(frames, rule, end, scope), scores(frames, rule, before, scope)
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
    "customer_id", "name", "email", "phone", "region", "country", "industry", "segment", "owner", "rfm_segment",
    "tier", "rfm",
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
    people = frames.customers.lazy().select("customer_id", "name", "email", "phone", "region", "country", "industry",
                                            "segment", "owner")
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


def _visible(user: str | None, role: str | None) -> sa.ColumnElement[bool] | None:
    """Which saved segments ``user`` sees: their own, the shared ones and those saved before segments had
    owners; every one for a role that may change anyone's (an admin), or with no user (the CLI)."""
    table = schema.saved_segments
    if not user or (role is not None and may(role, "any_segment")):
        return None
    return sa.or_(table.c.created_by == user, table.c.shared.is_(True), table.c.created_by.is_(None))


def _may_change(owner: str | None, user: str | None, role: str | None) -> bool:
    """True when ``user`` (with ``role``) may rename, share or delete a segment owned by ``owner``; with no
    role the caller is trusted (the CLI, as the store's holder)."""
    if role is None:
        return True
    if not may(role, "save_segment"):
        return False
    return may(role, "any_segment") or (owner is not None and owner == user)


def _owned_row(conn: Connection, name: str, user: str | None, role: str | None) -> Any:
    """The saved segment ``name`` as ``user`` with ``role`` may change it: SavedSegmentError when there is
    none they can see, NotPermitted when they see it but may not change it (no role: any segment)."""
    table = schema.saved_segments
    query = sa.select(table).where(table.c.name == name)
    seen = _visible(user, role) if role is not None else None  # no role: a trusted caller, who changes any
    if seen is not None:
        query = query.where(seen)
    row = conn.execute(query).first()
    if row is None:
        raise SavedSegmentError(f"no saved segment named {name!r}")
    if role is not None:
        require(role, "save_segment")
    if not _may_change(row.created_by, user, role):
        who = f"its owner ({row.created_by}) or an admin" if row.created_by else "an admin (it has no owner)"
        raise NotPermitted(f"only {who} may change the saved segment {name!r}")
    return row


def list_saved(store: Store, user: str | None = None, role: str | None = None) -> pl.DataFrame:
    """Saved segments ``user`` may open (see ``_visible``; no user: all), by name: name, rule (JSON),
    description, created_by (the owner), created_at, updated_at, shared, may_change (``user`` with
    ``role`` may rename, share or delete it)."""
    store.ensure_schema()
    table = schema.saved_segments
    query = sa.select(table).order_by(table.c.name)
    seen = _visible(user, role)
    if seen is not None:
        query = query.where(seen)
    with store.connect() as conn:
        rows = conn.execute(query).mappings().all()
    frame = pl.DataFrame(
        [{**dict(r), "shared": bool(r["shared"]), "may_change": _may_change(r["created_by"], user, role)} for r in rows],
        schema={"name": pl.String, "rule": pl.String, "created_by": pl.String, "created_at": pl.Datetime("us"),
                "updated_at": pl.Datetime("us"), "shared": pl.Boolean, "may_change": pl.Boolean})
    return frame.with_columns(description=pl.col("rule").map_elements(
        lambda text: SegmentRule.from_json(text).describe(), return_dtype=pl.String))


def load_saved(store: Store, name: str, user: str | None = None, role: str | None = None) -> SegmentRule:
    """The rule saved under ``name`` (one ``user`` may see, when given)."""
    table = schema.saved_segments
    store.ensure_schema()
    query = sa.select(table.c.rule).where(table.c.name == name)
    seen = _visible(user, role)
    if seen is not None:
        query = query.where(seen)
    with store.connect() as conn:
        text = conn.execute(query).scalar()
    if text is None:
        raise SavedSegmentError(f"no saved segment named {name!r}")
    return SegmentRule.from_json(text)


def save_segment(store: Store, name: str, rule: SegmentRule, user: str = "", replace: bool = False,
                 now: datetime | None = None, role: str | None = None, shared: bool = False) -> str:
    """Save the rule without its days (reopened later, it is evaluated on the data of then); returns
    the cleaned name. ``user`` owns it; ``shared`` lets every signed-in person see it. A taken name is
    an error unless ``replace`` (which keeps the owner and sharing; only they or an admin may replace it).
    With ``role``, NotPermitted unless that role may save segments. Audited as ``segment.saved``."""
    if role is not None:
        require(role, "save_segment")
    name = _clean_name(name)
    if rule.is_empty():
        raise SavedSegmentError("nothing is selected: select customers on a chart or choose segments first")
    stamp = (now or datetime.now()).replace(microsecond=0)
    table = schema.saved_segments
    store.ensure_schema()
    with store.transaction() as conn:
        exists = conn.execute(sa.select(table.c.created_by).where(table.c.name == name)).first()
        if exists is not None and not replace:
            raise SavedSegmentError(f"a segment named {name!r} exists; choose another name or replace it")
        text = rule.undated().to_json()
        if exists is None:
            conn.execute(table.insert().values(name=name, rule=text, created_by=user or None, created_at=stamp,
                                               updated_at=stamp, shared=shared))
        else:
            _owned_row(conn, name, user, role)
            conn.execute(table.update().where(table.c.name == name).values(rule=text, updated_at=stamp))
        audit(conn, user or None, "segment.saved", {"segment": name, "rule": text, "replaced": exists is not None,
                                                     "shared": shared if exists is None else None}, at=stamp)
    return name


def rename_segment(store: Store, old: str, new: str, now: datetime | None = None, *, user: str | None = None,
                   role: str | None = None) -> str:
    """Rename a saved segment; returns the cleaned new name. With ``role``, only the owner (``user``) or an
    admin may (NotPermitted). Audited as ``segment.renamed``."""
    new = _clean_name(new)
    table = schema.saved_segments
    store.ensure_schema()
    stamp = (now or datetime.now()).replace(microsecond=0)
    with store.transaction() as conn:
        _owned_row(conn, old, user, role)
        if new != old and conn.execute(sa.select(table.c.name).where(table.c.name == new)).first() is not None:
            raise SavedSegmentError(f"a segment named {new!r} exists already")
        conn.execute(table.update().where(table.c.name == old).values(name=new, updated_at=stamp))
        audit(conn, user or None, "segment.renamed", {"from": old, "to": new}, at=stamp)
    return new


def share_segment(store: Store, name: str, shared: bool = True, now: datetime | None = None, *,
                  user: str | None = None, role: str | None = None) -> None:
    """Share a saved segment with every signed-in person (``shared=False``: back to its owner only). With
    ``role``, only the owner (``user``) or an admin may (NotPermitted). Audited as ``segment.shared`` or
    ``segment.unshared``."""
    table = schema.saved_segments
    store.ensure_schema()
    stamp = (now or datetime.now()).replace(microsecond=0)
    with store.transaction() as conn:
        _owned_row(conn, name, user, role)
        conn.execute(table.update().where(table.c.name == name).values(shared=shared, updated_at=stamp))
        audit(conn, user or None, "segment.shared" if shared else "segment.unshared", {"segment": name}, at=stamp)


def delete_segment(store: Store, name: str, *, user: str | None = None, role: str | None = None) -> None:
    """Delete a saved segment (an error if there is none by that name). With ``role``, only the owner
    (``user``) or an admin may (NotPermitted). Audited as ``segment.deleted`` (with the rule, so it can be
    saved again)."""
    table = schema.saved_segments
    store.ensure_schema()
    with store.transaction() as conn:
        row = _owned_row(conn, name, user, role)
        conn.execute(table.delete().where(table.c.name == name))
        audit(conn, user or None, "segment.deleted", {"segment": name, "owner": row.created_by, "rule": row.rule})


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
