"""KPI tiles: a metric value, its change, a sparkline and its definition on hover."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from crm.dataset import Frames
from crm.filters import Filters
from crm.format import delta_color, format_delta, format_money, format_value, plain
from crm.metrics.registry import MetricDefinition
from crm.ui import loaders
from crm.ui.frame import redraw_page
from crm.ui.pages import AREA_PAGES, PAGES
from crm.ui.url import link_params

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
    note: str | None = None,
    partial: Sequence[tuple[str, Any]] = (),
    comparable: bool = True,
) -> None:
    """One bordered tile; an undefined value shows an em dash and says why; with ``link``, a link
    to the page that explains the metric (where one exists); ``note`` says how the active selection
    changes what the tile means (crm.selections.tile_notes). ``trend`` holds whole months only;
    ``partial`` the (label, value so far) of months not over, shown apart from the sparkline. With
    ``comparable`` False (the period is not over at the data's last day) the change has no colour."""
    delta = format_delta(value, previous, metric.unit) if compare else None
    shown_previous = format_value(previous, metric.unit)
    help_text = f"**{metric.label}** = {metric.formula}."
    if compare:
        help_text += f"\n\nPrevious period: {shown_previous}."
        if not comparable:
            help_text += " This period runs past the data's last day, so the change has no colour."
    sparkline = [v for v in trend if v is not None]
    with st.container(border=True, key=f"tile_{metric.key}"):
        st.metric(
            metric.label,
            format_value(value, metric.unit),
            delta=delta,
            delta_color=delta_color(metric) if comparable else "off",  # type: ignore[arg-type]
            help=help_text,
            chart_data=sparkline if len(sparkline) > 1 else None,
            chart_type="line",
            delta_description="vs previous period" if delta is not None else None,
        )
        for label, so_far in partial:
            st.caption(f":material/timelapse: {plain(label)}: {format_value(so_far, metric.unit)}",
                       help="So far in a month not over at the data's last day: not in the sparkline, "
                            "not comparable with whole months.")
        if value is None:
            st.caption(EMPTY_TEXT.get(metric.key, "Not defined for this period."))
        if note:
            st.caption(f":material/filter_alt: {plain(note)}")
        explained_by = AREA_PAGES.get(metric.area.value) if link else None
        if explained_by:
            title = next(p.title for p in PAGES if p.path == explained_by)
            st.page_link(explained_by, label=f"Explore in {title}", icon=":material/arrow_forward:",
                         query_params=link_params(explained_by),  # the filters go along: one history entry
                         help=f"The {title} page breaks {metric.label.lower()} down and explains it.")


AT_RISK_PAGE = "pages/churn_risk.py"
_WAITS = "cockpit_background_waits"
"""st.session_state key: how often the cockpit has checked its background work since its last full run."""
BACKGROUND_CHECK_SECONDS = 2.0
"""While the churn model or the quality scores are being worked out, the cockpit checks this often."""


def at_risk_tile(url: str, version: int, frames: Frames, filters: Filters) -> bool:
    """The "At-risk revenue" tile: Σ revenue at risk (churn risk × the last 365 days' order value) over the
    active customers these filters and their scope let through, as of the data's last day, with a link to the
    Churn risk page. Until the store's churn model is fitted the tile says "computing…" (the cockpit never waits
    for the fit: ``wait_for_at_risk`` starts it once the page is drawn). Returns whether the value is shown."""
    models = loaders.churn_models(url, version, frames, start=False)
    help_text = ("**At-risk revenue** = Σ churn risk × order value in the last 365 days, over the customers active "
                 "on the data's last day (an order in the 90 days up to it) within the filters: the churn model's "
                 "probability that each orders nothing in the next 90 days. Not tied to the period.")
    with st.container(border=True, key="tile_at_risk_revenue"):
        if models is None:
            st.metric("At-risk revenue", "computing…", help=help_text)
            st.caption("The churn model is being fitted for this data; the value appears by itself.")
        elif not models.ready:
            st.metric("At-risk revenue", "—", help=help_text)
            st.caption("No churn model: too little history." if models.problem != "failed" else
                       "The churn model could not be fitted.")
        else:
            risk = loaders.churn_risk_list(url, version, filters)
            total = float(risk["revenue_at_risk"].sum()) if risk.height else 0.0
            st.metric("At-risk revenue", format_money(total), help=help_text)
            st.caption(f"{risk.height:,} active customers scored" if risk.height else "No active customer in this view.")
        st.page_link(AT_RISK_PAGE, label="Explore in Churn risk", icon=":material/arrow_forward:",
                     query_params=link_params(AT_RISK_PAGE),
                     help="The Churn risk page lists the customers behind this sum, with the rule behind each.")
    return models is not None


def wait_for_background(url: str, version: int, frames: Frames, *, churn: bool, quality: bool) -> None:
    """While the at-risk tile says "computing…" (``churn``) or the quality footer says the tables are being
    checked (``quality``): start the churn fit in the background after the page is drawn (its first check,
    BACKGROUND_CHECK_SECONDS later, so the fit does not compete with the cockpit's first render on a busy
    machine), and redraw the page as soon as either is ready."""
    if not (churn or quality):
        return
    st.session_state[_WAITS] = 0
    _check_background(url, version, frames, churn, quality)


@st.fragment(run_every=BACKGROUND_CHECK_SECONDS)
def _check_background(url: str, version: int, frames: Frames, churn: bool, quality: bool) -> None:
    waits = st.session_state.get(_WAITS, 0)
    st.session_state[_WAITS] = waits + 1
    if waits == 0:  # the page's own run: leave the cores to the cockpit
        return
    fitted = churn and loaders.churn_models(url, version, frames) is not None
    checked = quality and not loaders.quality_pending(url, version, frames)
    if fitted or checked:
        redraw_page()
