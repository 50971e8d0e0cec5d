"""Browser: the Service page in real Chromium. The tiles show crm's calendar-hour times; the "Count time in"
control switches them (and the link, the charts and the SLA watchlist) to business hours with crm's numbers."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import pytest

from crm.filters import Filters, Period
from crm.format import tickets
from crm.metrics.service import Basis, sla_watchlist
from crm.narrowing import narrow
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    GRID_FRAME,
    assert_no_errors,
    expect,
    expected_tiles,
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
    """How many tickets the SLA watchlist holds (unanswered on 30 Jun, near their target or past it for at most
    7 days)."""
    report = build_report("sla_watchlist", frames, Filters.create(Q2, scope=Scope()), ReportOptions(basis=basis))
    assert report.height == sla_watchlist(narrow(frames, Filters.create(Q2, scope=Scope())), Q2, basis).height
    return report.height


# --- driving the page ------------------------------------------------------------------------------------

def watch_heading(page):
    """The bold part of the line above the SLA watchlist: "At risk now: N tickets unanswered on …"."""
    live = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')  # not a copy being replaced
    return live.get_by_test_id("stMarkdownContainer").locator("strong").filter(has_text="At risk now:")


def basis_control(page):
    return page.get_by_role("radiogroup", name="Count time in", exact=True)


def assert_shows(page, frames, basis: Basis) -> None:
    """Tiles, chart titles, SLA watchlist heading and grid show crm's numbers in ``basis`` hours."""
    expected = expected_tiles(frames, Filters.create(Q2, scope=Scope()), TILES[basis])
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
    expect(watch_heading(page)).to_have_text(f"At risk now: {tickets(n)} unanswered on 30 Jun 2026")
    if n:  # the watchlist's grid comes first; the long-stale one sits in the expander below it
        expect(page.frame_locator(GRID_FRAME).first.locator(".ag-paging-row-summary-panel")).to_have_text(
            f"1 to {min(50, n)} of {n}")
    else:
        expect(page.get_by_test_id("stAlertContentSuccess").get_by_test_id("stMarkdownContainer")).to_have_text(
            "No unanswered ticket is near its target or recently past it.")
    stale = build_report("sla_stale", frames, Filters.create(Q2, scope=Scope()), ReportOptions(basis=basis)).height
    expect(page.get_by_test_id("stExpander").filter(has_text="Long-stale").locator("summary")).to_contain_text(
        f"Long-stale: {tickets(stale, 'open ticket')} past their target for more than 7 days")


# --- tests -----------------------------------------------------------------------------------------------

def test_business_hours_switch_the_tiles_and_the_watchlist_to_crms_business_hour_numbers(page, server, frames):
    calendar = expected_tiles(frames, Filters.create(Q2, scope=Scope()), TILES["calendar"])
    business = expected_tiles(frames, Filters.create(Q2, scope=Scope()), TILES["business"])
    assert calendar["first_response_p50_hours"].value != business["first_response_p50_business_hours"].value
    assert watchlist(frames, "calendar") != watchlist(frames, "business")  # the heading changes with the basis

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
