"""Browser: the Funnel page in real Chromium. A box dragged over a funnel bar or a breakdown cell filters the
deals grid and the link; the exports hold exactly those deals; the sidebar clears the selection; the mode
control redraws the funnel with crm's numbers."""

from __future__ import annotations

import io
import itertools
from datetime import date
from urllib.parse import urlencode

import polars as pl
import pytest

from crm.filters import Filters, Period
from crm.format import CURRENCY_SYMBOL, format_money
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import (
    assert_no_errors,
    chart_bar_texts,
    chart_plot_area,
    chart_ticks,
    download,
    drag,
    expect,
    grid_cells,
    grid_column,
    grid_row_summary,
    query,
    select_by_drag,
    wait_for_query,
)

pytestmark = pytest.mark.browser

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
LINK = {"from": "2026-04-01", "to": "2026-06-30"}
STAGE = "proposal"
"""The funnel bar the tests drag over (step 3 of the demo pipeline)."""


# --- what crm says ---------------------------------------------------------------------------------------

def funnel_steps(frames, mode: str = "cohort", by: str | None = None) -> pl.DataFrame:
    return build_report("funnel", frames, Filters.create(Q2, scope=Scope()), ReportOptions(mode=mode, by=by))


def step_of(frames, stage: str) -> int:
    return funnel_steps(frames).filter(pl.col("stage") == stage)["step"].item()


def deals_for(frames, selection=(), mode: str = "cohort") -> pl.DataFrame:
    """The deals crm lists for a chart selection, as the page asks for them (breakdown by owner)."""
    filters = Filters.create(Q2, selection=selection, scope=Scope())
    return build_report("deals", frames, filters, ReportOptions(mode=mode, by="owner"))


def heading(deals: pl.DataFrame, selected: bool) -> str:
    title = "Deals behind the selection" if selected else "All deals in this funnel"
    return f"{title} · {deals.height:,} deals · {format_money(float(deals['amount'].sum()))}"


def row_summary(deals: pl.DataFrame) -> str:
    return f"1 to {min(50, deals.height)} of {deals.height}"


TITLES = {
    "strict": "Strict funnel (in-order paths only)",
    "snapshot": "Open pipeline by stage at the period end",
    "cohort": "Cohort funnel (deals created in the period)",
}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


# --- driving the page ------------------------------------------------------------------------------------

def deals_heading(page):
    """The deals grid's heading; not the one a run is replacing (stale, kept on screen until the run ends)."""
    live = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')
    return live.get_by_role("heading", level=3).filter(has_text="deals")


def open_funnel(page, server, expected: pl.DataFrame) -> None:
    """Open the Funnel page on Q2; wait for the deals heading (``expected``), an idle script and the chart."""
    page.goto(f"{server.url}/funnel?{urlencode(LINK)}")
    expect(deals_heading(page)).to_have_text(heading(expected, selected=False))
    wait_until_idle(page)
    chart_ticks(page, "fun_chart", "y")  # Plotly is drawn (it loads lazily, after the run)
    assert_no_errors(page)


def smallest_gap(positions) -> float:
    """The distance between the two closest tick labels: one category's band."""
    return min(b - a for a, b in itertools.pairwise(sorted(positions)))


def drag_over_funnel_bar(page, stage: str, until: str) -> None:
    """Drag a box across the whole plot width, over the middle of ``stage``'s row only, until the URL meets
    ``until``."""
    select_by_drag(page, lambda: _drag_over_funnel_bar(page, stage), until)


def _drag_over_funnel_bar(page, stage: str) -> None:
    ticks = {t.label: t for t in chart_ticks(page, "fun_chart", "y")}
    band = smallest_gap([t.y for t in ticks.values()])
    plot = chart_plot_area(page, "fun_chart").bounding_box()
    assert plot is not None
    y = ticks[stage].y
    drag(page, (plot["x"] + 3, y - 0.3 * band), (plot["x"] + plot["width"] - 3, y + 0.3 * band))


def drag_over_heatmap_cell(page, row: str, column: str, until: str) -> None:
    """Drag a small box around the centre of the breakdown heatmap's (row, column) square, until the URL
    meets ``until``."""
    select_by_drag(page, lambda: _drag_over_heatmap_cell(page, row, column), until)


def _drag_over_heatmap_cell(page, row: str, column: str) -> None:
    rows = {t.label: t.y for t in chart_ticks(page, "fun_breakdown", "y")}
    columns = {t.label: t.x for t in chart_ticks(page, "fun_breakdown", "x")}
    dy, dx = 0.3 * smallest_gap(rows.values()), 0.3 * smallest_gap(columns.values())
    x, y = columns[column], rows[row]
    drag(page, (x - dx, y - dy), (x + dx, y + dy))


