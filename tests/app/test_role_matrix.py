"""Role × page × data: each demo user opens each page; what a page totals equals a direct computation over
the rows that user's scope allows (the raw tables cut by hand, tests/unit/test_narrowing.py), and a page
their role may not open shows "not permitted" and none of its data."""

from __future__ import annotations

from datetime import date

import pytest

from crm import auth
from crm.dataset import enrich
from crm.filters import Filters, Period
from crm.format import format_value
from crm.metrics import compute_metrics, tiles
from crm.narrowing import narrow
from crm.reports import build_report
from crm.roles import ADMIN_PAGES, ANALYTIC_PAGES, may_open
from crm.scope import Scope
from tests.app.conftest import open_page
from tests.unit.test_narrowing import cut_by_hand, raw_tables

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
LINK = {"from": "2026-04-01", "to": "2026-06-30"}
ROLES = {role: scope for _, role, scope, _ in auth.DEMO_USERS}


@pytest.fixture(scope="module")
def seen_by(demo_frames):
    """Each role's frames: the raw demo tables cut by hand to the role's scope, every row then allowed."""
    raw = raw_tables(demo_frames)
    return {role: enrich(cut_by_hand(raw, scope)) for role, scope in ROLES.items()}


def everything(period: Period) -> Filters:
    return Filters.create(period, scope=Scope())


@pytest.mark.parametrize("role", list(ROLES))
def test_the_cockpit_tiles_of_each_role_total_only_its_rows(app_store, seen_by, role):
    at = open_page("pages/cockpit.py", LINK, role=role)
    assert not at.exception
    expected = compute_metrics(narrow(seen_by[role], everything(Q2)), Q2)
    shown = {m.label: m.value for m in at.metric}
    for metric in tiles():
        if metric.key in expected:
            assert shown[metric.label] == format_value(expected[metric.key], metric.unit), (role, metric.key)


@pytest.mark.parametrize("role", list(ROLES))
def test_the_funnel_and_segments_of_each_role_list_only_its_rows(app_store, seen_by, role):
    deals = build_report("deals", seen_by[role], everything(Q2))
    at = open_page("pages/funnel.py", LINK, role=role)
    assert not at.exception
    heading = next(h.value for h in at.subheader if h.value.startswith("All deals"))
    assert f"{deals.height:,} deals" in heading, role
    customers = build_report("rfm_segments", seen_by[role], everything(Q2))["customers"].sum()
    at = open_page("pages/segments.py", LINK, role=role)
    assert not at.exception
    assert next(h.value for h in at.subheader if h.value.startswith("All scored customers")) == (
        f"All scored customers · {customers:,}"), role


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_opens_for_the_roles_that_may_and_says_not_permitted_to_the_others(app_store, role):
    for page in (*ANALYTIC_PAGES, *ADMIN_PAGES):
        at = open_page(page, LINK, role=role)
        assert not at.exception, (role, page)
        refused = [e.value for e in at.error if e.value.startswith("Not permitted")]
        if may_open(role, page):
            assert refused == [], (role, page)
        else:
            assert refused and not at.metric and not at.dataframe, (role, page)
