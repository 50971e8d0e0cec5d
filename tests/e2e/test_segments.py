"""Browser: the Segments page in real Chromium. A box or a lasso drawn on the RFM scatter selects exactly the
customers inside it (worked out here from the store's RFM scores, not by crm.segments); the grid, its row
count and the CSV / Parquet exports hold them; a grid column filter narrows the export; the selection follows
to the Funnel page and the sidebar clears it."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

import numpy as np
import polars as pl
import pytest

from crm.auth import read_audit
from crm.dataset import Frames
from crm.export import read_manifest
from crm.filters import Filters, Period
from crm.format import format_money
from crm.metrics.rfm import rfm_scores
from crm.narrowing import narrow
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    GRID_FRAME,
    assert_no_errors,
    download,
    drag,
    expect,
    grid_row_summary,
    query,
    select_by_drag,
    wait_for_query,
)

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
LINK = {"from": "2026-04-01", "to": "2026-06-30"}
AS_OF = Q2.end
"""RFM is scored as of the period end."""
X, Y = "recency_days", "monetary"
"""The scatter's default axes: across, days since the last order; up, revenue in 365 days."""
PX_TOLERANCE = 3.0
"""How far (screen pixels) a shape's corner in the URL may sit from where the mouse drew it."""

BOXES = {"log": ((0.05, 0.25), (0.45, 0.75)), "linear": ((0.05, 0.55), (0.45, 0.97))}
"""The boxes the tests drag, per revenue scale, as fractions of the plot area (left, top) → (right, bottom):
customers who ordered lately with middling revenue, more than one grid page of them."""
LASSO = ((0.03, 0.30), (0.25, 0.10), (0.45, 0.50), (0.30, 0.90), (0.10, 0.97), (0.02, 0.70))
"""The lasso's corners, as fractions of the plot area: a hexagon over the busy left part (either scale)."""



SCATTER = '[class*="st-key-seg_scatter_"]:not([data-stale="true"]) [data-testid="stPlotlyChart"]'
"""The RFM scatter (its key changes with the selection); not the copy a run is replacing."""


# --- what the customers should be, worked out here ------------------------------------------------------

def scored(frames: Frames) -> pl.DataFrame:
    """Every customer's RFM as of the period end, over the whole store (no dimension filter)."""
    return rfm_scores(narrow(frames, Filters.create(Period(AS_OF, AS_OF), scope=Scope())), Period(AS_OF, AS_OF))


def inside_box(scores: pl.DataFrame, box: list[float]) -> pl.DataFrame:
    x0, x1, y0, y1 = box
    return scores.filter(pl.col(X).is_between(x0, x1) & pl.col(Y).is_between(y0, y1))


def inside_polygon(scores: pl.DataFrame, corners: list[list[float]], log_y: bool = False) -> pl.DataFrame:
    """The customers inside the polygon as it is drawn: with ``log_y`` its edges are straight on a log
    revenue axis (so the test runs on log10 revenue; revenue ≤ 0 is not on that axis). Even-odd rule: a
    point is inside when a ray to its right crosses the polygon's edges an odd number of times."""
    px, py = scores[X].cast(pl.Float64).to_numpy(), scores[Y].cast(pl.Float64).to_numpy()
    if log_y:
        py = np.log10(np.where(py > 0, py, np.nan))
        corners = [[x, math.log10(y)] for x, y in corners]
    inside = np.zeros(scores.height, dtype=bool)
    for (xi, yi), (xj, yj) in zip(corners, corners[1:] + corners[:1], strict=True):
        if yi == yj:
            continue
        straddles = (yi > py) != (yj > py)
        crossing_x = xi + (py - yi) * (xj - xi) / (yj - yi)
        inside ^= straddles & (px < crossing_x)  # NaN (not on a log axis) compares False: never inside
    return scores.filter(pl.Series(inside))


def selected_heading(chosen: pl.DataFrame) -> str:
    return (f"Selected customers · {chosen.height:,} · {format_money(float(chosen['monetary'].sum()))} "
            "revenue (365 days)")


def row_summary(rows: int) -> str:
    return f"1 to {min(50, rows)} of {rows}"


def ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["customer_id"].to_list())


# --- the scatter on screen -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlotArea:
    """The scatter's plot area on screen and the axis ranges it shows (Plotly gives a log axis's range in
    powers of ten): places points on screen."""

    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_log: bool
    y_log: bool

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """The screen point at fractions (fx across, fy down) of the plot area."""
        return self.left + fx * self.width, self.top + fy * self.height

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """Where the data point (x, y) is on screen."""
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        x, y = math.log10(x) if self.x_log else x, math.log10(y) if self.y_log else y
        return self.left + (x - x0) / (x1 - x0) * self.width, self.top + (y1 - y) / (y1 - y0) * self.height


