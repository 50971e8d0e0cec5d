"""Reading the app in the browser, and what crm says it should show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from crm.dataset import Frames
from crm.filters import Filters
from crm.format import format_delta, format_value
from crm.metrics import compute_with_previous, tiles

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture reports it: a skip, or a failure where CRM_REQUIRE_BROWSER=1
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass(frozen=True)
class Tile:
    """What one KPI tile shows: label, value, and the change (None when no change is shown)."""

    label: str
    value: str
    delta: str | None


def open_cockpit(page: Page, url: str) -> None:
    """Load ``url``; wait until every KPI tile is drawn and the script run has finished; no error on the page."""
    page.goto(url)
    wait_for_tiles(page)
    assert_no_errors(page)


_TILES_DRAWN = """n => document.querySelector('[data-testid="stException"]') !== null
    || (document.querySelectorAll('[data-testid="stMetric"]').length === n
        && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]') !== null)"""


def wait_for_tiles(page: Page) -> None:
    """Wait for all the tiles and an idle script, or for a traceback. The idle state alone is not enough:
    a new session's tiles are drawn up to seconds after the run has ended (the sparkline code loads lazily)."""
    page.wait_for_function(_TILES_DRAWN, arg=len(tiles()))


_READ_TILES = """keys => Object.fromEntries(keys.map(key => {
    const tile = document.querySelector(`.st-key-tile_${key}`);
    const text = id => tile?.querySelector(`[data-testid="${id}"]`)?.innerText.trim() ?? null;
    return [key, [text("stMetricLabel"), text("stMetricValue"), text("stMetricDelta")]];
}))"""


def shown_tiles(page: Page) -> dict[str, Tile]:
    """The tiles on screen by metric key (each tile is a container keyed ``tile_<metric key>``), read at once."""
    read = page.evaluate(_READ_TILES, [m.key for m in tiles()])
    return {key: Tile(*texts) for key, texts in read.items()}


def expected_tiles(frames: Frames, filters: Filters) -> dict[str, Tile]:
    """The tiles crm computes for ``filters``, formatted as the tile formats them."""
    current, previous = compute_with_previous(frames.narrow(filters), filters.period)
    return {
        m.key: Tile(
            label=m.label,
            value=format_value(current[m.key], m.unit),
            delta=format_delta(current[m.key], previous[m.key], m.unit) if filters.compare else None,
        )
        for m in tiles()
    }


def anchor(frames: Frames) -> date:
    """The day relative periods end on, as the app picks it."""
    return min(frames.last_event_date() or date.today(), date.today())


def query(page: Page) -> dict[str, list[str]]:
    """The page URL's query string."""
    return parse_qs(urlsplit(page.url).query)


def assert_no_errors(page: Page) -> None:
    """No traceback and no error box on the page now (call it once the run has finished)."""
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def shown_warnings(page: Page) -> list[str]:
    """The texts of the visible warning notices."""
    return [w.inner_text() for w in page.locator('[data-testid="stAlertContentWarning"]').all() if w.is_visible()]
