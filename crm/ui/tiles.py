"""KPI tiles: a metric value, its change, a sparkline and its definition on hover."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm.format import delta_color, format_delta, format_value
from crm.metrics.registry import MetricDefinition
from crm.ui.pages import AREA_PAGES, PAGES

EMPTY_TEXT = {
    "revenue_won": "No deals won in this period.",
    "win_rate": "No deals closed in this period.",
    "nps": "No NPS responses in this period.",
    "csat": "No CSAT responses in this period.",
    "first_response_p50_hours": "No tickets answered in this period.",
    "sla_breach_rate": "No tickets created in this period.",
    "churn_rate": "No customers were active before this period.",
}


def kpi_tile(
    metric: MetricDefinition,
    value: Any,
    previous: Any,
    trend: list[Any],
    compare: bool = True,
    link: bool = True,
) -> None:
    """One bordered tile; an undefined value shows an em dash and says why; with ``link``, a link
    to the page that explains the metric (where one exists)."""
    delta = format_delta(value, previous, metric.unit) if compare else None
    shown_previous = format_value(previous, metric.unit)
    help_text = f"**{metric.label}** = {metric.formula}."
    if compare:
        help_text += f"\n\nPrevious period: {shown_previous}."
    sparkline = [v for v in trend if v is not None]
    with st.container(border=True, key=f"tile_{metric.key}"):
        st.metric(
            metric.label,
            format_value(value, metric.unit),
            delta=delta,
            delta_color=delta_color(metric),  # type: ignore[arg-type]
            help=help_text,
            chart_data=sparkline if len(sparkline) > 1 else None,
            chart_type="line",
            delta_description="vs previous period" if delta is not None else None,
        )
        if value is None:
            st.caption(EMPTY_TEXT.get(metric.key, "Not defined for this period."))
        explained_by = AREA_PAGES.get(metric.area.value) if link else None
        if explained_by:
            title = next(p.title for p in PAGES if p.path == explained_by)
            st.page_link(explained_by, label=f"Explore in {title}", icon=":material/arrow_forward:",
                         help=f"The {title} page breaks {metric.label.lower()} down and explains it.")
