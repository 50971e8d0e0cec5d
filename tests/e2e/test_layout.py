"""Layouts that fit (issue 12): at 1024×768 (sidebar open) and 1440×900 no KPI value, tile label, link or button
label is cut, no option of a choice is out of view, and the main grids start with the columns that matter.

Streamlit clips text with CSS (``text-overflow: ellipsis``), so a cut text is an element whose ``scrollWidth``
exceeds its ``clientWidth``; a choice hides options when they sit outside the visible box of their group.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crm.grid import DEAL_COLUMNS_FIRST
from crm.ui.pages import PAGES
from tests.e2e.harness import session_cookie, wait_until_idle

pytestmark = pytest.mark.browser

TIMEOUT_MS = 90_000
VIEWPORTS = {"1024x768": {"width": 1024, "height": 768}, "1440x900": {"width": 1440, "height": 900}}
PATHS = ["" if spec.default else Path(spec.path).stem for spec in PAGES]

_CUT = """() => {
  const textual = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stMetricDelta"],'
    + ' [data-testid="stMetricDeltaDescription"], [data-testid="stPageLink-NavLink"], button, .stMarkdownEllipsis,'
    + ' [data-testid="stWidgetLabel"], [data-testid="stButtonGroup"] button, [data-testid="stRadio"] label';
  const main = document.querySelector('[data-testid="stMain"]');
  const cut = [];
  for (const el of main.querySelectorAll(textual)) {
    if (!el.checkVisibility() || el.closest('.modebar')) continue;  // collapsed expanders; Plotly's icon bar
    for (const part of [el, ...el.querySelectorAll('*')]) {
      if (part.clientWidth > 0 && part.scrollWidth > part.clientWidth + 1) {
        cut.push(`${el.dataset.testid || el.tagName}: "${el.innerText.replace(/\\s+/g, ' ').trim()}" `
                 + `(${part.scrollWidth} px in ${part.clientWidth})`);
        break;
      }
    }
  }
  return cut;
}"""

_HIDDEN_OPTIONS = """() => {
  const hidden = [];
  const groups = document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stButtonGroup"], [data-testid="stMain"] [data-testid="stRadio"] [role="radiogroup"]');
  for (const group of groups) {
    if (!group.checkVisibility()) continue;
    const box = group.getBoundingClientRect();
    if (group.scrollWidth > group.clientWidth + 1) hidden.push(`a group scrolls: ${group.innerText.replace(/\\s+/g, ' ')}`);
    for (const option of group.querySelectorAll('button, label')) {
      const r = option.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.right > window.innerWidth) {
        hidden.push(`"${option.innerText.trim()}" at ${Math.round(r.left)}–${Math.round(r.right)} px, its group `
                    + `${Math.round(box.left)}–${Math.round(box.right)} px`);
      }
    }
  }
  return hidden;
}"""

_GRID_COLUMNS = """(viewport) => {
  const right = viewport.getBoundingClientRect().right;
  const seen = new Set();
  return [...document.querySelectorAll('.ag-header-row-column .ag-header-cell')]
    .map(cell => [cell.getAttribute('col-id'), cell.getBoundingClientRect().left < right])
    .filter(([id]) => id && !id.startsWith('ag-Grid-') && !seen.has(id) && seen.add(id));
}"""


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def sized_page(request, browser):
    """A page of the given size in a fresh browser context, signed in as the demo admin (every page)."""
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    context.add_cookies([session_cookie()])
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


TILE_PAGES = ("", "service", "satisfaction", "customers", "segments", "quality")
"""Pages that show metric tiles: wait for them (the title comes first), and the check must see them."""


def open_page(page, base: str, path: str) -> None:
    """Open a page and wait until its script has run and the web fonts are in (they change text widths)."""
    page.goto(f"{base}/{path}")
    page.locator('[data-testid="stMain"] h1').first.wait_for()
    if path in TILE_PAGES:
        page.locator('[data-testid="stMain"] [data-testid="stMetricValue"]').nth(1).wait_for()
    wait_until_idle(page)
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stMain\"] [data-stale=\"true\"]').length === 0")
    # the app's CSS is in (a tile grid is a CSS grid, not Streamlit's row that squeezes every tile into one line)
    page.wait_for_function("() => [...document.querySelectorAll('[class*=\"st-key-tilegrid_\"]')]"
                           ".every(e => getComputedStyle(e).display === 'grid')")


@pytest.mark.parametrize("path", PATHS, ids=[p or "cockpit" for p in PATHS])
def test_nothing_is_cut_and_every_option_is_in_view(server, sized_page, path):
    open_page(sized_page, server.url, path)
    assert sized_page.locator('[data-testid="stException"]').count() == 0
    if path in TILE_PAGES:
        assert sized_page.locator('[data-testid="stMain"] [data-testid="stMetricValue"]').count() >= 2
    assert sized_page.evaluate(_CUT) == []
    assert sized_page.evaluate(_HIDDEN_OPTIONS) == []


def test_segments_axis_choices_wrap_into_view(server, sized_page):
    """The scatter's axis choice once hid "R/F/M score" behind an invisible scroll, even at 1440 px."""
    open_page(sized_page, server.url, "segments")
    across = sized_page.locator('[data-testid="stButtonGroup"]').filter(has_text="R score").first
    box = across.bounding_box()
    for option in ("Days since the last order", "R score", "F score", "M score"):
        shown = across.locator("button", has_text=option).first.bounding_box()
        assert box["x"] - 1 <= shown["x"] and shown["x"] + shown["width"] <= box["x"] + box["width"] + 1, option
    assert sized_page.evaluate(_HIDDEN_OPTIONS) == []


def _grid_columns(page, key: str) -> list[tuple[str, bool]]:
    """(column id, starts inside the grid's visible width) of the AG Grid under ``key``, in display order."""
    frame = page.frame_locator(f'.st-key-{key} iframe[data-testid="stCustomComponentV1"]')
    frame.locator(".ag-center-cols-container .ag-row").first.wait_for()
    viewport = frame.locator(".ag-body-viewport").first
    return [tuple(c) for c in viewport.evaluate(_GRID_COLUMNS)]


def test_deals_grid_starts_with_what_a_manager_reads(server, sized_page):
    open_page(sized_page, server.url, "funnel")
    columns = _grid_columns(sized_page, "fun_grid")
    ids = [c for c, _ in columns]
    assert ids[:5] == list(DEAL_COLUMNS_FIRST)  # AG Grid draws only the columns in view: the ids, last, are not
    assert all(visible for _, visible in columns[:5]), columns  # all five begin inside the grid, also at 1024 px


def test_watchlist_shows_the_waiting_time(server, sized_page):
    open_page(sized_page, server.url, "service")
    if sized_page.locator(".st-key-svc_watch").count() == 0:
        pytest.skip("no ticket at risk in this store's default view")
    columns = dict(_grid_columns(sized_page, "svc_watch"))
    assert columns.get("waited") is True, columns
