"""Browser: the Service page in real Chromium. The tiles show crm's calendar-hour times; the "Count time in"
control switches them (and the link, the charts and the SLA watchlist) to business hours with crm's numbers."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import pytest

from crm.filters import Filters, Period
from crm.metrics.service import Basis, sla_watchlist
from crm.reports import ReportOptions, build_report
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    assert_no_errors,
    expect,
    expected_tiles,
    grid_row_summary,
    query,
    shown_tiles,
    tile_value,
    wait_for_query,
    wait_for_tiles,
)

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
LINK = {"from": "2026-04-01", "to": "2026-06-30"}
BASES: tuple[Basis, ...] = ("calendar", "business")
TILES = {
    "calendar": ("first_response_p50_hours", "first_response_p90_hours", "resolution_p50_hours",
                 "resolution_p90_hours", "sla_breach_rate", "backlog", "reopened_tickets", "tickets_created"),
    "business": ("first_response_p50_business_hours", "first_response_p90_business_hours",
                 "resolution_p50_business_hours", "resolution_p90_business_hours", "sla_breach_rate_business",
                 "backlog", "reopened_tickets", "tickets_created"),
}
LABELS = {"calendar": "Calendar hours", "business": "Business hours"}


# --- what crm says ---------------------------------------------------------------------------------------

def watchlist(frames, basis: Basis) -> int:
    """How many tickets the SLA watchlist holds (unanswered on 30 Jun, past or near their target)."""
    report = build_report("sla_watchlist", frames, Filters.create(Q2), ReportOptions(basis=basis))
    assert report.height == sla_watchlist(frames.narrow(Filters.create(Q2)), Q2, basis).height
    return report.height


# --- driving the page ------------------------------------------------------------------------------------

def watch_heading(page):
    """The bold part of the line above the SLA watchlist: "Act on these: N tickets unanswered on …"."""
    return page.get_by_test_id("stMarkdownContainer").locator("strong").filter(has_text="Act on these:")


def basis_control(page):
    return page.get_by_role("radiogroup", name="Count time in", exact=True)


def assert_shows(page, frames, basis: Basis) -> None:
    """Tiles, chart titles, SLA watchlist heading and grid show crm's numbers in ``basis`` hours."""
    expected = expected_tiles(frames, Filters.create(Q2), TILES[basis])
    first = TILES[basis][0]
    expect(tile_value(page, first)).to_have_text(expected[first].value)
    wait_until_idle(page)
    assert_no_errors(page)
    expect(page.locator('[class*="st-key-tile_"]')).to_have_count(len(TILES[basis]))  # no tile of the other basis
    assert shown_tiles(page, TILES[basis]) == expected
    expect(basis_control(page).get_by_role("radio", name=LABELS[basis], exact=True)).to_be_checked()
    unit = LABELS[basis].lower()
    expect(page.locator(".st-key-svc_fr_trend .gtitle")).to_have_text(f"First response time by week ({unit})")
    n = watchlist(frames, basis)
    expect(watch_heading(page)).to_have_text(f"Act on these: {n:,} tickets unanswered on 30 Jun 2026")
    expect(grid_row_summary(page)).to_have_text(f"1 to {min(50, n)} of {n}")


# --- tests -----------------------------------------------------------------------------------------------

def test_business_hours_switch_the_tiles_and_the_watchlist_to_crms_business_hour_numbers(page, server, frames):
    calendar = expected_tiles(frames, Filters.create(Q2), TILES["calendar"])
    business = expected_tiles(frames, Filters.create(Q2), TILES["business"])
    assert calendar["first_response_p50_hours"].value != business["first_response_p50_business_hours"].value
    assert all(watchlist(frames, basis) > 0 for basis in BASES)

    page.goto(f"{server.url}/service?{urlencode(LINK)}")
    wait_for_tiles(page, len(TILES["calendar"]))
    assert_no_errors(page)
    assert_shows(page, frames, "calendar")
    assert query(page) == {**{k: [v] for k, v in LINK.items()}, "grain": ["week"], "basis": ["calendar"],
                           "split": ["team"]}

    basis_control(page).get_by_role("radio", name="Business hours", exact=True).click()
    wait_for_query(page, "params.get('basis') === 'business'")
    assert_shows(page, frames, "business")
    assert query(page) == {**{k: [v] for k, v in LINK.items()}, "grain": ["week"], "basis": ["business"],
                           "split": ["team"]}

    basis_control(page).get_by_role("radio", name="Calendar hours", exact=True).click()
    wait_for_query(page, "params.get('basis') === 'calendar'")
    assert_shows(page, frames, "calendar")
