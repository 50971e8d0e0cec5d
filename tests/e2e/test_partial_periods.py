"""Browser: on a store whose data ends on the 1st of a month, that month is drawn and told apart as partial.

Issue 12: with data through 1 November every monthly chart ended in a cliff (a 1-day month next to
whole ones) and the tiles coloured a change between a period running past the data and a whole one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from crm import demo
from crm.dataset import Frames, load_frames
from crm.filters import Filters, resolve_preset
from crm.format import format_value
from crm.metrics import definition
from crm.reports import build_report
from crm.scope import Scope
from crm.store import Store
from tests.e2e.harness import Server, run_streamlit
from tests.e2e.screen import chart_ticks, expect, open_cockpit

pytestmark = pytest.mark.browser

LAST_DAY = date(2026, 11, 1)
SLOW_MS = 90_000  # a busy machine renders a fresh session in up to a minute

_DELTA_COLOURS = """keys => keys.map(key => {
    const delta = document.querySelector(`.st-key-tile_${key} [data-testid="stMetricDelta"]`);
    return delta ? getComputedStyle(delta).color : null;
})"""

_LAST_BAR = """() => {
    const bars = [...document.querySelectorAll('.st-key-cockpit_revenue_chart .trace.bars')][0];
    const points = bars ? [...bars.querySelectorAll('.point path')] : [];
    if (points.length < 2) return null;
    const style = p => ({opacity: getComputedStyle(p).opacity, fill: p.style.fill});
    return [style(points[points.length - 2]), style(points[points.length - 1])];
}"""


@pytest.fixture(scope="module")
def first_of_month_store(tmp_path_factory) -> Store:
    """Demo data (seed 11, scale 0.25) through 1 November 2026: November holds 1 of its 30 days."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('first_of_month') / 'crm.db'}")
    store.replace_business_data(demo.generate(demo.DemoSpec(seed=11, scale=0.25, as_of=LAST_DAY)))
    return store


@pytest.fixture(scope="module")
def first_frames(first_of_month_store) -> Frames:
    frames = load_frames(first_of_month_store)
    assert frames.last_event_date() == LAST_DAY
    return frames


@pytest.fixture(scope="module")
def first_server(browser, first_of_month_store, tmp_path_factory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("streamlit_first_of_month") / "server.log"
    with run_streamlit(str(first_of_month_store.url), log) as running:
        yield running


def test_the_cockpit_marks_the_one_day_month_as_partial(page, first_server, first_frames):
    page.set_default_timeout(SLOW_MS)
    open_cockpit(page, f"{first_server.url}/")
    page.wait_for_function(_LAST_BAR)
    ticks = [t.label for t in chart_ticks(page, "cockpit_revenue_chart", "x")]
    assert ticks[-1] == "Nov 2026 · 1 of 30 days"  # Plotly may skip some labels of whole months, never this one
    assert not any("·" in t for t in ticks[:-1]) and ticks[-2].endswith("2026")
    october, november = page.evaluate(_LAST_BAR)
    assert float(october["opacity"]) == 1.0 and float(november["opacity"]) == pytest.approx(0.4)
    assert "url(" in november["fill"] and "url(" not in october["fill"]  # hatched: a pattern fill

    # the tile keeps November out of its sparkline and says what it holds so far
    filters = Filters.create(resolve_preset("last_90", LAST_DAY), preset="last_90", scope=Scope())
    november_revenue = build_report("kpi_trend", first_frames, filters)["revenue_won"][-1]
    shown = format_value(november_revenue, definition("revenue_won").unit)
    expect(page.locator(".st-key-tile_revenue_won").get_by_test_id("stCaptionContainer").filter(
        has_text="1 of 30 days")).to_have_text(f"timelapse Nov · 1 of 30 days: {shown}")


def test_a_period_running_past_the_data_gets_no_delta_colour(page, first_server):
    if date.today() <= LAST_DAY:
        pytest.skip("needs a clock after the data's last day (a period can then run past it)")
    page.set_default_timeout(SLOW_MS)
    keys = ["revenue_won", "win_rate", "nps", "sla_breach_rate"]
    open_cockpit(page, f"{first_server.url}/?from=2026-09-01&to=2026-10-31")
    whole = set(page.evaluate(_DELTA_COLOURS, keys))
    assert len(whole) >= 2 and None not in whole  # a whole period: up is green for some, red for others

    open_cockpit(page, f"{first_server.url}/?from=2026-10-02&to={date.today()}")
    running = page.evaluate(_DELTA_COLOURS, keys)
    assert None not in running and len(set(running)) == 1  # one neutral colour for every change
    assert not set(running) & whole