_LAYOUT = """chart => {
    const plot = document.querySelector(chart + ' .js-plotly-plot');
    const layout = plot && plot._fullLayout;
    if (!layout || !plot.querySelector('.nsewdrag')) return null;
    return {title: layout.title.text, x: layout.xaxis.range, y: layout.yaxis.range,
            xtype: layout.xaxis.type, ytype: layout.yaxis.type};
}"""


def plot_area(page) -> PlotArea:
    """Scroll the scatter into view, wait until Plotly has drawn it, read its plot area and axis ranges."""
    page.locator(SCATTER).scroll_into_view_if_needed()
    layout = page.wait_for_function(_LAYOUT, arg=SCATTER).json_value()
    assert layout["title"].replace("<b>", "").startswith("Customers by days since the last order and revenue"), layout
    assert {layout["xtype"], layout["ytype"]} <= {"linear", "log"}, layout
    box = page.locator(SCATTER + " .nsewdrag").bounding_box()
    assert box is not None
    return PlotArea(box["x"], box["y"], box["width"], box["height"], tuple(layout["x"]), tuple(layout["y"]),
                    layout["xtype"] == "log", layout["ytype"] == "log")


def dragmode(page) -> str:
    return page.evaluate("chart => document.querySelector(chart + ' .js-plotly-plot')._fullLayout.dragmode", SCATTER)


def draw_polygon(page, corners: list[tuple[float, float]], steps: int = 6) -> None:
    """Press at the first corner, move along every edge (back to the start) in small steps, release."""
    page.mouse.move(*corners[0])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        for i in range(1, steps + 1):
            page.mouse.move(ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps)
    page.mouse.up()


def seg_rule(page) -> dict:
    """The segment rule in the URL (``seg=``, JSON)."""
    return json.loads(query(page)["seg"][0])


def distance_to_path(point: tuple[float, float], corners: list[tuple[float, float]]) -> float:
    """Pixels from ``point`` to the closed polyline through ``corners``."""
    p = np.asarray(point)
    best = float("inf")
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        a_, b_ = np.asarray(a), np.asarray(b)
        t = np.clip(np.dot(p - a_, b_ - a_) / np.dot(b_ - a_, b_ - a_), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(p - (a_ + t * (b_ - a_)))))
    return best


# --- driving the page ------------------------------------------------------------------------------------

def customers_heading(page):
    live = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')
    return live.get_by_role("heading", level=3).filter(has_text="customers ·")


def open_segments(page, server, everyone: pl.DataFrame, log: bool = True) -> PlotArea:
    """Open the Segments page on Q2 with revenue on a log scale (or not); wait for the grid heading, an idle
    script and the drawn scatter."""
    page.goto(f"{server.url}/segments?{urlencode(LINK)}")
    expect(customers_heading(page)).to_have_text(f"All scored customers · {everyone.height:,}")
    wait_until_idle(page)
    assert_no_errors(page)
    area = revenue_scale(page, log)
    assert dragmode(page) == "select"  # a drag selects (it does not zoom)
    return area


def revenue_scale(page, log: bool) -> PlotArea:
    """Draw revenue on a log scale (or not) with the page's switch; wait for the scatter drawn that way;
    its plot area."""
    area = plot_area(page)
    if area.y_log != log:
        switch = page.get_by_role("switch", name="Revenue on a log scale")
        switch.locator("xpath=ancestor::label[1]").click()  # the input itself is hidden under its label
        page.wait_for_function(
            "([chart, type]) => document.querySelector(chart + ' .js-plotly-plot')?._fullLayout?.yaxis.type === type",
            arg=[SCATTER, "log" if log else "linear"])
        wait_until_idle(page)
        expect(switch).to_be_checked(checked=log)
        area = plot_area(page)
    assert (area.x_log, area.y_log) == (False, log)
    return area


def drag_box(page, area: PlotArea) -> dict:
    """Drag the scale's box over the scatter; wait for the rule in the URL; check its box is where the mouse went."""
    (fl, ft), (fr, fb) = BOXES["log" if area.y_log else "linear"]
    start, end = area.at(fl, ft), area.at(fr, fb)
    select_by_drag(page, lambda: drag(page, start, end), "(params.get('seg') || '').includes('\"box\"')")
    rule = seg_rule(page)
    assert (rule["x"], rule["y"], rule["as_of"]) == (X, Y, AS_OF.isoformat()), rule
    # The box in the URL is where the mouse went: its corners, back on screen, are the drag's corners.
    x0, x1, y0, y1 = rule["box"]
    (left, bottom), (right, top) = area.to_pixels(x0, y0), area.to_pixels(x1, y1)
    shown = (left, top, right, bottom)
    assert all(abs(a - b) <= PX_TOLERANCE for a, b in zip(shown, (*start, *end), strict=True)), (shown, start, end)
    return rule


