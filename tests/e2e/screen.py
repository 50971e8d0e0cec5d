"""Reading the app in the browser, and what crm says it should show."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from crm.dataset import Frames
from crm.filters import Filters
from crm.format import format_delta, format_value
from crm.metrics import compute_with_previous, definition, tiles
from crm.narrowing import narrow

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect
except ImportError:  # the browser fixture reports it: a skip, or a failure where CRM_REQUIRE_BROWSER=1
    expect = None  # type: ignore[assignment]
    PlaywrightTimeoutError = TimeoutError  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from playwright.sync_api import FrameLocator, Locator, Page


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
        && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]') !== null
        && !['computing…', 'being checked in the background'].some(words => document.body.innerText.includes(words)))"""
"""Every tile drawn, no run going, and the cockpit's background work (the churn fit, the quality check) done:
the cockpit redraws itself when either finishes, and an element found before that redraw is gone after it."""


def wait_for_tiles(page: Page, count: int | None = None) -> None:
    """Wait for all the tiles (``count`` of them; the cockpit's by default: the registry's and the at-risk
    revenue tile), an idle script and the cockpit's background work done, or for a traceback. The idle
    state alone is not enough: a new session's tiles are drawn up to seconds after the run has ended (the
    sparkline code loads lazily)."""
    page.wait_for_function(_TILES_DRAWN, arg=len(tiles()) + 1 if count is None else count)


_READ_TILES = """keys => Object.fromEntries(keys.map(key => {
    const tile = document.querySelector(`.st-key-tile_${key}`);
    const text = id => tile?.querySelector(`[data-testid="${id}"]`)?.innerText.trim() ?? null;
    return [key, [text("stMetricLabel"), text("stMetricValue"), text("stMetricDelta")]];
}))"""


def shown_tiles(page: Page, keys: Sequence[str] | None = None) -> dict[str, Tile]:
    """The tiles on screen by metric key (each tile is a container keyed ``tile_<metric key>``), read at once:
    the cockpit's tiles, or those of ``keys``."""
    read = page.evaluate(_READ_TILES, [m.key for m in tiles()] if keys is None else list(keys))
    return {key: Tile(*texts) for key, texts in read.items()}


def expected_tiles(frames: Frames, filters: Filters, keys: Sequence[str] | None = None) -> dict[str, Tile]:
    """The tiles crm computes for ``filters`` (the cockpit's, or those of ``keys``), formatted as the tile
    formats them."""
    current, previous = compute_with_previous(narrow(frames, filters), filters.period)
    return {
        m.key: Tile(
            label=m.label,
            value=format_value(current[m.key], m.unit),
            delta=format_delta(current[m.key], previous[m.key], m.unit) if filters.compare else None,
        )
        for m in (tiles() if keys is None else [definition(key) for key in keys])
    }


def tile_value(page: Page, key: str) -> Locator:
    """The value shown on the tile of metric ``key`` (a locator, for ``expect``)."""
    return page.locator(f".st-key-tile_{key}").get_by_test_id("stMetricValue")


def anchor(frames: Frames) -> date:
    """The day relative periods end on, as the app picks it."""
    return min(frames.last_event_date() or date.today(), date.today())


def query(page: Page) -> dict[str, list[str]]:
    """The page URL's query string."""
    return parse_qs(urlsplit(page.url).query)


def wait_for_query(page: Page, condition: str) -> None:
    """Wait until ``condition`` (JS, over ``params``: the URL's URLSearchParams) holds."""
    page.wait_for_function(f"() => {{ const params = new URLSearchParams(location.search); return {condition}; }}")


RUN_STARTED_MS = 15_000
"""How long a drag the chart took may take to start a run, on a busy machine."""

_RAN_OR_MET = """condition => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (app?.getAttribute('data-test-script-state') !== 'notRunning') return true;
    return new Function('params', `return ${condition};`)(new URLSearchParams(location.search));
}"""


def select_by_drag(page: Page, drag_once: Callable[[], None], condition: str, attempts: int = 3) -> None:
    """Drag on a chart (``drag_once`` reads where, then drags) until the URL meets ``condition`` (JS, over
    ``params``). A chart redrawn under the mouse (Plotly replaces its drag layer when Streamlit resizes it)
    drops the drag: no run starts and the URL stays as it was. Then drag again, ``attempts`` times in all;
    a second drag over the same place makes the same selection."""
    for attempt in range(1, attempts + 1):
        drag_once()
        try:
            page.wait_for_function(_RAN_OR_MET, arg=condition, timeout=RUN_STARTED_MS)
            break
        except PlaywrightTimeoutError:
            if attempt == attempts:
                raise
    wait_for_query(page, condition)


