"""RFM segments and the segment explorer: tiers, segments, movement, drag-to-filter, grid, export, saved segments."""

import streamlit as st

from crm import segments
from crm.charts import SEGMENT_COLORS, build_rfm_scatter, build_segment_bars, build_transition_chart
from crm.format import format_money, plain
from crm.grid import CUSTOMER_COLUMNS_FIRST, CUSTOMER_COLUMNS_LAST
from crm.metrics import rfm
from crm.segments import AXES, NOT_SCORED, SEGMENT_NAMES, SegmentRule
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.columns import percent_column
from crm.ui.frame import page_choice, page_frame, view_key
from crm.ui.grid import explorer_grid, export_grid_view
from crm.ui.segments import (
    apply_rule_event,
    cells_rule,
    movement_picker,
    names_rule,
    saved_segments_panel,
    tier_tiles,
)

GRID_ROWS = 5_000

ctx = page_frame("Segments")
st.title("RFM segments")
period, end = ctx.filters.period, ctx.filters.period.end
base = SegmentRule.for_filters(ctx.filters)
with st.spinner("Scoring customers…"):
    scored = loaders.segment_scores(ctx.url, ctx.version, ctx.filters)
if scored.is_empty():
    st.info(f"No customer in this view ordered in the 365 days up to {end:%d %b %Y}: move the period or clear a "
            "filter in the sidebar.", icon=":material/inbox:")
    st.stop()
rule_text = ctx.filters.segment_rule
current = SegmentRule.from_json(rule_text) if rule_text else None
st.caption(f"RFM as of {end:%d %b %Y} over {scored.height:,} customers with an order in the 365 days before: R = days "
           "since the last order, F = orders, M = revenue; each scored 1–5 as ⌈5 × average rank ÷ n⌉ (ties share "
           "their mean rank; higher is better). Named segments and tiers: the first rule in order that a customer's "
           "three scores match.", help=f"**Segments**, {rfm.DEFINITIONS['rfm_segment']}.\n\n"
           f"**Tiers**, {rfm.DEFINITIONS['tier']}.")

tier_tiles(rfm.segment_summary(scored, "tier"))

st.subheader("Segments")
by = page_choice("by", "Group by", ("segment", "tier"), "segment", "seg_by", {"segment": "RFM segment", "tier": "Tier"})
summary = rfm.segment_summary(scored, by)
chosen = (current.segments if by == "segment" else current.tiers) if current else ()
left, right = st.columns([2, 3])
with left:
    bars = st.plotly_chart(build_segment_bars(summary, by, chosen), key=view_key("seg_bars", by, rule_text),
                           on_select="rerun", selection_mode=("points", "box"))
    apply_rule_event(bars, "bars", names_rule(base, by), period)
    st.caption("Drag a box over bars to select their customers.")
with right:
    columns = [by, "customers", "action", "revenue_share", "avg_recency_days", "avg_frequency", "avg_monetary"]
    st.dataframe(summary.select(columns), hide_index=True, key=f"seg_table_{by}",  # what to do before the averages
                 column_config={
                     by: st.column_config.TextColumn("RFM segment" if by == "segment" else "Tier"),
                     "customers": st.column_config.NumberColumn("Customers", format="localized"),
                     "revenue_share": percent_column("Revenue share"),
                     "avg_recency_days": st.column_config.NumberColumn("Avg days since order", format="%.0f"),
                     "avg_frequency": st.column_config.NumberColumn("Avg orders", format="%.1f"),
                     "avg_monetary": st.column_config.NumberColumn("Avg revenue", format="dollar"),
                     "action": st.column_config.TextColumn("What to do", width="large"),
                 })

st.subheader("Drag to select customers")
a, b = st.columns(2)
with a:
    x = page_choice("x", "Across", tuple(AXES), "recency_days", "seg_x", AXES)
with b:
    y = page_choice("y", "Up", tuple(AXES), "monetary", "seg_y", AXES)
log_axes = ("monetary",) if st.toggle("Revenue on a log scale", value=True, key="seg_log",
                                      help="Revenue is skewed: a log scale spreads the many small spenders out.") else ()
members = loaders.segment_members(ctx.url, ctx.version, ctx.filters) if rule_text else None
outline = ({"box": current.box} if current.box else {"lasso": current.lasso}) if current and (current.x, current.y) == (
    x, y) and (current.box or current.lasso) else None
figure = build_rfm_scatter(segments.scatter_points(scored), segments.density(scored, x, y), x, y, AXES, members,
                           scored.height, log_axes=log_axes, shape=outline)
event = st.plotly_chart(figure, key=view_key("seg_scatter", x, y, log_axes, rule_text), on_select="rerun",
                        selection_mode=("box", "lasso"))
apply_rule_event(event, "scatter", lambda sel: segments.shape_rule(sel, base, x, y, log_axes), period)
st.caption("Drag a box (or pick the lasso in the chart's toolbar and draw around customers): every customer inside "
           "the shape is selected, also those the chart does not draw. The selection filters every page.")

st.subheader("Segment movement")
moves = loaders.get_report(ctx.url, ctx.version, "rfm_transitions", ctx.filters)
order = (*SEGMENT_NAMES, NOT_SCORED)
heat = st.plotly_chart(build_transition_chart(moves, order), key=view_key("seg_moves", rule_text), on_select="rerun",
                       selection_mode=("points", "box"))
apply_rule_event(heat, "moves", cells_rule(base), period)
st.caption(f"Rows: segment on {period.previous().end:%d %b %Y} (the previous period's end); columns: on "
           f"{end:%d %b %Y}. Drag a box over cells to select those customers, or pick a movement here:")
movement_picker(base, period, tuple(n for n in order if n in SEGMENT_COLORS))

selected = loaders.segment_selected(ctx.url, ctx.version, ctx.filters, current) if current else scored
as_of = (current.as_of if current and current.as_of else end)
table = loaders.segment_customers(ctx.url, ctx.version, selected, as_of, limit=GRID_ROWS)
if current:
    st.subheader(f"Selected customers · {selected.height:,} · {format_money(float(selected['monetary'].sum() or 0))} "
                 "revenue (365 days)")
    st.caption(f"Selection: {plain(current.describe())}. Clear it in the sidebar.")
else:
    st.subheader(f"All scored customers · {selected.height:,}")
    st.caption("Select customers on a chart above to narrow this grid, the export and every other page.")
if selected.height > GRID_ROWS:
    st.caption(f"The grid holds the {GRID_ROWS:,} highest-revenue customers; its filters and sort apply to all "
               f"{selected.height:,} in the export.")
view = explorer_grid(table, key=view_key("seg_grid", rule_text, as_of), limit=GRID_ROWS, first=CUSTOMER_COLUMNS_FIRST,
                     last=CUSTOMER_COLUMNS_LAST, links=customer_links.grid_links("name"))
customer_links.ticked_links(view.ticked, "name")
export_grid_view(
    view, None if selected.height <= GRID_ROWS else lambda: loaders.segment_customers(ctx.url, ctx.version, selected, as_of),
    selected.height, current.describe() if current else "every scored customer",
    base="customers", title="Customers of a segment", filters=ctx.filters, data_version=ctx.version, key="seg_export",
    formats=("csv", "xlsx", "parquet"), definitions=rfm.DEFINITIONS)

with st.expander("Saved segments", icon=":material/bookmarks:", expanded=current is not None):
    saved_segments_panel(ctx, current)
