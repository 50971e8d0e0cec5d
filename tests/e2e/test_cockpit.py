"""Browser: the cockpit on a running server shows every KPI tile with crm's numbers; links and the period picker work."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

import pytest

from crm.filters import Filters, Period, resolve_preset
from crm.metrics import tiles
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    anchor,
    assert_no_errors,
    expect,
    expected_tiles,
    open_cockpit,
    query,
    shown_tiles,
    shown_warnings,
)

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))


def test_cockpit_renders_every_tile_without_errors(page, server, frames):
    open_cockpit(page, f"{server.url}/")  # and no traceback, no error box
    expect(page.get_by_role("heading", name="Cockpit", level=1)).to_be_visible()
    shown = shown_tiles(page)
    assert len(tiles()) >= 10
    assert [t.label for t in shown.values()] == [m.label for m in tiles()]
    assert all(t.value not in ("", "—") for t in shown.values()), shown  # the demo defines every KPI over 90 days
    last_90 = Filters.create(resolve_preset("last_90", anchor(frames)), preset="last_90", scope=Scope())
    assert shown == expected_tiles(frames, last_90)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(3)
    assert query(page) == {"period": ["last_90"]}


def test_tiles_show_what_crm_computes_for_a_period_link(page, server, frames):
    open_cockpit(page, f"{server.url}/?from={Q2.start}&to={Q2.end}")
    expected = expected_tiles(frames, Filters.create(Q2, scope=Scope()))
    shown = shown_tiles(page)
    for key in ("revenue_won", "win_rate", "nps", "backlog"):
        assert expected[key].value != "—" and expected[key].delta is not None
        assert shown[key] == expected[key]
    assert shown == expected
    expect(page.get_by_test_id("stMain").get_by_test_id("stCaptionContainer").first).to_have_text(
        f"{Q2.label()} · compared with {Q2.previous().label()}"
    )
    assert query(page) == {"from": ["2026-04-01"], "to": ["2026-06-30"]}


def test_invalid_link_parameters_give_a_notice_and_the_default_view(page, server, frames):
    open_cockpit(page, f"{server.url}/?from=2026-13-45&region=Atlantis")
    notices = shown_warnings(page)
    assert len(notices) == 2, notices
    assert "2026-13-45" in notices[0] and "YYYY-MM-DD" in notices[0]
    assert "Atlantis" in notices[1]
    last_90 = Filters.create(resolve_preset("last_90", anchor(frames)), preset="last_90", scope=Scope())
    assert shown_tiles(page) == expected_tiles(frames, last_90)
    assert query(page) == {"period": ["last_90"]}  # the bad parts are dropped from the URL


def test_a_link_ending_in_the_future_is_cut_to_today_with_a_notice(page, server, frames):
    future = date.today() + timedelta(days=400)
    open_cockpit(page, f"{server.url}/?{urlencode({'from': Q2.start, 'to': future})}")
    today = date.today().isoformat()
    assert any(f"ran past {today}" in w for w in shown_warnings(page)), shown_warnings(page)
    assert query(page) == {"from": [Q2.start.isoformat()], "to": [today]}
    assert shown_tiles(page) == expected_tiles(frames, Filters.create(Period(Q2.start, date.today()), scope=Scope()))


def test_choosing_a_period_preset_updates_the_url_and_the_tiles(page, server, frames):
    day = anchor(frames)
    open_cockpit(page, f"{server.url}/")
    last_90 = expected_tiles(frames, Filters.create(resolve_preset("last_90", day), preset="last_90", scope=Scope()))
    assert shown_tiles(page) == last_90

    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("combobox", name="Period").click()
    page.get_by_role("option", name="Last 30 days", exact=True).click()
    expect(page).to_have_url(f"{server.url}/?period=last_30")  # written by the rerun, so the run has begun
    wait_until_idle(page)

    period = resolve_preset("last_30", day)
    last_30 = expected_tiles(frames, Filters.create(period, preset="last_30", scope=Scope()))
    assert last_30["revenue_won"] != last_90["revenue_won"]
    expect(page.locator(".st-key-tile_revenue_won").get_by_test_id("stMetricValue")).to_have_text(last_30["revenue_won"].value)
    assert shown_tiles(page) == last_30
    dates = sidebar.get_by_test_id("stDateInput").locator('input[type="date"]')
    expect(dates.first).to_have_value(period.start.isoformat())
    expect(dates.last).to_have_value(period.end.isoformat())
    assert_no_errors(page)