def assert_lists(page, deals: pl.DataFrame, selection: str | None) -> None:
    """Heading, sidebar notice, grid row count and export labels show exactly ``deals``."""
    expect(deals_heading(page)).to_have_text(heading(deals, selected=selection is not None))
    wait_until_idle(page)
    assert_no_errors(page)
    notice = page.get_by_test_id("stSidebar").get_by_test_id("stAlertContentInfo").filter(has_text="Chart selection")
    if selection is None:
        expect(notice).to_have_count(0)
    else:
        expect(notice.get_by_test_id("stMarkdownContainer")).to_have_text(f"Chart selection: {selection}")
    # the same words at the top of the page, one removable line per selection
    banner = page.locator(".st-key-active_selections [class*='st-key-active_sel_'] [data-testid='stMarkdown']")
    wanted = [] if selection is None else selection.split(" · ")
    expect(banner).to_have_count(len(wanted))
    assert [t.replace("\u200b", "").strip() for t in banner.all_inner_texts()] == wanted
    expect(grid_row_summary(page)).to_have_text(row_summary(deals))
    for fmt in ("CSV", "XLSX"):
        expect(page.get_by_test_id("stDownloadButton").filter(has_text=f"Download {fmt}")).to_contain_text(
            f"Download {fmt} ({deals.height:,} rows)"
        )


# --- tests -----------------------------------------------------------------------------------------------

def test_a_box_over_a_funnel_bar_lists_exactly_that_steps_deals(page, server, frames):
    everything = deals_for(frames)
    step = step_of(frames, STAGE)
    chosen = deals_for(frames, [("step", str(step))])
    assert 0 < chosen.height < everything.height
    assert chosen.height == funnel_steps(frames).filter(pl.col("step") == step)["reached"].item()

    open_funnel(page, server, everything)
    expect(grid_row_summary(page)).to_have_text(row_summary(everything))
    drag_over_funnel_bar(page, STAGE, f"params.getAll('select').join() === 'step:{step}'")

    assert_lists(page, chosen, selection=f"Funnel stage: {STAGE}")
    assert query(page) == {**{k: [v] for k, v in LINK.items()}, "select": [f"step:{step}"],
                           "mode": ["cohort"], "by": ["owner"]}


def test_the_exports_hold_exactly_the_selected_deals(page, server, frames):
    step = step_of(frames, STAGE)
    filters = Filters.create(Q2, selection=[("step", str(step))], scope=Scope())
    chosen = deals_for(frames, filters.selection)
    open_funnel(page, server, deals_for(frames))
    drag_over_funnel_bar(page, STAGE, "params.has('select')")
    assert_lists(page, chosen, selection=f"Funnel stage: {STAGE}")
    stem = f"deals_2026-04-01_2026-06-30_step-{step}"

    name, data = download(page, "Download CSV")
    assert name == f"{stem}.csv"
    exported = pl.read_csv(io.BytesIO(data.removeprefix(b"\xef\xbb\xbf")), infer_schema=False)
    assert exported["opportunity_id"].to_list() == chosen["opportunity_id"].to_list()  # same deals, same order
    assert exported["owner"].to_list() == chosen["owner"].to_list()
    assert exported["amount"].cast(pl.Float64).sum() == pytest.approx(chosen["amount"].sum())

    name, data = download(page, "Download XLSX")
    assert name == f"{stem}.xlsx"
    sheet = pl.read_excel(io.BytesIO(data), sheet_name="data")
    assert sheet["opportunity_id"].to_list() == chosen["opportunity_id"].to_list()
    manifest = pl.read_excel(io.BytesIO(data), sheet_name="manifest", has_header=False)
    fields = dict(zip(*(manifest[c].cast(pl.String).to_list() for c in manifest.columns), strict=True))
    assert fields["filters"] == f"2026-04-01 – 2026-06-30, selected step={step}" == filters.describe()
    assert fields["filter select"] == f"step:{step}"
    assert fields["selection rule"] == f"cohort funnel; {filters.describe()}"
    assert fields["rows"] == str(chosen.height)
    assert_no_errors(page)


def test_a_box_over_a_breakdown_cell_lists_that_owners_deals_at_that_step(page, server, frames):
    step = step_of(frames, STAGE)
    cells = funnel_steps(frames, by="owner").filter(pl.col("step") == step).sort("owner")
    owner, reached = next((o, r) for o, r in cells.select("owner", "reached").iter_rows() if 2 <= r <= 10)
    chosen = deals_for(frames, [("owner", owner), ("step", str(step))])
    assert chosen.height == reached  # the cell's count is the number of deals listed
    assert set(chosen["owner"]) == {owner}
    assert chosen.height < min(deals_for(frames, [("owner", owner)]).height,
                               deals_for(frames, [("step", str(step))]).height)

    open_funnel(page, server, deals_for(frames))
    drag_over_heatmap_cell(page, owner, STAGE, "params.getAll('select').length === 2")

    assert_lists(page, chosen, selection=f"Funnel stage: {STAGE} · Deal owner: {owner}")
    assert query(page)["select"] == [f"owner:{owner}", f"step:{step}"]
    expect(grid_cells(page, "opportunity_id")).to_have_count(chosen.height)  # all drawn: a handful of rows
    assert sorted(grid_column(page, "opportunity_id")) == sorted(chosen["opportunity_id"])


