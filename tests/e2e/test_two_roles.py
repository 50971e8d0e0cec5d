"""Browser: two people signed in at once, in two browser contexts, see different numbers on the same page:
the executive every row, the Europe manager only Europe's (crm computes both, with each one's scope)."""

from __future__ import annotations

from datetime import date

import pytest

from crm import auth
from crm.filters import Filters, Period
from crm.scope import Scope
from tests.e2e.harness import VIEWPORT, sign_in
from tests.e2e.screen import expected_tiles, open_cockpit, shown_tiles

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
SCOPES = {name: scope for name, _, scope, _ in auth.DEMO_USERS}


def test_an_executive_and_a_manager_see_their_own_numbers_on_the_same_page_at_once(browser, server, e2e_store, frames):
    pages = {}
    for name in ("exec", "manager"):
        context = browser.new_context(viewport=VIEWPORT)
        sign_in(context, str(e2e_store.url), name)
        pages[name] = context.new_page()
    try:
        for tab in pages.values():  # both open before either is read: two live sessions on one server
            tab.goto(f"{server.url}/?from={Q2.start}&to={Q2.end}")
        seen = {}
        for name, tab in pages.items():
            open_cockpit(tab, f"{server.url}/?from={Q2.start}&to={Q2.end}")
            seen[name] = shown_tiles(tab)
            assert seen[name] == expected_tiles(frames, Filters.create(Q2, scope=SCOPES[name])), name
        assert SCOPES["manager"] == Scope(regions=("Europe",))
        assert seen["exec"]["revenue_won"].value != seen["manager"]["revenue_won"].value
        assert seen["exec"]["active_customers"].value != seen["manager"]["active_customers"].value
    finally:
        for tab in pages.values():
            tab.context.close()
