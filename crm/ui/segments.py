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
from crm.roles import NotPermitted
from crm.segments import SavedSegmentError, SegmentRule, SegmentRuleError
from crm.ui.access import actor_name, actor_role, allowed, only_for
from crm.ui.frame import PageContext, clear_customer_selection, first_time, set_segment_rule
from crm.ui.layout import tile_grid


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
    row = st.container(horizontal=True, vertical_alignment="bottom")  # the button wraps below on a narrow page
    was = row.selectbox("Was (previous period end)", order, key="seg_move_from", width=240)
    now = row.selectbox("Is now (this period end)", order, key="seg_move_to", index=len(order) - 1, width=240)
    if row.button("Select these customers", key="seg_move_apply", icon=":material/ads_click:"):
        set_segment_rule(base.with_conditions(moved_from=[was], segments=[now]), period)
        st.rerun()


def saved_segments_panel(ctx: PageContext, current: SegmentRule | None) -> None:
    """Save the current rule under a name (roles that may save segments); list the segments this person
    may open (their own and the shared ones), open them, and rename, share or delete their own (an admin:
    anyone's)."""
    store, user, role = ctx.store, actor_name(), actor_role()
    if allowed("save_segment"):
        with st.form("seg_save_form", clear_on_submit=False, enter_to_submit=True):
            st.markdown("**Save the current selection**" + (f": {plain(current.describe())}" if current else ""))
            a, b = st.columns([3, 1], vertical_alignment="bottom")
            name = a.text_input("Segment name", key="seg_save_name", placeholder="e.g. Lapsing big spenders, Europe")
            replace = b.checkbox("Replace if the name exists", key="seg_save_replace")
            shared = b.checkbox("Share with everyone", key="seg_save_shared",
                                help="Everyone signed in can then open it; only you (or an admin) can change it.")
            if st.form_submit_button("Save segment", icon=":material/bookmark_add:", disabled=current is None):
                try:
                    saved = segments.save_segment(store, name, current or SegmentRule(), user=user or "", replace=replace,
                                                  role=role, shared=shared)
                    st.success(f"Saved “{plain(saved)}”: it keeps the rule, not the ids, and is re-evaluated on the data "
                               "of the day it is opened.", icon=":material/bookmark_added:")
                except (SavedSegmentError, NotPermitted) as exc:
                    st.error(plain(exc), icon=":material/error:")
        if current is None:
            st.caption("Select customers on a chart above to save them as a segment.")
    else:
        only_for("save_segment", "save segments")
    listed = segments.list_saved(store, user=user, role=role)
    if listed.is_empty():
        st.info("No saved segments yet.", icon=":material/bookmarks:")
        return
    st.dataframe(listed.select("name", "description", "created_by", "shared", "updated_at"), hide_index=True,
                 key="seg_saved_table", column_config={
                     "name": st.column_config.TextColumn("Name"),
                     "description": st.column_config.TextColumn("Selects"),
                     "created_by": st.column_config.TextColumn("Owner"),
                     "shared": st.column_config.CheckboxColumn("Shared"),
                     "updated_at": st.column_config.DatetimeColumn("Saved", format="YYYY-MM-DD HH:mm")})
    names = listed["name"].to_list()
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    chosen = a.selectbox("Saved segment", names, key="seg_saved_pick")
    if b.button("Open", key="seg_saved_open", icon=":material/open_in_new:"):
        _open(store, chosen, ctx.filters.period, user, role)
    row = listed.row(names.index(chosen), named=True)
    if not row["may_change"]:
        owner = f"its owner ({row['created_by']})" if row["created_by"] else "an admin"
        st.caption(f"Only {plain(owner)}" + (" or an admin" if row["created_by"] else "")
                   + " may rename, share or delete it.")
        return
    c, d = st.columns([3, 1], vertical_alignment="bottom")
    new_name = c.text_input("New name", key="seg_saved_new_name")
    if d.button("Rename", key="seg_saved_rename"):
        _act(lambda: segments.rename_segment(store, chosen, new_name, user=user, role=role), f"Renamed “{plain(chosen)}”.")
    buttons = st.container(horizontal=True)
    share = not row["shared"]
    if buttons.button("Share with everyone" if share else "Stop sharing", key="seg_saved_share",
                      icon=":material/share:" if share else ":material/lock:"):
        _act(lambda: segments.share_segment(store, chosen, share, user=user, role=role),
             f"“{plain(chosen)}” is {'shared with everyone' if share else 'yours only again'}.")
    if buttons.button(f"Delete “{plain(chosen)}”", key="seg_saved_delete", icon=":material/delete:"):  # labels read Markdown
        _act(lambda: segments.delete_segment(store, chosen, user=user, role=role), f"Deleted “{plain(chosen)}”.")


def _open(store: Any, name: str, period: Period, user: str | None, role: str) -> None:
    try:
        rule = segments.load_saved(store, name, user=user, role=role)
    except (SavedSegmentError, SegmentRuleError) as exc:
        st.error(plain(exc), icon=":material/error:")
        return
    clear_customer_selection()
    set_segment_rule(rule, period)
    st.rerun()


def _act(action: Callable[[], object], done: str) -> None:
    try:
        action()
    except (SavedSegmentError, NotPermitted) as exc:
        st.error(plain(exc), icon=":material/error:")
        return
    st.toast(done, icon=":material/check:")
    st.rerun()


def tier_tiles(tiers: pl.DataFrame) -> None:
    """The four cockpit tiers: customers, revenue share and what to do."""
    from crm.metrics.rfm import TIER_ACTIONS

    rows = {r["tier"]: r for r in tiers.iter_rows(named=True)}
    grid = tile_grid("tiers")
    for tier in ("High value", "Potential", "Newcomers", "Churn risk"):
        row = rows.get(tier)
        with grid.container(border=True):
            st.metric(tier, f"{row['customers']:,}" if row else "0",
                      help="Tiers: High value R≥4 F≥4 M≥4; Newcomers R≥4 F≤2; Potential R≤3 F≥3 M≥3; "
                           "Churn risk R≤2 F≤2 M≤2 (first match).")
            share = row["revenue_share"] if row and row["revenue_share"] is not None else 0.0
            st.caption(f"{share:.1%} of revenue (365 days) · {TIER_ACTIONS[tier]}")
