"""Service: first response and resolution percentiles, business hours, SLA breaches and watchlist, backlog."""

import polars as pl
import streamlit as st

from crm.charts import (
    build_backlog_chart,
    build_distribution_chart,
    build_percentile_trend,
    build_service_breakdown_chart,
    build_sla_trend_chart,
    sparkline,
)
from crm.format import as_text, labelled_missing, missing_last, tickets, watchlist_table
from crm.metrics import definition
from crm.metrics.registry import Unit
from crm.metrics.service import AT_RISK_SHARE, RECENT_BREACH_DAYS, SERVICE_BREAKDOWNS
from crm.reports import ReportOptions
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.frame import page_choice, page_frame
from crm.ui.grid import data_grid
from crm.ui.layout import tile_grid
from crm.ui.service_settings import settings_form
from crm.ui.tiles import kpi_tile

ctx = page_frame("Service")
st.title("Service")
a, b, c = st.columns([2, 3, 4])
with a:
    grain = page_choice("grain", "Buckets", ("week", "month"), "week", "svc_grain")
with b:
    basis = page_choice("basis", "Count time in", ("calendar", "business"), "calendar", "svc_basis",
                        {"calendar": "Calendar hours", "business": "Business hours"},
                        help="Business hours count only the working time of the business calendar below.")
with c:
    split = page_choice("split", "Break down by", SERVICE_BREAKDOWNS, "team", "svc_split")
unit = "business hours" if basis == "business" else "calendar hours"
suffix = "_business_hours" if basis == "business" else "_hours"

current, previous = loaders.get_kpis(ctx.url, ctx.version, ctx.filters, "service")
trend_12 = loaders.get_trend(ctx.url, ctx.version, ctx.filters, "service")
keys = (f"first_response_p50{suffix}", f"first_response_p90{suffix}", f"resolution_p50{suffix}",
        f"resolution_p90{suffix}", "sla_breach_rate_business" if basis == "business" else "sla_breach_rate",
        "backlog", "reopened_tickets", "tickets_created")
tiles = tile_grid("service")
for key in keys:
    with tiles:
        line = sparkline(trend_12, key)
        kpi_tile(definition(key), current[key], previous[key], line.values, ctx.filters.compare, link=False,
                 partial=line.partial, comparable=ctx.filters.period.end <= ctx.anchor)

if not current["tickets_created"] and not current["backlog"]:
    st.info("No tickets in this view: widen the period or clear a filter in the sidebar.", icon=":material/inbox:")
    st.stop()

options = ReportOptions(grain=grain, basis=basis, by=split)
trend = loaders.get_report(ctx.url, ctx.version, "service_trend", ctx.filters, options)
left, right = st.columns(2)
left.plotly_chart(build_percentile_trend(trend, "first_response", grain, unit), key="svc_fr_trend")
right.plotly_chart(build_percentile_trend(trend, "resolution", grain, unit), key="svc_res_trend")
st.caption(f"**First response** = first response time − creation time (else resolution time); **resolution** = "
           f"resolution time − creation time; p50/p90 over tickets created in the bucket that had the event by its "
           f"end, in {unit}.")

times = loaders.get_report(ctx.url, ctx.version, "service_times", ctx.filters, options)
left, right = st.columns([3, 2])
left.plotly_chart(build_service_breakdown_chart(times, split, unit), key="svc_breakdown")
with right:
    st.plotly_chart(build_distribution_chart(
        loaders.get_report(ctx.url, ctx.version, "service_distribution", ctx.filters, options), unit), key="svc_hist")
TIME_UNITS = {"first_response_p50": Unit.HOURS, "first_response_p90": Unit.HOURS, "resolution_p50": Unit.HOURS,
              "resolution_p90": Unit.HOURS, "sla_breach_rate": Unit.RATIO}  # an empty value reads "—", not "None"
st.dataframe(as_text(labelled_missing(missing_last(times, split), split), TIME_UNITS), hide_index=True, key="svc_times",
             column_config={
    split: st.column_config.TextColumn(split.capitalize()),
    "first_response_p50": st.column_config.TextColumn("First response p50"),
    "first_response_p90": st.column_config.TextColumn("First response p90"),
    "resolution_p50": st.column_config.TextColumn("Resolution p50"),
    "resolution_p90": st.column_config.TextColumn("Resolution p90"),
    "sla_breach_rate": st.column_config.TextColumn("SLA breach rate"),
    "reopened": st.column_config.NumberColumn("Reopened"),
})

st.subheader("SLA")
sla = loaders.get_report(ctx.url, ctx.version, "sla", ctx.filters, options)
left, right = st.columns([3, 2])
left.plotly_chart(build_sla_trend_chart(trend, grain), key="svc_sla_trend")
right.dataframe(as_text(sla, {"sla_breach_rate": Unit.RATIO}), hide_index=True, key="svc_sla", column_config={
    "target_hours": st.column_config.NumberColumn("Target (h)", format="%.2g"),
    "sla_breach_rate": st.column_config.TextColumn("Breach rate"),  # "—" for a priority with no tickets
})
st.caption(f"**{definition('sla_breach_rate').label}** = {definition('sla_breach_rate').formula}; exactly at the "
           "target is not a breach; a ticket still unanswered at the end breaches once its target has passed.")
watch = loaders.get_report(ctx.url, ctx.version, "sla_watchlist", ctx.filters, options)
st.markdown(f"**At risk now: {tickets(watch.height)} unanswered on {ctx.filters.period.end:%d %b %Y}** in the last "
            f"{100 * (1 - AT_RISK_SHARE):.0f}% of their target or past it for at most {RECENT_BREACH_DAYS} days "
            f"(oldest first; waits in {unit}, in days from 48 hours)")
if watch.is_empty():
    st.success("No unanswered ticket is near its target or recently past it.", icon=":material/check_circle:")
else:
    data_grid(watchlist_table(watch), key="svc_watch", selectable=False, height=300,
              links=customer_links.grid_links("customer_name"))
stale = loaders.get_report(ctx.url, ctx.version, "sla_stale", ctx.filters, options)
with st.expander(f"Long-stale: {tickets(stale.height, 'open ticket')} past their target for more than {RECENT_BREACH_DAYS} days",
                 icon=":material/hourglass_bottom:"):
    st.caption("Never answered and long past the target: close them, answer them or hand them on; they are "
               "counted here rather than topping the list above (oldest first).")
    if not stale.is_empty():
        data_grid(stale.with_columns(pl.col("waited_days").round(1)), key="svc_stale", selectable=False, height=300,
                  links=customer_links.grid_links("customer_name"))

st.subheader("Backlog")
st.plotly_chart(build_backlog_chart(trend, grain), key="svc_backlog")
st.caption(f"**{definition('backlog').label}** = {definition('backlog').formula}. Reopened tickets: "
           f"{current['reopened_tickets']:,} of the {current['tickets_created']:,} created in the period.")

with st.expander("Business calendar and SLA targets", icon=":material/schedule:"):
    settings_form(ctx.store, ctx.frames.settings)
