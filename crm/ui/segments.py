"""Segment explorer glue: chart selections become the global customer segment; saved segments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from crm import segments
from crm.charts import point_customdata
from crm.filters import Period
from crm.format import plain
from crm.segments import SavedSegmentError, SegmentRule, SegmentRuleError
from crm.ui.frame import PageContext, clear_customer_selection, first_time, set_segment_rule


def apply_rule_event(event: object, key: str, make_rule: Callable[[dict[str, Any]], SegmentRule | None],
                     period: Period) -> None:
    """Turn a chart selection into the global customer segment (then rerun once). An empty
    selection changes nothing (a redrawn chart comes back empty); each selection applies once."""
    selection = getattr(event, "selection", None) or {}
    rule = make_rule(dict(selection))
    if rule is None or rule.is_empty():
        return
    if not first_time(f"seg_applied_{key}", rule.dated(period).to_json()):
        return
    set_segment_rule(rule, period)
    st.rerun()


def names_rule(base: SegmentRule, by: str) -> Callable[[dict[str, Any]], SegmentRule | None]:
    """Segment or tier bars under a box (or clicked): those segments or tiers."""
    def make(selection: dict[str, Any]) -> SegmentRule | None:
        names = sorted({str(point_customdata(p)[0]) for p in selection.get("points") or [] if point_customdata(p)})
        if not names:
            return None
        return base.with_conditions(**({"segments": names} if by == "segment" else {"tiers": names}))
    return make


def cells_rule(base: SegmentRule) -> Callable[[dict[str, Any]], SegmentRule | None]:
    """Transition-matrix cells under a box: customers who were in the rows' segments and are in the
    columns' segments now."""
    def make(selection: dict[str, Any]) -> SegmentRule | None:
        cells = [point_customdata(p) for p in selection.get("points") or []]
        cells = [c for c in cells if len(c) >= 2]
        if not cells:
            return None
        return base.with_conditions(moved_from=sorted({str(c[0]) for c in cells}),
                                    segments=sorted({str(c[1]) for c in cells}))
    return make


def movement_picker(base: SegmentRule, period: Period, order: tuple[str, ...]) -> None:
    """The keyboard way to a transition cell: two pickers and a button."""
    a, b, c = st.columns([2, 2, 1.4], vertical_alignment="bottom")
    was = a.selectbox("Was (previous period end)", order, key="seg_move_from")
    now = b.selectbox("Is now (this period end)", order, key="seg_move_to", index=len(order) - 1)
    if c.button("Select these customers", key="seg_move_apply", icon=":material/ads_click:"):
        set_segment_rule(base.with_conditions(moved_from=[was], segments=[now]), period)
        st.rerun()


def saved_segments_panel(ctx: PageContext, current: SegmentRule | None) -> None:
    """Save the current rule under a name; list, open, rename and delete saved segments."""
    store = ctx.store
    with st.form("seg_save_form", clear_on_submit=False, enter_to_submit=True):
        st.markdown("**Save the current selection**" + (f": {plain(current.describe())}" if current else ""))
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        name = a.text_input("Segment name", key="seg_save_name", placeholder="e.g. Lapsing big spenders, Europe")
        replace = b.checkbox("Replace if the name exists", key="seg_save_replace")
        if st.form_submit_button("Save segment", icon=":material/bookmark_add:", disabled=current is None):
            try:
                saved = segments.save_segment(store, name, current or SegmentRule(), replace=replace)
                st.success(f"Saved “{plain(saved)}”: it keeps the rule, not the ids, and is re-evaluated on the data "
                           "of the day it is opened.", icon=":material/bookmark_added:")
            except SavedSegmentError as exc:
                st.error(str(exc), icon=":material/error:")
    if current is None:
        st.caption("Select customers on a chart above to save them as a segment.")
    listed = segments.list_saved(store)
    if listed.is_empty():
        st.info("No saved segments yet.", icon=":material/bookmarks:")
        return
    st.dataframe(listed.select("name", "description", "updated_at"), hide_index=True, key="seg_saved_table",
                 column_config={"updated_at": st.column_config.DatetimeColumn("Saved", format="YYYY-MM-DD HH:mm")})
    names = listed["name"].to_list()
    a, b, c, d = st.columns([3, 1, 3, 1], vertical_alignment="bottom")
    chosen = a.selectbox("Saved segment", names, key="seg_saved_pick")
    if b.button("Open", key="seg_saved_open", icon=":material/open_in_new:"):
        _open(store, chosen, ctx.filters.period)
    new_name = c.text_input("New name", key="seg_saved_new_name")
    if d.button("Rename", key="seg_saved_rename"):
        _act(lambda: segments.rename_segment(store, chosen, new_name), f"Renamed “{chosen}”.")
    if st.button(f"Delete “{chosen}”", key="seg_saved_delete", icon=":material/delete:"):
        _act(lambda: segments.delete_segment(store, chosen), f"Deleted “{chosen}”.")


def _open(store: Any, name: str, period: Period) -> None:
    try:
        rule = segments.load_saved(store, name)
    except (SavedSegmentError, SegmentRuleError) as exc:
        st.error(str(exc), icon=":material/error:")
        return
    clear_customer_selection()
    set_segment_rule(rule, period)
    st.rerun()


def _act(action: Callable[[], object], done: str) -> None:
    try:
        action()
    except SavedSegmentError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.toast(done, icon=":material/check:")
    st.rerun()


def tier_tiles(tiers: pl.DataFrame) -> None:
    """The four cockpit tiers: customers, revenue share and what to do."""
    from crm.metrics.rfm import TIER_ACTIONS

    rows = {r["tier"]: r for r in tiers.iter_rows(named=True)}
    for column, tier in zip(st.columns(4), ("high value", "potential", "new", "at risk"), strict=True):
        row = rows.get(tier)
        with column.container(border=True):
            st.metric(tier.capitalize(), f"{row['customers']:,}" if row else "0",
                      help="Tiers: high value R≥4 F≥4 M≥4; new R≥4 F≤2; potential R≤3 F≥3 M≥3; "
                           "at risk R≤2 F≤2 M≤2 (first match).")
            share = row["revenue_share"] if row and row["revenue_share"] is not None else 0.0
            st.caption(f"{share:.1%} of revenue (365 days) · {TIER_ACTIONS[tier]}")
