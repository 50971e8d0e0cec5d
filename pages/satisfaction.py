"""Customer satisfaction: NPS and CSAT trends with intervals, composition, the drill to agents, what moved."""

import streamlit as st

from crm.charts import build_nps_composition_chart, build_score_trend_chart, build_what_moved_chart, sparkline
from crm.format import (
    NO_VALUE,
    as_text,
    format_delta,
    format_value,
    labelled_missing,
    missing_label,
    missing_last,
    plain,
    value_label,
)
from crm.metrics import definition
from crm.metrics.registry import Unit
from crm.metrics.satisfaction import DRILL_LEVELS, LOW_CONFIDENCE_N
from crm.reports import ReportOptions
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.frame import apply_time_brush, drill_path, page_choice, page_frame, set_drill_path, view_key
from crm.ui.grid import data_grid
from crm.ui.layout import tile_grid
from crm.ui.tiles import kpi_tile

DRILL_UNITS = {"csat": Unit.RATIO, "csat_low": Unit.RATIO, "csat_high": Unit.RATIO, "csat_n": Unit.COUNT,
               "nps": Unit.SCORE, "nps_low": Unit.SCORE, "nps_high": Unit.SCORE, "nps_n": Unit.COUNT}

ctx = page_frame("Satisfaction")
st.title("Customer satisfaction")
left, middle, right = st.columns([2, 2, 3])
with left:
    grain = page_choice("grain", "Buckets", ("month", "week"), "month", "sat_grain")
with middle:
    vs = page_choice("vs", "Compare with", ("previous", "year"), "previous", "sat_vs",
                     {"previous": "Previous period", "year": "Previous year"})
compared_label = "Previous period" if vs == "previous" else "Previous year"

current, previous = loaders.get_kpis(ctx.url, ctx.version, ctx.filters, "satisfaction")
trend = loaders.get_trend(ctx.url, ctx.version, ctx.filters, "satisfaction")
tiles = tile_grid("satisfaction")
for key in ("nps", "nps_responses", "csat", "csat_responses"):
    with tiles:
        line = sparkline(trend, key)
        kpi_tile(definition(key), current[key], previous[key], line.values, ctx.filters.compare, link=False,
                 partial=line.partial, comparable=ctx.filters.period.end <= ctx.anchor)

if not (current["nps_responses"] or current["csat_responses"]):
    st.info("No survey responses in this view: widen the period or clear a filter in the sidebar.",
            icon=":material/inbox:")
    st.stop()

options = ReportOptions(grain=grain, vs=vs)
charts = st.columns(2)
for column, kind in zip(charts, ("nps", "csat"), strict=True):
    with column:
        table = loaders.get_report(ctx.url, ctx.version, f"{kind}_trend", ctx.filters, options)
        if table.is_empty():
            st.info(f"No {kind.upper()} responses in this view.", icon=":material/inbox:")
            continue
        key = f"sat_trend_{kind}"
        event = st.altair_chart(build_score_trend_chart(table, kind, grain, compared_label), key=key,
                                on_select="rerun", width="stretch")
        apply_time_brush(event, key, grain, ctx.filters.period)
        st.caption(f"**{definition(kind).label}** = {definition(kind).formula}. Band: 95% interval; hollow points: "
                   f"fewer than {LOW_CONFIDENCE_N} responses; dashed: {compared_label.lower()}.")
st.caption("Drag across a trend to make that time range the period (whole weeks or months).")

nps = loaders.get_report(ctx.url, ctx.version, "nps_trend", ctx.filters, options)
if not nps.is_empty():
    st.plotly_chart(build_nps_composition_chart(nps, grain), key="sat_composition")

st.subheader("Drill down: product → team → agent")
kind = page_choice("kind", "Rank by", ("csat", "nps"), "csat", "sat_kind", {"csat": "CSAT", "nps": "NPS"})
path = drill_path("drill", DRILL_LEVELS)
crumbs = st.columns(len(path) + 1)
for depth, column in enumerate(crumbs):
    label = "All products" if depth == 0 else plain(value_label(*path[depth - 1]))  # a button label reads Markdown
    if column.button(label, key=f"sat_crumb_{depth}", disabled=depth == len(path), icon=":material/chevron_right:"):
        set_drill_path("drill", path[:depth])
        st.rerun()

level = DRILL_LEVELS[min(len(path), len(DRILL_LEVELS) - 1)]
within = path[:len(DRILL_LEVELS) - 1]
drill = missing_last(loaders.get_report(ctx.url, ctx.version, "satisfaction_drill", ctx.filters,
                                        ReportOptions(kind=kind, level=level, within=within)), level)
st.caption(f"Each {level} in this view, worst {kind.upper()} first, with its 95% interval and number of responses; "
           "choose a row to drill down" + (" and list its responses." if level != "agent" else " to its responses."))
filled = [c for c in drill.columns if drill.is_empty() or drill[c].null_count() < drill.height]  # no all-empty columns
shown = as_text(labelled_missing(drill.select(filled), level), DRILL_UNITS)
if NO_VALUE in drill[level]:  # no all-empty columns above; the row without a value last, not ranked
    st.caption(f"{missing_label(level)}: responses that name no {level} (the survey was not tied to one); listed "
               "last, outside the ranking.")
with st.container(key="sat_drill"):
    picked = st.dataframe(
        shown, key=view_key("sat_drill", path, kind, ctx.filters), on_select="rerun", selection_mode="single-row",
        hide_index=True,
        column_config={
            level: st.column_config.TextColumn(level.capitalize()),
            "csat": "CSAT", "csat_low": "CSAT 95% low", "csat_high": "CSAT 95% high", "csat_n": "CSAT n",
            "nps": "NPS", "nps_low": "NPS 95% low", "nps_high": "NPS 95% high", "nps_n": "NPS n",
            "low_confidence": st.column_config.CheckboxColumn(f"n < {LOW_CONFIDENCE_N}"),
        },
    )
rows = picked.selection.rows if picked is not None else []
if rows:
    chosen = (level, str(drill[level][rows[0]]))
    if chosen not in path:
        set_drill_path("drill", (*within, chosen))
        st.rerun()

responses = loaders.get_report(ctx.url, ctx.version, "responses", ctx.filters, ReportOptions(kind=kind, within=path))
where = plain(" › ".join(value_label(level, value) for level, value in path) or "all products")
st.markdown(f"**{responses.height:,} {kind.upper()} responses in {where}** (newest first, with comments)")
data_grid(responses, key="sat_responses", selectable=False, height=320,
          links=customer_links.grid_links("customer_name"))

st.subheader("What moved")
by = st.segmented_control("Split the change by", DRILL_LEVELS, default="product", key="sat_moved_by",
                          format_func=str.capitalize, wrap=True) or "product"
moved = loaders.get_report(ctx.url, ctx.version, "what_moved", ctx.filters, ReportOptions(kind=kind, level=by))
if moved.is_empty() or moved["total_effect"].is_null().all():  # no responses before (or now): no change to split
    st.info("No responses in this period or the previous one to compare.", icon=":material/inbox:")
else:
    unit = definition(kind).unit
    st.markdown(f"{kind.upper()} went from {format_value(previous[kind], unit)} to {format_value(current[kind], unit)} "
                f"({format_delta(current[kind], previous[kind], unit) or 'no comparison'}); by {by}:")
    st.plotly_chart(build_what_moved_chart(moved, by, kind), key="sat_moved")
    st.caption("Mix = (share now − share before) × (score before + score now) / 2; rate = (score now − score before) × "
               "(share before + share now) / 2; summed over the groups they equal the change exactly.")
