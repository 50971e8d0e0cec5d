"""The view settings each page keeps in the URL beside the global filters (``?mode=strict&by=team``).

One registry says which query parameters a page owns, their valid values and their defaults. It
decides what a link to a page carries (the filters plus that page's own settings, so opening the
page writes nothing more and the browser gets one history entry per page change), which parameters
a page's URL keeps (only its own: one page's settings never travel to another page), and how a value
from a link is checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crm.cross_sell import CONFIDENCE_CHOICES, LIFT_CHOICES, PAGE_CONFIDENCE, PAGE_SUPPORT, SUPPORT_CHOICES
from crm.metrics.churn import ACTIVE_WINDOW_DAYS, CHURN_DIMENSIONS
from crm.metrics.funnel import BREAKDOWNS, MODES
from crm.metrics.service import SERVICE_BREAKDOWNS
from crm.segment_rules import AXES


@dataclass(frozen=True)
class ViewParam:
    """One query parameter a page owns: one of ``options`` (``default`` when missing or invalid), or,
    with no options, free values the page checks itself (a drill path; absent by default)."""

    name: str
    options: tuple[str, ...] = ()
    default: str | None = None


WINDOW_DAYS: tuple[str, ...] = ("30", "60", "90", "180", "365")
"""Activity windows the churn page offers (days after an order a customer counts as active)."""

VIEWS: dict[str, tuple[ViewParam, ...]] = {
    "pages/cockpit.py": (),
    "pages/funnel.py": (ViewParam("mode", MODES, "cohort"), ViewParam("by", BREAKDOWNS, "owner")),
    "pages/satisfaction.py": (
        ViewParam("grain", ("month", "week"), "month"), ViewParam("vs", ("previous", "year"), "previous"),
        ViewParam("kind", ("csat", "nps"), "csat"), ViewParam("drill"),
    ),
    "pages/service.py": (
        ViewParam("grain", ("week", "month"), "week"), ViewParam("basis", ("calendar", "business"), "calendar"),
        ViewParam("split", SERVICE_BREAKDOWNS, "team"),
    ),
    "pages/customers.py": (
        ViewParam("window", WINDOW_DAYS, str(ACTIVE_WINDOW_DAYS)),
        ViewParam("measure", ("customers", "revenue"), "customers"),
        ViewParam("dim", CHURN_DIMENSIONS, "region"),
    ),
    "pages/segments.py": (
        ViewParam("by", ("segment", "tier"), "segment"), ViewParam("x", tuple(AXES), "recency_days"),
        ViewParam("y", tuple(AXES), "monetary"),
    ),
    "pages/customer.py": (ViewParam("customer"),),
    "pages/churn_risk.py": (),
    "pages/cross_sell.py": (
        ViewParam("support", SUPPORT_CHOICES, PAGE_SUPPORT), ViewParam("confidence", CONFIDENCE_CHOICES, PAGE_CONFIDENCE),
        ViewParam("lift", LIFT_CHOICES, LIFT_CHOICES[0]), ViewParam("measure", ("lift", "confidence"), "lift"),
    ),
    "pages/data.py": (),
    "pages/quality.py": (),
    "pages/audit.py": (),
}
"""Page script -> the parameters it owns, in the order they appear in its URL."""


def view_param(page: str, name: str) -> ViewParam:
    """The registry entry of parameter ``name`` on ``page``; KeyError when the page does not own it."""
    for param in VIEWS.get(page, ()):
        if param.name == name:
            return param
    raise KeyError(f"{page} owns no URL parameter {name!r}")


def param_names(page: str | None = None) -> tuple[str, ...]:
    """The parameter names ``page`` owns, or (no page) those any page owns."""
    pages = VIEWS.values() if page is None else (VIEWS.get(page, ()),)
    return tuple(dict.fromkeys(p.name for params in pages for p in params))


def default_view(page: str) -> dict[str, list[str]]:
    """The query parameters of ``page``'s default view (every setting at its default; no drill)."""
    return {p.name: [p.default] for p in VIEWS.get(page, ()) if p.default is not None}


def page_view(page: str, params: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """``page``'s own parameters read from a query string, and notices for what was dropped.

    Each setting keeps its value when it is one of its options (the first, if repeated), else takes its
    default (with a notice when the link had an invalid value); free parameters are kept as they are.
    Parameters of other pages are left out (the caller reports unknown ones).
    """
    view: dict[str, list[str]] = {}
    notices: list[str] = []
    for param in VIEWS.get(page, ()):
        values = [v for v in params.get(param.name, ()) if v is not None]
        if not param.options:
            if values:
                view[param.name] = list(values)
            continue
        raw = values[0] if values else None
        if raw is not None and raw not in param.options:
            notices.append(f"Ignored {param.name}={raw!r} from the link; one of {', '.join(param.options)}.")
        chosen = raw if raw in param.options else param.default
        if chosen is not None:
            view[param.name] = [chosen]
    return view, notices