def assert_no_errors(page: Page) -> None:
    """No traceback and no error box on the page now (call it once the run has finished)."""
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def shown_warnings(page: Page) -> list[str]:
    """The texts of the visible warning notices."""
    return [w.inner_text() for w in page.locator('[data-testid="stAlertContentWarning"]').all() if w.is_visible()]


# --- Plotly charts, AG Grid, downloads ---------------------------------------------------------------

_CHART = '.st-key-{key}:not([data-stale="true"]) [data-testid="stPlotlyChart"]'
"""The Plotly chart keyed ``key``; not the one a run is replacing (stale, kept on screen until the run ends)."""

_AXIS_TICKS = """([selector, axis]) => {
    const chart = document.querySelector(selector);
    if (!chart || !chart.querySelector('.nsewdrag')) return null;
    const ticks = [...chart.querySelectorAll(`.${axis}tick text`)].map(t => {
        const r = t.getBoundingClientRect();
        const lines = [...t.querySelectorAll('tspan.line')].map(s => s.textContent.trim());
        return {lines: lines.length ? lines : [t.textContent.trim()], x: r.x + r.width / 2, y: r.y + r.height / 2};
    });
    return ticks.length ? ticks : null;
}"""


@dataclass(frozen=True)
class AxisTick:
    """One tick label of a Plotly axis: its text lines (``<br>`` splits them) and its centre in the viewport."""

    lines: tuple[str, ...]
    x: float
    y: float

    @property
    def label(self) -> str:
        """The first line (a category's name when the label adds numbers below it)."""
        return self.lines[0]


def chart_ticks(page: Page, key: str, axis: str) -> list[AxisTick]:
    """The tick labels of axis ``x`` or ``y`` of the Plotly chart keyed ``key``, top to bottom, left to right.
    Scrolls the chart into view first and waits until Plotly has drawn it (its code loads lazily). A chart
    being replaced (``data-stale``, while a run redraws the page) is skipped."""
    chart = _CHART.format(key=key)
    page.locator(chart).scroll_into_view_if_needed()
    read = page.wait_for_function(_AXIS_TICKS, arg=[chart, axis]).json_value()
    ticks = [AxisTick(tuple(t["lines"]), t["x"], t["y"]) for t in read]
    return sorted(ticks, key=lambda t: (t.y, t.x))


def chart_bar_texts(page: Page, key: str) -> list[list[str]]:
    """The texts written on the bars of the Plotly chart keyed ``key``: one list per bar trace, in data order."""
    return page.evaluate(
        """chart => [...document.querySelectorAll(`${chart} .trace.bars`)]
            .map(trace => [...trace.querySelectorAll('.point text')].map(t => t.textContent.trim()))""",
        _CHART.format(key=key),
    )


def chart_plot_area(page: Page, key: str) -> Locator:
    """The drag target over the plot area of the Plotly chart keyed ``key`` (one subplot)."""
    return page.locator(_CHART.format(key=key) + " .nsewdrag")


