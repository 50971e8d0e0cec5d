"""What each role may open and do (DESIGN.md's personas), in one table: pages, writes, contact fields.

The row-level scope (which rows a person sees) is a different matter: crm.scope, applied by
crm.narrowing. This module answers "may this role open that page / make that change / see that field".
No Streamlit here: the app's navigation (crm.ui.session) and the CLI both read it.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("executive", "manager", "analyst", "rep", "admin")

ANALYTIC_PAGES: tuple[str, ...] = (
    "pages/cockpit.py", "pages/funnel.py", "pages/satisfaction.py", "pages/service.py", "pages/customers.py",
    "pages/segments.py", "pages/customer.py", "pages/churn_risk.py", "pages/cross_sell.py",
)
ADMIN_PAGES: tuple[str, ...] = ("pages/data.py", "pages/quality.py", "pages/audit.py")

PAGE_ROLES: dict[str, frozenset[str]] = {
    **{page: frozenset(ROLES) for page in ANALYTIC_PAGES},
    **{page: frozenset({"admin"}) for page in ADMIN_PAGES},
}
"""Who may open each page (by script path). Every role sees the analytic pages, each within its scope
(a rep: own deals, customers and tickets; a manager: own regions or teams); only an admin opens the
import, data-quality and audit pages."""

ACTIONS: dict[str, frozenset[str]] = {
    "settings": frozenset({"admin", "manager"}),
    "churn_basis": frozenset({"admin"}),
    "save_segment": frozenset({"admin", "manager", "analyst"}),
    "any_segment": frozenset({"admin"}),
    "import": frozenset({"admin"}),
    "merge": frozenset({"admin"}),
    "users": frozenset({"admin"}),
    "audit": frozenset({"admin"}),
    "export": frozenset(ROLES),
    "see_contacts": frozenset({"admin", "manager", "rep"}),
}
"""Who may do what: ``settings`` (the business calendar and SLA targets), ``churn_basis`` (what "active"
means), ``save_segment`` (save, rename, share and delete their own saved segments), ``any_segment``
(rename, share or delete anyone's saved segment), ``import`` (imports and their undo), ``merge``
(duplicate customers), ``users``, ``audit`` (read the audit log), ``export`` (download a grid, within
scope and masking), ``see_contacts`` (customer email and phone unmasked: the people who call customers)."""


class NotPermitted(PermissionError):
    """A role tried something it may not do; ``str()`` is the message for the person."""


def may_open(role: str, page: str) -> bool:
    """True when ``role`` may open the page script ``page`` (e.g. ``pages/data.py``); unknown pages: nobody."""
    return role in PAGE_ROLES.get(page, frozenset())


def may(role: str, action: str) -> bool:
    """True when ``role`` may do ``action`` (a key of ACTIONS; an unknown action is refused)."""
    return role in ACTIONS.get(action, frozenset())


def who_may(action: str) -> str:
    """The roles that may do ``action``, in words for a person: ``admins and managers``."""
    names = [f"{role}s" for role in ROLES if role in ACTIONS.get(action, frozenset())]
    if not names:
        return "nobody"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def require(role: str, action: str) -> None:
    """Raise NotPermitted unless ``role`` may do ``action``."""
    if not may(role, action):
        raise NotPermitted(f"the {role or 'unknown'} role may not {_WORDS.get(action, action)} "
                           f"(only {who_may(action)} may)")


_WORDS = {
    "settings": "change the business calendar or SLA targets", "churn_basis": "change what counts as churn",
    "save_segment": "save segments", "any_segment": "change another person's saved segment",
    "import": "import data", "merge": "merge customers", "users": "manage users", "audit": "read the audit log",
    "export": "export", "see_contacts": "see contact details",
}
