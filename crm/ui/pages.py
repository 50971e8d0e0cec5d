"""The app's pages, in one place: st.navigation in app.py and the sidebar links read this list."""

from __future__ import annotations

from dataclasses import dataclass

from crm.roles import may_open


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
    PageSpec("pages/churn_risk.py", "Churn risk", ":material/person_alert:"),
    PageSpec("pages/cross_sell.py", "Next product", ":material/add_shopping_cart:"),
    PageSpec("pages/customer.py", "Customer 360", ":material/person_search:"),
    PageSpec("pages/data.py", "Data", ":material/upload_file:"),
    PageSpec("pages/quality.py", "Data quality", ":material/fact_check:"),
    PageSpec("pages/audit.py", "Audit log", ":material/history_edu:"),
)


def pages_for(role: str | None) -> tuple[PageSpec, ...]:
    """The pages ``role`` may open (crm.roles.may_open), in PAGES order: the sidebar's links. ``None`` (nobody
    known yet, e.g. while the database cannot be reached to tell) is every page: each still checks on opening."""
    return PAGES if role is None else tuple(p for p in PAGES if may_open(role, p.path))


FAVICON = "📊"
"""The browser tab's icon on every page. An emoji: Streamlit draws it in the browser. A Material icon
(``:material/…:``) as page icon is fetched from fonts.gstatic.com on every page: a request to another host,
and a broken icon offline. (Material icons in the navigation and on buttons come with the app.)"""

AREA_PAGES: dict[str, str] = {
    "sales": "pages/funnel.py", "satisfaction": "pages/satisfaction.py", "service": "pages/service.py",
    "customers": "pages/customers.py",
}
"""Which page explains the metrics of an area (the cockpit tiles link there)."""
