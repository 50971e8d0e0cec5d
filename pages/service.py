"""Service: first response and resolution percentiles, business hours, SLA breaches and watchlist, backlog."""

import streamlit as st

from crm.charts import (
    build_backlog_chart,
    build_distribution_chart,
    build_percentile_trend,
    build_service_breakdown_chart,
    build_sla_trend_chart,
)
from crm.metrics import definition
from crm.metrics.service import AT_RISK_SHARE, SERVICE_BREAKDOWNS
from crm.reports import ReportOptions
from crm.ui import loaders
from crm.ui.frame import page_choice, page_frame
from crm.ui.grid import data_grid
from crm.ui.service_settings import settings_form
from crm.ui.tiles import kpi_tile

ctx = page_frame("Service", ":material/support_agent:")
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

current, previous = loaders.get_kpis(ctx.url, ctx.version, ctx.filters)
trend_12 = loaders.get_trend(ctx.url, ctx.version, ctx.filters)
keys = (f"first_response_p50{suffix}", f"first_response_p90{suffix}", f"resolution_p50{suffix}",
        f"resolution_p90{suffix}", "sla_breach_rate_business" if basis == "business" else "sla_breach_rate",
        "backlog", "reopened_tickets", "tickets_created")
for row in (keys[:4], keys[4:]):
    for column, key in zip(st.columns(4), row, strict=True):
        with column:
            kpi_tile(definition(key), current[key], previous[key], trend_12[key].to_list(), ctx.filters.compare,
                     link=False)

if not current["tickets_created"] and not current["backlog"]:
    st.info("No tickets in this view: widen the period or clear a filter in the sidebar.", icon=":material/inbox:")
    st.stop()

options = ReportOptions(grain=grain, basis=basis, by=split)
trend = loaders.get_report(ctx.url, ctx.version, "service_trend", ctx.filters, options)
left, right = st.columns(2)
left.plotly_chart(build_percentile_trend(trend, "first_response", grain, unit), key="svc_fr_trend")
right.plotly_chart(build_percentile_trend(trend, "resolution", grain, unit), key="svc_res_trend")
st.caption(f"**First response** = first_response_at − created_at (else resolved_at); **resolution** = resolved_at − "
           f"created_at; p50/p90 over tickets created in the bucket that had the event by its end, in {unit}.")

times = loaders.get_report(ctx.url, ctx.version, "service_times", ctx.filters, options)
left, right = st.columns([3, 2])
left.plotly_chart(build_service_breakdown_chart(times, split, unit), key="svc_breakdown")
with right:
    st.plotly_chart(build_distribution_chart(
        loaders.get_report(ctx.url, ctx.version, "service_distribution", ctx.filters, options), unit), key="svc_hist")
st.dataframe(times, hide_index=True, key="svc_times", column_config={
    split: st.column_config.TextColumn(split.capitalize()),
    "first_response_p50": st.column_config.NumberColumn("First response p50 (h)", format="%.1f"),
    "first_response_p90": st.column_config.NumberColumn("First response p90 (h)", format="%.1f"),
    "resolution_p50": st.column_config.NumberColumn("Resolution p50 (h)", format="%.1f"),
    "resolution_p90": st.column_config.NumberColumn("Resolution p90 (h)", format="%.1f"),
    "sla_breach_rate": st.column_config.NumberColumn("SLA breach rate", format="percent"),
    "reopened": st.column_config.NumberColumn("Reopened"),
})

st.subheader("SLA")
sla = loaders.get_report(ctx.url, ctx.version, "sla", ctx.filters, options)
left, right = st.columns([3, 2])
left.plotly_chart(build_sla_trend_chart(trend, grain), key="svc_sla_trend")
right.dataframe(sla, hide_index=True, key="svc_sla", column_config={
    "target_hours": st.column_config.NumberColumn("Target (h)", format="%.2g"),
    "sla_breach_rate": st.column_config.NumberColumn("Breach rate", format="percent"),
})
st.caption(f"**{definition('sla_breach_rate').label}** = {definition('sla_breach_rate').formula}; exactly at the "
           "target is not a breach; a ticket still unanswered at the end breaches once its target has passed.")
watch = loaders.get_report(ctx.url, ctx.version, "sla_watchlist", ctx.filters, options)
st.markdown(f"**Act on these: {watch.height:,} tickets unanswered on {ctx.filters.period.end:%d %b %Y}** that are past "
            f"their target or in its last {100 * (1 - AT_RISK_SHARE):.0f}% (oldest first, waiting time in {unit})")
if watch.is_empty():
    st.success("No unanswered ticket is past or near its target.", icon=":material/check_circle:")
else:
    data_grid(watch, key="svc_watch", selectable=False, height=300)

st.subheader("Backlog")
st.plotly_chart(build_backlog_chart(trend, grain), key="svc_backlog")
st.caption(f"**{definition('backlog').label}** = {definition('backlog').formula}. Reopened tickets: "
           f"{current['reopened_tickets']:,} of the {current['tickets_created']:,} created in the period.")

with st.expander("Business calendar and SLA targets", icon=":material/schedule:"):
    settings_form(ctx.store, ctx.frames.settings)