def test_clearing_the_chart_selection_restores_every_deal_and_the_link(page, server, frames):
    everything = deals_for(frames)
    step = step_of(frames, STAGE)
    chosen = deals_for(frames, [("step", str(step))])
    open_funnel(page, server, everything)
    drag_over_funnel_bar(page, STAGE, "params.has('select')")
    assert_lists(page, chosen, selection=f"Funnel stage: {STAGE}")

    page.get_by_test_id("stSidebar").get_by_role("button", name="Clear chart selection").click()
    wait_for_query(page, "!params.has('select')")
    assert_lists(page, everything, selection=None)
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Clear chart selection")).to_have_count(0)
    assert query(page) == {**{k: [v] for k, v in LINK.items()}, "mode": ["cohort"], "by": ["owner"]}

    # The same bar can be chosen again once cleared.
    drag_over_funnel_bar(page, STAGE, "params.has('select')")
    assert_lists(page, chosen, selection=f"Funnel stage: {STAGE}")

    # The ✕ beside the selection's words at the top of the page clears it too.
    page.locator(".st-key-remove_sel_step").get_by_role("button", name="✕").click()
    wait_for_query(page, "!params.has('select')")
    wait_until_idle(page)  # the banner leaves the top of the page: the old elements stay until the run ends
    assert_lists(page, everything, selection=None)


def test_the_mode_control_redraws_the_funnel_with_crms_numbers(page, server, frames):
    open_funnel(page, server, deals_for(frames))
    modes = page.get_by_role("radiogroup", name="Funnel", exact=True)
    expect(modes.get_by_role("radio", name="Cohort", exact=True)).to_be_checked()
    for mode, title in TITLES.items():  # and back to the default
        choice = modes.get_by_role("radio", name=mode.capitalize(), exact=True)
        choice.click()
        wait_for_query(page, f"params.get('mode') === '{mode}'")
        expect(choice).to_be_checked()
        assert_lists(page, deals_for(frames, mode=mode), selection=None)
        expect(page.locator(".st-key-fun_chart .gtitle")).to_have_text([title])  # the new chart only
        steps = funnel_steps(frames, mode)
        ticks = [t.lines for t in chart_ticks(page, "fun_chart", "y")]
        texts = chart_bar_texts(page, "fun_chart")
        if mode == "snapshot":
            assert ticks == [(s,) for s in steps["stage"]]
            # "34 deals · $589,421": exact counts; whole dollars within rounding (Polars may sum a group's
            # amounts in another order from run to run, so x.5 can round either way).
            assert len(texts) == 1 and len(texts[0]) == steps.height, texts
            for text, (count, amount) in zip(texts[0], steps.select("deals", "amount").iter_rows(), strict=True):
                shown_count, shown_amount = text.split(f" deals · {CURRENCY_SYMBOL}")
                assert int(shown_count.replace(",", "")) == count, text
                assert abs(int(shown_amount.replace(",", "")) - amount) <= 0.5 + 1e-6, (text, amount)
            expect(page.locator(".st-key-fun_breakdown")).to_have_count(0)
        else:
            assert ticks == [
                (stage, f"{reached:,} · " + (f"step {percent(conv)} · " if step > 1 else "") + f"{percent(cum)} of first")
                for step, stage, reached, conv, cum in steps.select(
                    "step", "stage", "reached", "step_conversion", "cumulative_conversion").iter_rows()
            ]
            assert texts == [[f"{r:,}" for r in steps["reached"]], [f"−{d:,}" for d in steps["dropped"] if d]]
        assert query(page)["mode"] == [mode]
    assert funnel_steps(frames, "strict")["reached"].to_list() != funnel_steps(frames)["reached"].to_list()


def test_a_tab_draws_its_charts_when_it_is_opened(page, server, frames):
    open_funnel(page, server, deals_for(frames))
    days = page.get_by_label("Stuck longer than (days)")
    expect(days).to_have_count(0)  # only the open tab (Velocity) ran
    page.get_by_role("tab", name="Forecast & ageing").click()
    expect(days).to_have_value("30")
    stuck = build_report("ageing", frames, Filters.create(Q2, scope=Scope()), ReportOptions(days=30))
    expect(page.get_by_text(f"{stuck.height:,} open deals in their stage longer than 30 days")).to_be_visible()
    wait_until_idle(page)
    assert_no_errors(page)
    chart_ticks(page, "fun_forecast", "x")  # drawn
    expect(page.locator(".st-key-fun_velocity")).to_have_count(0)
