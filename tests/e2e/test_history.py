"""Browser: Back and Forward. Each action (page change, filter change, page setting) is one history
entry, and Back/Forward restore exactly the view that was shown: page, URL, sidebar and page controls."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import assert_no_errors, expect, query, wait_for_tiles

pytestmark = pytest.mark.browser

WAIT_MS = 90_000  # a busy machine takes tens of seconds per page switch


@dataclass(frozen=True)
class View:
    """What one history entry shows."""

    path: str
    heading: str
    query: dict[str, list[str]]
    period: str
    """The sidebar's Period choice."""
    controls: tuple[str, ...]
    """The chosen option of each segmented control on the page, top to bottom."""


def _q(period: str, **settings: str) -> dict[str, list[str]]:
    return {"period": [period], **{k: [v] for k, v in settings.items()}}


COCKPIT = View("/", "Cockpit", _q("last_90"), "Last 90 days", ())
FUNNEL = View("/funnel", "Sales funnel", _q("last_90", mode="cohort", by="owner"), "Last 90 days", ("Cohort", "Owner"))
SATISFACTION = View("/satisfaction", "Customer satisfaction", _q("last_90", grain="month", vs="previous", kind="csat"),
                    "Last 90 days", ("Month", "Previous period", "CSAT", "Product"))
SERVICE = View("/service", "Service", _q("last_90", grain="week", basis="calendar", split="team"), "Last 90 days",
               ("Week", "Calendar hours", "Team"))
SERVICE_30 = View("/service", "Service", _q("last_30", grain="week", basis="calendar", split="team"), "Last 30 days",
                  ("Week", "Calendar hours", "Team"))
SERVICE_30_MONTHS = View("/service", "Service", _q("last_30", grain="month", basis="calendar", split="team"),
                         "Last 30 days", ("Month", "Calendar hours", "Team"))


PUSHES = "() => window.__history_calls.filter(call => call.startsWith('pushState')).length"


def pushes(page) -> int:
    """The history entries the app has made in this page so far (its pushState calls, RECORD_HISTORY_CALLS).
    Not ``history.length``: that also counts the entries of embedded frames (the grids are iframes), which
    come and go with their page, and the browser's own first entry; CI saw it one short once while every
    action had pushed its entry."""
    return int(page.evaluate(PUSHES))


def assert_shows(page, view: View) -> None:
    """Wait until ``view`` is drawn and the run is over, then check page, URL, sidebar and controls."""
    main = page.get_by_test_id("stMain")
    expect(page.get_by_role("heading", level=1)).to_have_text(view.heading, timeout=WAIT_MS)
    period = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Period")
    expect(period).to_have_value(view.period, timeout=WAIT_MS)
    chosen = main.get_by_role("radio", checked=True)
    expect(chosen).to_have_text(list(view.controls), timeout=WAIT_MS)
    # a clicked control shows checked at once, before its run starts; the URL is written by that run, so wait for
    # it (the view's own state, never a sleep), then for the run to end, then check everything together
    try:
        page.wait_for_url(lambda url: (urlsplit(url).path, parse_qs(urlsplit(url).query)) == (view.path, view.query),
                          timeout=WAIT_MS)
    except PlaywrightTimeout:
        pass  # the assertion below names the difference
    wait_until_idle(page)
    assert_no_errors(page)
    assert (urlsplit(page.url).path, query(page)) == (view.path, view.query)
    expect(period).to_have_value(view.period)
    expect(chosen).to_have_text(list(view.controls))


def go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text=title).click()


def choose_period(page, label: str) -> None:
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Period").click()
    page.get_by_role("option", name=label, exact=True).click()


RECORD_HISTORY_CALLS = """(() => {
    window.__history_calls = [];
    for (const name of ['pushState', 'replaceState']) {
        const original = history[name].bind(history);
        history[name] = (...args) => {
            window.__history_calls.push(`${name} ${args[2]} (script ${document.querySelector('[data-testid="stApp"]')
                ?.getAttribute('data-test-script-state')})`);
            return original(...args);
        };
    }
})()"""
"""Records the app's pushState/replaceState calls in the page (``window.__history_calls``)."""
HISTORY_CALLS = "() => ({length: history.length, calls: window.__history_calls})"


def test_each_action_is_one_entry_and_back_and_forward_restore_each_view(page, server):
    page.set_default_timeout(WAIT_MS)
    page.add_init_script(RECORD_HISTORY_CALLS)
    page.goto(f"{server.url}/")
    wait_for_tiles(page)
    assert_shows(page, COCKPIT)
    start = pushes(page)

    actions = (
        (lambda: go_to(page, "Funnel"), FUNNEL),
        (lambda: go_to(page, "Satisfaction"), SATISFACTION),
        (lambda: go_to(page, "Service"), SERVICE),
        (lambda: choose_period(page, "Last 30 days"), SERVICE_30),  # a global filter
        (lambda: page.get_by_role("radiogroup", name="Buckets").get_by_role("radio", name="Month").click(),
         SERVICE_30_MONTHS),  # a page setting
    )
    views = [COCKPIT]
    for number, (act, view) in enumerate(actions, start=1):
        act()
        assert_shows(page, view)
        # the entry may be pushed as the run ends: wait for one more (never a sleep), then check it is one
        try:
            page.wait_for_function(f"n => ({PUSHES})() >= n", arg=start + number)
        except PlaywrightTimeout:
            raise AssertionError(f"action {number} ({view.path}) made no history entry: "
                                 f"{page.evaluate(HISTORY_CALLS)}") from None
        wait_until_idle(page)
        assert pushes(page) == start + number, \
            f"action {number} ({view.path}) made other than one entry: {page.evaluate(HISTORY_CALLS)}"
        views.append(view)

    for view in reversed(views[:-1]):  # Back 5 times: each press shows the view before, down to the cockpit
        page.go_back()
        assert_shows(page, view)
    for view in views[1:]:  # Forward 5 times
        page.go_forward()
        assert_shows(page, view)
    assert pushes(page) == start + len(actions), page.evaluate(HISTORY_CALLS)  # restoring a view wrote no entry


def test_a_link_to_another_page_carries_the_filters_and_only_that_pages_settings(page, server):
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server.url}/funnel?period=last_30&mode=strict&by=team")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sales funnel", timeout=WAIT_MS)
    wait_until_idle(page)
    go_to(page, "Cockpit")
    wait_for_tiles(page)
    assert_shows(page, View("/", "Cockpit", _q("last_30"), "Last 30 days", ()))
    go_to(page, "Segments")
    assert_shows(page, View("/segments", "RFM segments", _q("last_30", by="segment", x="recency_days", y="monetary"),
                            "Last 30 days", ("RFM segment", "Days since the last order", "Revenue in 365 days")))
    assert not [w for w in page.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()
                if "link parameter" in w]