def assert_grid_lists(page, chosen: pl.DataFrame, export_rows: int | None = None) -> None:
    """Heading, grid row count and export labels show ``chosen`` (the export ``export_rows`` rows)."""
    expect(customers_heading(page)).to_have_text(selected_heading(chosen))
    wait_until_idle(page)
    assert_no_errors(page)
    rows = chosen.height if export_rows is None else export_rows
    expect(grid_row_summary(page)).to_have_text(row_summary(rows))
    for fmt in ("CSV", "Parquet"):
        expect(page.get_by_test_id("stDownloadButton").filter(has_text=f"Download {fmt}")).to_contain_text(
            f"Download {fmt} ({rows:,} rows)")


def exported_csv(page) -> tuple[str, pl.DataFrame]:
    name, data = download(page, "Download CSV")
    return name, pl.read_csv(io.BytesIO(data.removeprefix(b"\xef\xbb\xbf")), infer_schema=False)


def by_revenue(chosen: pl.DataFrame) -> list[str]:
    """Customer ids in the grid's (and the export's) default order: highest revenue first, then by id."""
    return chosen.sort([Y, "customer_id"], descending=[True, False])["customer_id"].to_list()


def sidebar_segment_notice(page):
    return page.get_by_test_id("stSidebar").get_by_test_id("stAlertContentInfo").filter(has_text="in the segment")


# --- tests -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("log", [False, True], ids=["linear-revenue", "log-revenue"])
def test_a_box_on_the_scatter_selects_exactly_the_customers_inside_it_and_exports_them(page, server, frames, log,
                                                                                       e2e_store):
    everyone = scored(frames)
    area = open_segments(page, server, everyone, log)
    expect(grid_row_summary(page)).to_have_text(row_summary(everyone.height))

    rule = drag_box(page, area)
    chosen = inside_box(everyone, rule["box"])
    assert 50 < chosen.height < everyone.height  # more than one grid page: the export is not just what is drawn
    assert_grid_lists(page, chosen)
    expect(sidebar_segment_notice(page)).to_contain_text(f"{chosen.height:,} customers in the segment")
    assert query(page)["x"] == [X] and query(page)["y"] == [Y]

    name, csv = exported_csv(page)
    assert name == "customers_2026-04-01_2026-06-30.csv"
    assert csv["customer_id"].to_list() == by_revenue(chosen)  # exactly those customers, in the grid's order
    assert csv["customer_id"].n_unique() == csv.height

    name, data = download(page, "Download Parquet")
    assert name == "customers_2026-04-01_2026-06-30.parquet"
    parquet = pl.read_parquet(io.BytesIO(data))
    assert set(parquet["customer_id"]) == ids(chosen) and parquet.height == chosen.height
    values = parquet.select("customer_id", X, Y).join(chosen.select("customer_id", X, Y), on="customer_id",
                                                       suffix="_expected")
    assert values[X].to_list() == values[f"{X}_expected"].to_list()
    assert values[Y].to_list() == pytest.approx(values[f"{Y}_expected"].to_list())
    manifest = read_manifest(data, "parquet")
    assert manifest["rows"] == chosen.height
    assert manifest["filters"].get("seg") == query(page)["seg"]
    assert_no_errors(page)
    # each file the server built is in the audit log, as the signed-in admin's, with its exact row count
    exports = read_audit(e2e_store).filter(pl.col("action") == "data.exported").tail(2)
    assert exports["actor"].to_list() == ["admin", "admin"]
    assert [(d["format"], d["rows"], d["file"]) for d in map(json.loads, exports["detail"])] == [
        ("csv", chosen.height, f"{name.removesuffix('.parquet')}.csv"), ("parquet", chosen.height, name)]


