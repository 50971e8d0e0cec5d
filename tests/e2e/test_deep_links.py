"""Browser: deep links opened on a freshly started server (whose first script run is the legacy pages/ run)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode, urlsplit

import pytest

from crm.filters import Filters, Period
from crm.format import format_money
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    assert_no_errors,
    expect,
    expected_tiles,
    open_cockpit,
    query,
    shown_tiles,
    wait_for_tiles,
)

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))


@pytest.fixture(scope="module")
def region(frames) -> str:
    """A region of the demo data whose name needs URL encoding (a space)."""
    return next(r for r in frames.dimension_values()["region"] if " " in r)


def assert_sidebar_shows(page, region: str, compare: bool) -> None:
    """The filter bar holds the link's dates, region and comparison setting."""
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_role("heading", name="Filters")).to_be_visible()
    expect(sidebar.get_by_role("combobox", name="Period")).to_have_value("Custom range")
    dates = sidebar.get_by_test_id("stDateInput")
    expect(dates.get_by_role("group", name="Dates start date")).to_have_text("2026-04-01")
    expect(dates.get_by_role("group", name="Dates end date")).to_have_text("2026-06-30")
    regions = sidebar.get_by_test_id("stMultiSelect").filter(has=page.get_by_role("combobox", name="Region", exact=True))
    expect(regions.locator("[data-tag]")).to_have_text([region])
    switch = sidebar.get_by_role("switch", name="Compare with the previous period")
    expect(switch).to_be_checked(checked=compare)


def test_cockpit_link_on_a_fresh_server_restores_the_filters(page, fresh_server, frames, region):
    server = fresh_server()
    link = {"from": "2026-04-01", "to": "2026-06-30", "region": region, "compare": "0"}
    open_cockpit(page, f"{server.url}/?{urlencode(link)}")
    assert_sidebar_shows(page, region, compare=False)

    expected = expected_tiles(frames, Filters.create(Q2, compare=False, regions=[region], scope=Scope()))
    assert expected != expected_tiles(frames, Filters.create(Q2, compare=False, scope=Scope()))  # the region does narrow them
    assert shown_tiles(page) == expected  # values, and no deltas (compare=0)
    assert query(page) == {k: [v] for k, v in link.items()}


def test_funnel_link_on_a_fresh_server_has_the_filter_bar_and_keeps_it_on_the_cockpit(
    page, fresh_server, frames, region
):
    server = fresh_server()
    link = {"from": "2026-04-01", "to": "2026-06-30", "region": region}
    filters = Filters.create(Q2, regions=[region], scope=Scope())
    deals = build_report("deals", frames, filters, ReportOptions(mode="cohort", by="owner"))
    assert deals.height > 0
    heading = f"All deals in this funnel · {deals.height:,} deals · {format_money(float(deals['amount'].sum()))}"

    page.goto(f"{server.url}/funnel?{urlencode(link)}")
    expect(page.get_by_role("heading", name="Sales funnel", level=1)).to_be_visible()
    expect(page.get_by_role("heading", level=3).filter(has_text="deals")).to_have_text(heading)
    wait_until_idle(page)
    assert_no_errors(page)
    assert_sidebar_shows(page, region, compare=True)
    assert urlsplit(page.url).path == "/funnel"
    assert {k: query(page).get(k) for k in link} == {k: [v] for k, v in link.items()}

    # The page switch goes through st.navigation now; the filters must survive it.
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text="Cockpit").click()
    wait_for_tiles(page)
    assert_no_errors(page)
    expect(page.get_by_role("heading", name="Cockpit", level=1)).to_be_visible()
    assert_sidebar_shows(page, region, compare=True)
    assert shown_tiles(page) == expected_tiles(frames, filters)
    assert urlsplit(page.url).path in ("/", "/cockpit")
    assert {k: query(page).get(k) for k in link} == {k: [v] for k, v in link.items()}
