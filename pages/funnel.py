"""Sales funnel: conversion, drop-off, breakdown, velocity, win/loss, forecast, and the deals behind a bar."""

import polars as pl
import streamlit as st

from crm.charts import (
    build_breakdown_heatmap,
    build_forecast_chart,
    build_funnel_chart,
    build_lost_reasons_chart,
    build_velocity_chart,
    build_win_cycle_trend,
    build_win_rate_chart,
    point_customdata,
)
from crm.format import format_money
from crm.grid import DEAL_COLUMNS_FIRST, DEAL_COLUMNS_LAST
from crm.metrics import funnel
from crm.reports import ReportOptions
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.frame import apply_chart_selection, page_choice, page_frame
from crm.ui.grid import data_grid, explorer_grid, export_grid_view

GRID_ROWS = 5_000
MODE_LABELS = {"cohort": "Cohort", "strict": "Strict", "snapshot": "Snapshot"}
MODE_HELP = {
    "cohort": "Deals created in the period. A deal reached a stage if its history (to the period end) holds it or a "
              "later stage; won deals reached every stage. Step = reached ÷ previous step; cumulative = ÷ first step.",
    "strict": "Like cohort, but a deal counts only along its in-order path: it stops at its first skipped stage.",
    "snapshot": "Deals open at the period end, by the stage they were in then (count and amount).",
}

ctx = page_frame("Funnel")
st.title("Sales funnel")
left, right = st.columns([3, 2])
with left:
    mode = page_choice("mode", "Funnel", funnel.MODES, "cohort", "fun_mode", MODE_LABELS, help=MODE_HELP["cohort"])
with right:
    by = page_choice("by", "Break down by", funnel.BREAKDOWNS, "owner", "fun_by")
st.caption(MODE_HELP[mode])

options = ReportOptions(mode=mode, by=None)
steps = loaders.get_report(ctx.url, ctx.version, "funnel", ctx.filters, options)
total = int(steps["deals"].sum()) if mode == "snapshot" else int(steps["reached"][0])
if total == 0:
    st.info("No deals in this view: widen the period or clear a filter in the sidebar.", icon=":material/inbox:")
    st.stop()


def _steps(points):
    return tuple(("step", str(point_customdata(p)[0])) for p in points if point_customdata(p))


def _cells(points):
    cells = [point_customdata(p) for p in points]
    return tuple((by, str(c[0])) for c in cells if c) + tuple(("step", str(c[1])) for c in cells if len(c) > 1)


selected = tuple(int(v) for v in ctx.filters.selected("step") if v.isdigit())
chart = st.plotly_chart(build_funnel_chart(steps, mode, selected), key="fun_chart", on_select="rerun",
                        selection_mode=("points", "box"))
apply_chart_selection(chart, "fun_chart", _steps, replaces=("step",))
st.caption("Drag a box over one or more bars to list their deals below; the selection joins the filters and the link.")

if mode != "snapshot":
    breakdown = loaders.get_report(ctx.url, ctx.version, "funnel", ctx.filters, ReportOptions(mode=mode, by=by))
    heat = st.plotly_chart(build_breakdown_heatmap(breakdown, by), key="fun_breakdown", on_select="rerun",
                           selection_mode=("points", "box"))
    apply_chart_selection(heat, "fun_breakdown", _cells, replaces=("step", *funnel.BREAKDOWNS))

deals = loaders.get_first_deals(ctx.url, ctx.version, ctx.filters, ReportOptions(mode=mode, by=by), GRID_ROWS)
title = "Deals behind the selection" if ctx.filters.selection else "All deals in this funnel"
st.subheader(f"{title} · {deals.deals:,} deals · {format_money(deals.amount)}")
if deals.deals > GRID_ROWS:
    st.caption(f"The grid holds the first {GRID_ROWS:,} deals by creation date; its filters and sort apply to all "
               f"{deals.deals:,} in the export. Drag a box on the funnel to narrow.")
