"""Churn and retention: churn trend, customer flow, cohort retention, churn by customer attribute,
on the store's churn basis (activity or subscription; set on the Data page)."""

import polars as pl
import streamlit as st

from crm.charts import (
    Sparkline,
    build_churn_by_chart,
    build_churn_trend_chart,
    build_cohort_heatmap,
    build_customer_flow_chart,
    sparkline,
)
from crm.metrics import definition
from crm.metrics.churn import ACTIVE_WINDOW_DAYS, CHURN_DIMENSIONS
from crm.metrics.registry import CHURN_BASIS_TEXT
from crm.reports import ReportOptions
from crm.selections import tile_notes
from crm.settings import ChurnBasis
from crm.ui import loaders
from crm.ui.columns import percent_column, points_column
from crm.ui.frame import page_choice, page_frame
from crm.ui.layout import tile_grid
from crm.ui.tiles import kpi_tile

WINDOWS = ("30", "60", "90", "180", "365")

ctx = page_frame("Churn & retention")
st.title("Churn and retention")
basis = ctx.frames.churn_basis
subscription = basis is ChurnBasis.SUBSCRIPTION
a, b = st.columns([3, 2])
if subscription:
    window = ACTIVE_WINDOW_DAYS
    a.caption(f"Churn basis **subscription**: {CHURN_BASIS_TEXT[basis]} (the store setting, changed on the Data page).")
else:
    with a:
        window = int(page_choice("window", "A customer is active for (days after an order)", WINDOWS,
                                 str(ACTIVE_WINDOW_DAYS), "cus_window", {w: f"{w} days" for w in WINDOWS},
                                 help="Active on day d: an order dated within the window ending on d "
                                      "(churn basis activity, the store setting changed on the Data page)."))
options = ReportOptions(window=window)

summary = loaders.get_report(ctx.url, ctx.version, "churn_summary", ctx.filters, options).row(0, named=True)
trend_12 = loaders.get_trend(ctx.url, ctx.version, ctx.filters, "customers")
tiles = tile_grid("customers")
for key in ("active_customers", "churn_rate"):
    with tiles:
        line = sparkline(trend_12, key) if window == ACTIVE_WINDOW_DAYS else Sparkline([], [])
        kpi_tile(definition(key, basis), summary[key], summary[f"{key}_previous"], line.values, ctx.filters.compare,
                 link=False, note=tile_notes(ctx.filters).get(key), partial=line.partial,
                 comparable=ctx.filters.period.end <= ctx.anchor)
if window != ACTIVE_WINDOW_DAYS:
    tiles.info(f"Counted with a {window}-day activity window; the cockpit uses {ACTIVE_WINDOW_DAYS} days.",
                  icon=":material/info:")

trend = loaders.get_report(ctx.url, ctx.version, "churn_trend", ctx.filters, options)
if trend.is_empty() or not (trend["active_before"].sum() or trend["new"].sum()):
    st.info(f"No {'subscribers' if subscription else 'orders'} in this view: widen the period or clear a filter in "
            "the sidebar.", icon=":material/inbox:")
    st.stop()
left, right = st.columns(2)
left.plotly_chart(build_churn_trend_chart(trend), key="cus_churn_trend")
right.plotly_chart(build_customer_flow_chart(trend), key="cus_flow")
st.caption(f"**Churn rate** of a month = customers active the day before it who are not active on its last day ÷ "
           f"those active the day before; {CHURN_BASIS_TEXT[basis]}. "
           + ("**New**: created in the month; **returning**: subscribed the day before it and still on its last day; "
              "**churned**: cancelled in the month (a cancellation is final, so none are reactivated)." if subscription else
              f"**New**: first order ever in the month; **returning**: ordered in the month and active the day before "
              f"it; **reactivated**: ordered in the month after lapsing ({window}-day window)."))

st.subheader("Cohort retention")
measure = page_choice("measure", "Retention of", ("customers", "revenue"), "customers", "cus_measure")
cohorts = loaders.get_report(ctx.url, ctx.version, "cohort_retention", ctx.filters, options)
if cohorts.is_empty():
    st.info("No first orders in the 12 months ending with this period.", icon=":material/inbox:")
else:
    st.plotly_chart(build_cohort_heatmap(cohorts, measure), key="cus_cohorts")
    st.caption(("Cell (c, k) = share of the customers whose first order was in month c who ordered in month c + k"
                if measure == "customers" else
                "Cell (c, k) = the cohort's revenue in month c + k ÷ its revenue in its first month")
               + (" (orders, whatever the churn basis)." if subscription else "."))

st.subheader("Churn by customer attribute")
dim = page_choice("dim", "Break down by", CHURN_DIMENSIONS, "region", "cus_dim")
by_dim = loaders.get_report(ctx.url, ctx.version, "churn_by", ctx.filters, ReportOptions(window=window, by=dim))
# The chart, then its table at full width: six columns beside the chart scrolled sideways at 1024 px.
st.plotly_chart(build_churn_by_chart(by_dim, dim), key="cus_churn_by")
st.dataframe(by_dim.select(dim, "active_before", "churned", "churn_rate", "churn_rate_previous", pl.col("change") * 100),
             hide_index=True, key="cus_churn_by_table", column_config={
                 dim: st.column_config.TextColumn(dim.capitalize()),
                 "active_before": st.column_config.NumberColumn("Active before"),
                 "churned": st.column_config.NumberColumn("Churned"),
                 "churn_rate": percent_column("Churn"),
                 "churn_rate_previous": percent_column("Previous period"),
                 "change": points_column("Change"),
             })
