"""Executive cockpit: KPI tiles against the previous period, and three overview charts."""

import streamlit as st

from crm.charts import build_revenue_chart, build_satisfaction_chart, build_service_chart, sparkline
from crm.format import plain
from crm.metrics import tiles
from crm.selections import tile_notes
from crm.ui import loaders
from crm.ui.frame import page_frame
from crm.ui.layout import tile_grid
from crm.ui.quality import quality_footer
from crm.ui.tiles import at_risk_tile, kpi_tile, wait_for_background

ctx = page_frame("Cockpit")
st.title("Cockpit")
st.caption(f"{plain(ctx.filters.describe())} · compared with {ctx.filters.period.previous().label()}"
           if ctx.filters.compare else plain(ctx.filters.describe()))

if ctx.frames.is_empty():
    st.info("The store holds no data yet. Load demo data with `python -m crm init-demo`, or import your "
            "CSV files with `python -m crm import TABLE FILE` (see the README).", icon=":material/inbox:")
    st.stop()

with st.spinner("Computing KPIs…"):
    current, previous = loaders.get_kpis(ctx.url, ctx.version, ctx.filters, "cockpit")
    trend = loaders.get_trend(ctx.url, ctx.version, ctx.filters, "cockpit")

notes = tile_notes(ctx.filters)
period_over = ctx.filters.period.end <= ctx.anchor  # a period reaching past the data compares fewer days
grid = tile_grid("cockpit")
for metric in tiles(ctx.frames.churn_basis):  # definitions on the store's churn basis
    with grid:
        line = sparkline(trend, metric.key)
        kpi_tile(metric, current[metric.key], previous[metric.key], line.values, ctx.filters.compare,
                 note=notes.get(metric.key), partial=line.partial, comparable=period_over)
with grid:
    at_risk_shown = at_risk_tile(ctx.url, ctx.version, ctx.frames, ctx.filters)
st.caption("Sparklines: the calendar months up to the period's last day, ending on the last whole month; a month "
           "not over yet is shown below them. Hover the question mark on a tile for its definition.")

left, right = st.columns(2)
with left:
    revenue = loaders.get_report(ctx.url, ctx.version, "revenue_by_month", ctx.filters)
    st.plotly_chart(build_revenue_chart(revenue), key="cockpit_revenue_chart")
with right:
    st.plotly_chart(build_satisfaction_chart(trend), key="cockpit_satisfaction_chart")
st.plotly_chart(build_service_chart(trend), key="cockpit_service_chart")
checking = quality_footer(ctx.url, ctx.version, ctx.frames)
# the churn model is fitted, the tables are checked, in the background; the page redraws when either is ready
wait_for_background(ctx.url, ctx.version, ctx.frames, churn=not at_risk_shown, quality=checking)