view = explorer_grid(deals.rows, key="fun_grid", limit=GRID_ROWS, first=DEAL_COLUMNS_FIRST, last=DEAL_COLUMNS_LAST,
                     links=customer_links.grid_links("customer_name"))
customer_links.ticked_links(view.ticked, "customer_name")
export_grid_view(
    view, None if deals.deals <= GRID_ROWS else lambda: loaders.get_report(
        ctx.url, ctx.version, "deals", ctx.filters, ReportOptions(mode=mode, by=by)), deals.deals,
    f"{mode} funnel; " + (ctx.filters.describe() if ctx.filters.selection else "all deals"),
    base="deals", title="Deals behind the funnel selection", filters=ctx.filters, data_version=ctx.version,
    key="fun_export", metric_keys=("win_rate", "pipeline_value", "weighted_pipeline"))

# Only the open tab runs (a tab switch reruns the page): a new filter computes one tab's reports, not three.
velocity_tab, win_tab, forecast_tab = st.tabs(["Velocity", "Win / loss", "Forecast & ageing"], key="fun_tab",
                                              on_change="rerun")
if velocity_tab.open:
    with velocity_tab:
        velocity = loaders.get_report(ctx.url, ctx.version, "stage_velocity", ctx.filters)
        a, b = st.columns(2)
        a.plotly_chart(build_velocity_chart(velocity), key="fun_velocity")
        trend = loaders.get_report(ctx.url, ctx.version, "win_cycle_trend", ctx.filters.ending())
        b.plotly_chart(build_win_cycle_trend(trend), key="fun_trend")
        st.caption("Time in stage: for deals created in the period that left the stage by its end, days from "
                   "entering it to the next history row. Sales cycle: median days created → won over deals won in "
                   "the month.")
if win_tab.open:
    with win_tab:
        win_loss = loaders.get_report(ctx.url, ctx.version, "win_loss", ctx.filters, ReportOptions(by=by))
        reasons = loaders.get_report(ctx.url, ctx.version, "lost_reasons", ctx.filters)
        a, b = st.columns(2)
        with a:
            bars = st.plotly_chart(build_win_rate_chart(win_loss, by), key="fun_winrate", on_select="rerun",
                                   selection_mode=("points", "box"))
            apply_chart_selection(bars, "fun_winrate", lambda pts: tuple((by, str(point_customdata(p)[0]))
                                                                          for p in pts if point_customdata(p)),
                                  replaces=funnel.BREAKDOWNS)
        b.plotly_chart(build_lost_reasons_chart(reasons), key="fun_reasons")
        st.caption("Win rate = won ÷ (won + lost) over deals closed in the period; markers: the previous period.")
if forecast_tab.open:
    with forecast_tab:
        # A widget not drawn in a run loses its state: the days are kept aside for when the tab opens again.
        if "fun_days" not in st.session_state:
            st.session_state["fun_days"] = st.session_state.get("fun_days_kept", 30)
        days = st.number_input("Stuck longer than (days)", min_value=1, max_value=3650, step=5, key="fun_days")
        st.session_state["fun_days_kept"] = days
        st.plotly_chart(build_forecast_chart(loaders.get_report(ctx.url, ctx.version, "forecast", ctx.filters)),
                        key="fun_forecast")
        st.caption("Expected close: the deal's expected close date, else its creation + the median sales cycle. "
                   "Weighted = amount × the win probability of the deal's stage at the period end.")
        aged = loaders.get_report(ctx.url, ctx.version, "ageing", ctx.filters, ReportOptions(days=int(days)))
        st.markdown(f"**{aged.height:,} open deals in their stage longer than {int(days)} days** (oldest first)")
        if aged.is_empty():
            st.success(f"No open deal has been in its stage longer than {int(days)} days.",
                       icon=":material/check_circle:")
        else:
            data_grid(aged.with_columns(pl.col("days_in_stage").floor().cast(pl.Int64)), key="fun_aged",
                      selectable=False, height=320, first=("customer_name", "stage", "days_in_stage", "amount"),
                      links=customer_links.grid_links("customer_name"))
