"""Executive cockpit: KPI tiles against the previous period, and three overview charts."""

import streamlit as st

from crm.charts import build_revenue_chart, build_satisfaction_chart, build_service_chart
from crm.format import plain
from crm.metrics import tiles
from crm.ui import loaders
from crm.ui.frame import page_frame
from crm.ui.tiles import kpi_tile

ctx = page_frame("Cockpit")
st.title("Cockpit")
st.caption(f"{plain(ctx.filters.describe())} · compared with {ctx.filters.period.previous().label()}"
           if ctx.filters.compare else ctx.filters.describe())

if ctx.frames.is_empty():
    st.info("The store holds no data yet. Load demo data with `python -m crm init-demo`, or import your "
            "CSV files with `python -m crm import TABLE FILE` (see the README).", icon=":material/inbox:")
    st.stop()

with st.spinner("Computing KPIs…"):
    current, previous = loaders.get_kpis(ctx.url, ctx.version, ctx.filters)
    trend = loaders.get_trend(ctx.url, ctx.version, ctx.filters)

columns = st.columns(4)
for i, metric in enumerate(tiles()):
    with columns[i % 4]:
        kpi_tile(metric, current[metric.key], previous[metric.key], trend[metric.key].to_list(), ctx.filters.compare)
st.caption("Sparklines: the 12 calendar months ending with the period. Hover the question mark on a tile for its definition.")

left, right = st.columns(2)
with left:
    revenue = loaders.get_report(ctx.url, ctx.version, "revenue_by_month", ctx.filters)
    st.plotly_chart(build_revenue_chart(revenue), key="cockpit_revenue_chart")
with right:
    st.plotly_chart(build_satisfaction_chart(trend), key="cockpit_satisfaction_chart")
st.plotly_chart(build_service_chart(trend), key="cockpit_service_chart")