@pytest.mark.parametrize("log", [False, True], ids=["linear-revenue", "log-revenue"])
def test_a_lasso_on_the_scatter_selects_exactly_the_customers_inside_the_polygon(page, server, frames, log):
    everyone = scored(frames)
    area = open_segments(page, server, everyone, log)
    page.locator(SCATTER + " .nsewdrag").hover()  # the modebar shows on hover
    page.locator(SCATTER + ' .modebar-btn[data-title="Lasso Select"]').click()
    page.wait_for_function("chart => document.querySelector(chart + ' .js-plotly-plot')._fullLayout.dragmode === 'lasso'",
                           arg=SCATTER)

    drawn = [area.at(*corner) for corner in LASSO]
    draw_polygon(page, drawn)
    wait_for_query(page, "(params.get('seg') || '').includes('\"lasso\"')")
    rule = seg_rule(page)
    assert (rule["x"], rule["y"], rule["as_of"]) == (X, Y, AS_OF.isoformat()) and "box" not in rule, rule
    assert rule.get("log", []) == ([Y] if log else [])  # edges straight in log10 revenue where drawn so

    # The polygon in the URL is the one the mouse drew: every corner of it lies on the drawn path, and every
    # drawn corner has a corner of it nearby.
    corners = [area.to_pixels(x, y) for x, y in rule["lasso"]]
    assert max(distance_to_path(c, drawn) for c in corners) <= PX_TOLERANCE, (corners, drawn)
    assert all(min(np.hypot(c[0] - d[0], c[1] - d[1]) for c in corners) <= PX_TOLERANCE for d in drawn), (corners, drawn)

    chosen = inside_polygon(everyone, rule["lasso"], log_y=log)
    xs, ys = [c[0] for c in rule["lasso"]], [c[1] for c in rule["lasso"]]
    around = inside_box(everyone, [min(xs), max(xs), min(ys), max(ys)])
    assert 50 < chosen.height < around.height  # the polygon, not its bounding box, decides
    assert_grid_lists(page, chosen)

    _, csv = exported_csv(page)
    assert set(csv["customer_id"]) == ids(chosen) and csv.height == chosen.height
    assert_no_errors(page)


def test_the_selection_follows_to_the_funnel_page_and_the_sidebar_clears_it(page, server, frames):
    everyone = scored(frames)
    area = open_segments(page, server, everyone)
    rule = drag_box(page, area)
    chosen = inside_box(everyone, rule["box"])
    assert_grid_lists(page, chosen)
    seg = query(page)["seg"]

    every_deal = build_report("deals", frames, Filters.create(Q2, scope=Scope()), ReportOptions(mode="cohort", by="owner"))
    their_deals = every_deal.filter(pl.col("customer_id").is_in(list(ids(chosen))))
    assert 0 < their_deals.height < every_deal.height

    def funnel_heading(deals: pl.DataFrame) -> str:
        return f"All deals in this funnel · {deals.height:,} deals · {format_money(float(deals['amount'].sum()))}"

    deals_heading = page.get_by_role("heading", level=3).filter(has_text="deals")
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text="Funnel").click()
    expect(page.get_by_role("heading", name="Sales funnel", level=1)).to_be_visible()
    expect(deals_heading).to_have_text(funnel_heading(their_deals))
    wait_until_idle(page)
    assert_no_errors(page)
    assert query(page)["seg"] == seg
    expect(sidebar_segment_notice(page)).to_contain_text(f"{chosen.height:,} customers in the segment")
    expect(grid_row_summary(page)).to_have_text(row_summary(their_deals.height))
    _, deals_csv = exported_csv(page)
    assert set(deals_csv["opportunity_id"]) == set(their_deals["opportunity_id"])
    assert set(deals_csv["customer_id"]) <= ids(chosen)

    page.get_by_test_id("stSidebar").get_by_role("button", name="Clear customer selection").click()
    wait_for_query(page, "!params.has('seg')")
    wait_until_idle(page)  # until the rerun ends, the heading drawn before it is still on the page
    expect(deals_heading).to_have_text(funnel_heading(every_deal))
    assert_no_errors(page)
    expect(sidebar_segment_notice(page)).to_have_count(0)
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Clear customer selection")).to_have_count(0)
    assert {k: query(page).get(k) for k in LINK} == {k: [v] for k, v in LINK.items()}


def test_a_grid_column_filter_narrows_the_export_to_what_the_grid_shows(page, server, frames):
    everyone = scored(frames)
    area = open_segments(page, server, everyone)
    rule = drag_box(page, area)
    chosen = inside_box(everyone, rule["box"])
    assert_grid_lists(page, chosen)
    european = chosen.join(frames.customers.select("customer_id", "region"), on="customer_id", how="left").filter(
        pl.col("region") == "Europe")
    assert 0 < european.height < chosen.height

    page.frame_locator(GRID_FRAME).locator('.ag-floating-filter[col-id="region"] input').fill("Europe")
    expect(page.get_by_test_id("stDownloadButton").filter(has_text="Download CSV")).to_contain_text(
        f"Download CSV ({european.height:,} rows)")
    assert_grid_lists(page, chosen, export_rows=european.height)  # the heading still counts the whole selection

    _, csv = exported_csv(page)
    assert set(csv["customer_id"]) == ids(european) and csv.height == european.height
    assert set(csv["region"]) == {"Europe"}
    assert csv["customer_id"].to_list() == by_revenue(european)