def drag(page: Page, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    """Press the mouse at ``start``, move to ``end`` in ``steps`` steps, release (a Plotly box select)."""
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
    page.mouse.up()


GRID_FRAME = 'iframe[data-testid="stCustomComponentV1"]'


def grid_frame(page: Page, key: str | None = None) -> FrameLocator:
    """The AG Grid with widget key ``key``; without a key, the page's first grid (the explorer grid: a page
    may hold more, e.g. the funnel's stuck deals in a later tab)."""
    return page.frame_locator(f".st-key-{key} {GRID_FRAME}" if key else GRID_FRAME).first


def grid_row_summary(page: Page, key: str | None = None) -> Locator:
    """AG Grid's pagination summary, e.g. ``1 to 50 of 335`` (a locator, for ``expect``)."""
    return grid_frame(page, key).locator(".ag-paging-row-summary-panel")


def grid_cells(page: Page, column: str, key: str | None = None) -> Locator:
    """One column's cells in the grid rows drawn now (AG Grid draws only the rows near the view)."""
    return grid_frame(page, key).locator(f'.ag-center-cols-container .ag-row [col-id="{column}"]')


def grid_column(page: Page, column: str) -> list[str]:
    """The texts of one column in the grid rows drawn now."""
    return [text.strip() for text in grid_cells(page, column).all_inner_texts()]


def download(page: Page, label: str) -> tuple[str, bytes]:
    """Click the download button whose label starts with ``label``; the file's suggested name and bytes."""
    button = page.get_by_test_id("stDownloadButton").filter(has_text=label).get_by_role("button")
    with page.expect_download() as event:
        button.click()
    file = event.value
    path = file.path()
    with open(path, "rb") as handle:
        return file.suggested_filename, handle.read()


# --- Altair (Vega-Lite) charts, st.dataframe ---------------------------------------------------------

_VEGA = '.st-key-{key}:not([data-stale="true"]) [data-testid="stVegaLiteChart"]'
"""The Altair chart keyed ``key``; not the one a run is replacing."""

_VEGA_POINTS = """chart => {
    const root = document.querySelector(chart);
    const points = root ? [...root.querySelectorAll('svg.marks path[aria-roledescription="point"]')] : [];
    return points.length ? points.map(p => {
        const r = p.getBoundingClientRect();
        return {label: p.getAttribute('aria-label') ?? '', x: r.x + r.width / 2, y: r.y + r.height / 2};
    }) : null;
}"""


@dataclass(frozen=True)
class ChartPoint:
    """One point mark of a Vega chart: its accessible label (``field: value; field: value``) and its centre."""

    label: str
    x: float
    y: float

    def field(self, name: str) -> str:
        """The value the label gives for ``name`` (e.g. ``bucket`` -> ``Feb 2026``)."""
        fields = dict(part.split(": ", 1) for part in self.label.split("; ") if ": " in part)
        return fields[name]


def vega_points(page: Page, key: str) -> list[ChartPoint]:
    """The point marks of the Altair chart keyed ``key``, left to right. Scrolls the chart into view and
    waits until Vega has drawn points (it renders after the run)."""
    chart = _VEGA.format(key=key)
    page.locator(chart).scroll_into_view_if_needed()
    read = page.wait_for_function(_VEGA_POINTS, arg=chart).json_value()
    return sorted((ChartPoint(p["label"], p["x"], p["y"]) for p in read), key=lambda p: (p.x, p.y))


def vega_point_marks(page: Page, key: str) -> Locator:
    """The point marks of the Altair chart keyed ``key`` (a locator, for ``expect``)."""
    return page.locator(_VEGA.format(key=key) + ' svg.marks path[aria-roledescription="point"]')


def vega_plot_area(page: Page, key: str) -> Locator:
    """The plot area of the Altair chart keyed ``key``: where an interval brush is dragged."""
    return page.locator(_VEGA.format(key=key) + " svg.marks path.background").first


_DATAFRAME = '.st-key-{key}:not([data-stale="true"]) [data-testid="stDataFrame"]'
DATAFRAME_ROW_HEIGHT = 35
"""Streamlit's glide-data-grid rows (and its header row) are 35 px high."""


def dataframe_cells(page: Page, key: str, column: int) -> Locator:
    """The cells of data column ``column`` (1 = the first column after the row markers) of the
    st.dataframe keyed ``key`` (a widget: it has ``on_select``), in the rows the grid draws now. The grid
    paints a canvas; glide-data-grid keeps an accessible table of the drawn rows inside it."""
    return page.locator(_DATAFRAME.format(key=key)).locator(
        f'[data-testid="data-grid-canvas"] tbody td[aria-colindex="{column}"]')


def dataframe_selected_cells(page: Page, key: str, column: int) -> Locator:
    """Like ``dataframe_cells``, for the selected rows only."""
    return page.locator(_DATAFRAME.format(key=key)).locator(
        f'[data-testid="data-grid-canvas"] tbody tr[aria-selected="true"] td[aria-colindex="{column}"]')


def click_dataframe_row_marker(page: Page, key: str, row: int = 0) -> None:
    """Click the row-selection marker (the checkbox column at the left) of data row ``row`` (0 = first) of
    the st.dataframe keyed ``key``. The canvas is under glide's scroller, so the mouse clicks the spot."""
    canvas = page.locator(_DATAFRAME.format(key=key)).get_by_test_id("data-grid-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 15, box["y"] + DATAFRAME_ROW_HEIGHT * (row + 1.5))
