"""The app's pages, in one place: st.navigation in app.py and the sidebar links read this list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    """A page script and how it appears in the navigation."""

    path: str
    title: str
    icon: str
    default: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/cockpit.py", "Cockpit", ":material/dashboard:", default=True),
    PageSpec("pages/funnel.py", "Funnel", ":material/filter_alt:"),
    PageSpec("pages/satisfaction.py", "Satisfaction", ":material/sentiment_satisfied:"),
    PageSpec("pages/service.py", "Service", ":material/support_agent:"),
    PageSpec("pages/customers.py", "Churn & retention", ":material/group_remove:"),
    PageSpec("pages/segments.py", "Segments", ":material/scatter_plot:"),
    PageSpec("pages/data.py", "Data", ":material/upload_file:"),
)

AREA_PAGES: dict[str, str] = {
    "sales": "pages/funnel.py", "satisfaction": "pages/satisfaction.py", "service": "pages/service.py",
    "customers": "pages/customers.py",
}
"""Which page explains the metrics of an area (the cockpit tiles link there)."""
