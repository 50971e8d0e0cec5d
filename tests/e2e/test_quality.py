"""Browser: the Data quality page on a store with known bad rows — the cockpit's footer link leads there, a
finding's rows fill the grid and download as CSV, and nothing on the page is an error."""

from __future__ import annotations

import io
from collections.abc import Iterator

import polars as pl
import pytest

from tests.app.test_quality import write_bad_store
from tests.e2e.harness import Server, run_streamlit, wait_until_idle
from tests.e2e.screen import assert_no_errors, download, expect, grid_cells, grid_column

pytestmark = pytest.mark.browser

WAIT_MS = 90_000


@pytest.fixture
def bad_server(browser, tmp_path) -> Iterator[Server]:
    store = write_bad_store(f"sqlite:///{tmp_path / 'bad.db'}")
    with run_streamlit(str(store.url), tmp_path / "streamlit.log") as server:
        yield server
    store.close()


def test_cockpit_link_then_drill_and_export(page, bad_server):
    page.goto(bad_server.url)
    link = page.get_by_role("link", name="Data quality: 4 tables below 95 — review")
    expect(link).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    assert_no_errors(page)

    link.click()
    expect(page.get_by_role("heading", name="Data quality", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Rows behind a finding")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    assert page.url.rstrip("/").split("?")[0].endswith("/quality")
    assert_no_errors(page)

    finding = page.get_by_role("combobox", name="Finding")
    finding.click()
    finding.press_sequentially("Opportunities")
    page.get_by_role("option", name="Opportunities · amount: must not be negative (1 rows)").click()
    expect(page.get_by_text("1 rows of Opportunities where amount")).to_be_visible(timeout=WAIT_MS)
    wait_until_idle(page)
    expect(grid_cells(page, "opportunity_id").first).to_have_text("O2", timeout=WAIT_MS)
    assert grid_column(page, "opportunity_id") == ["O2"]
    name, data = download(page, "Download CSV")
    assert name.startswith("quality_opportunities_amount")
    rows = pl.read_csv(io.BytesIO(data))
    assert rows.select("opportunity_id", "amount").rows() == [("O2", -250.0)]
    assert_no_errors(page)
