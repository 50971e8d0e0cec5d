"""Browser: the Data page in real Chromium on a server with its own store. A CSV of deals is uploaded, one
spelling of its status column is mapped by hand in the value-map editor, previewed and imported; the
cockpit's "Revenue won" grows by exactly the won amounts in the file; undo on the Data page puts it back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from crm.dataset import load_frames
from crm.filters import DEFAULT_PRESET, resolve_preset
from crm.format import format_money
from crm.store import Store
from tests.e2e.harness import Server, run_streamlit, wait_until_idle
from tests.e2e.screen import DATAFRAME_ROW_HEIGHT, anchor, assert_no_errors, expect, tile_value, wait_for_tiles

pytestmark = pytest.mark.browser

WAIT_MS = 90_000
DEALS = """Deal ID,Account,Owner,Product,Amount,Created,Closed,Status
WEB-1,C0000001,Ada Import,GTX Pro,120000,2026-03-02,2026-05-04,Closed Won
WEB-2,C0000002,Ada Import,GTX Pro,95500,2026-03-09,2026-05-11,Closed Won
WEB-3,C0000003,Ada Import,MG Special,230250,2026-03-16,2026-05-18,Won (paid)
WEB-4,C0000004,Ada Import,MG Special,64000,2026-03-23,2026-05-25,Won (paid)
WEB-5,C0000005,Ada Import,GTX Basic,310000,2026-03-30,2026-06-01,Closed Won
WEB-6,C0000006,Ada Import,GTX Basic,50000,2026-04-06,2026-06-08,Closed Lost
"""
"""Five won deals closed in May and June 2026 (inside the default last-90-days view of a store whose data
ends on 30 June 2026) and one lost. The suggestion maps 'Closed Won' and 'Closed Lost'; 'Won (paid)' has to
be mapped by hand, or those two deals would count as open."""
WON_AMOUNT = 120000 + 95500 + 230250 + 64000 + 310000


@pytest.fixture
def own_server(browser, demo_frames, tmp_path) -> Iterator[tuple[Server, Store]]:
    """A fresh server over a copy of the demo store that only this test writes to."""
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")
    store.replace_business_data(demo_frames)
    with run_streamlit(str(store.url), tmp_path / "server.log") as server:
        yield server, store
    store.close()


def revenue_won(store: Store) -> float:
    """Σ amount of the deals won within the default period, read straight from the store."""
    frames = load_frames(store)
    period = resolve_preset(DEFAULT_PRESET, anchor(frames))
    start = datetime.combine(period.start, datetime.min.time())
    end = datetime.combine(period.end + timedelta(days=1), datetime.min.time())
    deals = store.read("opportunities")
    won = deals.filter((pl.col("status") == "won") & (pl.col("closed_at") >= start) & (pl.col("closed_at") < end))
    assert period.end == date(2026, 6, 30)
    return float(won["amount"].sum())


def open_cockpit_tile(page, expected: str) -> None:
    """Go to the cockpit through the sidebar and wait until Revenue won shows ``expected``."""
    page.get_by_test_id("stSidebar").get_by_role("link", name="Cockpit", exact=True).click()
    expect(tile_value(page, "revenue_won")).to_have_text(expected, timeout=WAIT_MS)
    wait_for_tiles(page)
    assert_no_errors(page)


def open_data_page(page) -> None:
    page.get_by_test_id("stSidebar").get_by_role("link", name="Data", exact=True).click()
    expect(page.get_by_role("heading", name="Import history")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)


def map_status_value(page, value: str, target: str) -> None:
    """In the status value-map editor, make ``value`` map to ``target`` (double-click its cell, pick)."""
    editor = page.locator('[class*="_values_status_"] [data-testid="stDataFrame"]')
    editor.scroll_into_view_if_needed()
    rows = editor.locator('[data-testid="data-grid-canvas"] tbody tr')
    expect(rows.filter(has_text=value)).to_have_count(1)  # the grid draws its rows after the run
    texts = rows.all_inner_texts()
    row = next(i for i, text in enumerate(texts) if text.startswith(value))
    box = editor.get_by_test_id("data-grid-canvas").bounding_box()
    assert box is not None
    page.mouse.dblclick(box["x"] + box["width"] - 60, box["y"] + DATAFRAME_ROW_HEIGHT * (row + 1.5))
    page.locator('#portal [role="option"]').get_by_text(target, exact=True).click()
    expect(rows.nth(row)).to_have_text(f"{value}2{target}")


def test_an_uploaded_file_mapped_in_the_page_changes_the_cockpit_until_it_is_undone(page, own_server, tmp_path: Path):
    server, store = own_server
    page.set_default_timeout(WAIT_MS)
    before = revenue_won(store)
    after = before + WON_AMOUNT
    assert format_money(before) != format_money(after)
    rows_before = store.row_count("opportunities")

    page.goto(server.url)
    expect(tile_value(page, "revenue_won")).to_have_text(format_money(before), timeout=WAIT_MS)
    open_data_page(page)
    expect(page.get_by_text("Upload a CSV or XLSX export to start")).to_be_visible()

    deals = tmp_path / "deals.csv"
    deals.write_text(DEALS, encoding="utf-8")
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(deals))
    expect(page.get_by_text("Map the file's columns onto opportunities")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    expect(page.get_by_text("deals.csv: CSV, utf-8 (detected), delimiter comma, 6 rows, 8 columns")).to_be_visible()
    map_status_value(page, "Won (paid)", "won")

    preview = page.get_by_role("button", name="Preview", exact=True)
    preview.click()
    rows = page.locator('.st-key-data_preview [data-testid="data-grid-canvas"] tbody tr')
    expect(rows).to_have_count(6, timeout=WAIT_MS)
    wait_until_idle(page)
    statuses = page.locator('.st-key-data_preview [data-testid="data-grid-canvas"] tbody td[aria-colindex="9"]')
    mapped = ["won", "won", "won", "won", "won", "lost"]
    if statuses.all_inner_texts() != mapped:
        # Streamlit's data editor hands a cell edit to its form 150 ms after the edit (a debounce in its
        # frontend); Playwright can click Preview sooner, and that submit goes without the edit. It has
        # arrived by now: a second Preview must show the mapping.
        assert statuses.all_inner_texts() == ["won", "won", "open", "open", "won", "lost"]
        preview.click()
    expect(statuses).to_have_text(mapped, timeout=WAIT_MS)
    wait_until_idle(page)

    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text("Import 1 done:")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    assert_no_errors(page)
    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text="Import 1 done:")).to_contain_text(
        "6 rows into opportunities")
    assert store.row_count("opportunities") == rows_before + 6
    assert revenue_won(store) == after

    open_cockpit_tile(page, format_money(after))

    open_data_page(page)
    page.get_by_test_id("stCheckbox").filter(has_text="Yes, remove the rows of import 1").locator("label").click()
    undo = page.get_by_role("button", name="Undo import 1")
    expect(undo).to_be_enabled(timeout=WAIT_MS)
    wait_until_idle(page)
    undo.click()
    expect(page.get_by_text("Import 1 undone: removed 6 rows from opportunities.")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    assert store.row_count("opportunities") == rows_before

    open_cockpit_tile(page, format_money(before))
