"""Browser: a customer's name in the Segments grid links to their Customer 360 page (a new tab, the filters kept);
the page shows their header and the timeline crm.customer_view computes; a pick from the search opens another
customer in the same tab and Back returns to the first."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from crm.customer_view import customer_view, timeline_table
from crm.dataset import Frames
from crm.filters import Filters, Period
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import GRID_FRAME, assert_no_errors, expect, wait_for_query

pytestmark = pytest.mark.browser

LINK = "from=2026-04-01&to=2026-06-30"
Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
TIMELINE = '[data-testid="stDataFrame"] [data-testid="data-grid-canvas"] td'
"""The cells glide-data-grid keeps in an accessible table for the rows it draws."""


def expected(frames: Frames, customer_id: str) -> tuple[str, list[str]]:
    found = customer_view(frames, Filters.create(Q2, scope=Scope()), customer_id)
    assert found is not None
    return str(found.header.name), timeline_table(found.timeline)["summary"].to_list()


def wait_for_customer(page, name: str) -> None:
    """Wait until ``name``'s page is drawn: its heading, one Timeline heading (while the run that replaces
    one customer with another is under way, the previous page's elements linger, faded: two of each) and an
    idle script."""
    expect(page.get_by_role("heading", name=name, exact=True)).to_have_count(1)
    expect(page.get_by_role("heading", name="Timeline", exact=True)).to_have_count(1)
    wait_until_idle(page)
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    assert_no_errors(page)


def test_a_name_in_the_segments_grid_opens_the_customer_360_page_with_the_timeline(page, server, frames):
    page.goto(f"{server.url}/segments?{LINK}")
    grid = page.frame_locator(GRID_FRAME)
    link = grid.locator('.ag-center-cols-container .ag-row[row-index="0"] [col-id="name"] a')
    expect(link).to_be_visible()
    row_id = grid.locator('.ag-center-cols-container .ag-row[row-index="0"] [col-id="customer_id"]').inner_text().strip()
    name = link.inner_text().strip()
    href = link.get_attribute("href") or ""
    assert urlsplit(href).path == "/customer" and urlsplit(href).netloc == urlsplit(server.url).netloc
    assert link.get_attribute("target") == "_blank"

    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    want_name, summaries = expected(frames, row_id)
    assert name == want_name
    wait_for_customer(tab, want_name)
    params = parse_qs(urlsplit(tab.url).query)
    assert params["customer"] == [row_id]
    assert (params["from"], params["to"]) == (["2026-04-01"], ["2026-06-30"])  # the filters came along
    assert len(summaries) > 5
    cells = tab.locator(TIMELINE)
    expect(cells.filter(has_text=summaries[0]).first).to_be_attached()  # newest first
    expect(cells.filter(has_text=summaries[1]).first).to_be_attached()
    tab.close()


def test_a_search_pick_opens_a_customer_in_the_same_tab_and_back_returns(page, server, frames):
    customers = frames.customers.sort("customer_id")
    first, second = customers.row(0, named=True), customers.row(1, named=True)
    page.goto(f"{server.url}/customer?{LINK}&customer={first['customer_id']}")
    wait_for_customer(page, expected(frames, first["customer_id"])[0])

    box = page.get_by_role("textbox", name="Find a customer")
    box.fill(second["customer_id"])
    box.press("Enter")
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Open a match")
    expect(picker).to_be_visible()
    picker.click()
    page.get_by_role("option", name=f"{second['name']} · {second['customer_id']}").click()
    wait_for_query(page, f"params.get('customer') === {second['customer_id']!r}")
    wait_for_customer(page, expected(frames, second["customer_id"])[0])
    assert box.input_value() == ""

    page.go_back()
    wait_for_query(page, f"params.get('customer') === {first['customer_id']!r}")
    wait_for_customer(page, expected(frames, first["customer_id"])[0])


@pytest.mark.parametrize("size", [(1024, 768), (1440, 900)], ids=["1024x768", "1440x900"])
def test_nothing_on_a_customers_page_is_cut(browser, server, frames, size):
    """The layout check of tests/e2e/test_layout.py on a page showing a customer (that test opens the page
    without one): no tile value, label, link, button or widget label cut; every choice of "Show" in view."""
    from tests.e2e.harness import session_cookie
    from tests.e2e.test_layout import _CUT, _HIDDEN_OPTIONS

    busiest = frames.orders.group_by("customer_id").len().sort(["len", "customer_id"], descending=[True, False])
    customer = str(busiest["customer_id"][0])
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    context.add_cookies([session_cookie()])
    context.set_default_timeout(90_000)
    tab = context.new_page()
    try:
        tab.goto(f"{server.url}/customer?{LINK}&customer={customer}")
        wait_for_customer(tab, expected(frames, customer)[0])
        tab.evaluate("() => document.fonts.ready.then(() => true)")
        tab.wait_for_function("() => [...document.querySelectorAll('[class*=\"st-key-tilegrid_\"]')]"
                              ".every(e => getComputedStyle(e).display === 'grid')")
        wait_until_idle(tab)  # the tiles are drawn by the same run as the heading: wait for its end, then count
        expect(tab.locator('[data-testid="stMain"] [data-testid="stMetricValue"]')).to_have_count(7)
        assert tab.evaluate(_CUT) == []
        assert tab.evaluate(_HIDDEN_OPTIONS) == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def hostile_server(browser, demo_frames, tmp_path_factory):
    """A server over the demo data with HTML and Markdown in every customer name, survey comment and many
    names (tests/e2e/test_hostile_links.py's store)."""
    from crm.store import Store
    from tests.e2e.harness import run_streamlit
    from tests.e2e.test_hostile_links import hostile_frames

    folder = tmp_path_factory.mktemp("hostile-customer")
    store = Store(f"sqlite:///{folder / 'crm.db'}")
    store.replace_business_data(hostile_frames(demo_frames))
    store.close()
    with run_streamlit(str(store.url), folder / "server.log") as running:
        yield running


def test_a_customers_hostile_names_and_comments_are_shown_as_text(page, hostile_server, demo_frames):
    import polars as pl

    from tests.e2e.test_hostile_links import _OUTSIDE, HOST, hostile_frames

    hostile = hostile_frames(demo_frames)
    commented = hostile["survey_responses"].filter(pl.col("comment").is_not_null()).group_by("customer_id").len()
    customer = str(commented.sort(["len", "customer_id"], descending=[True, False])["customer_id"][0])
    name = str(hostile["customers"].filter(pl.col("customer_id") == customer)["name"][0])
    page.goto(f"{hostile_server.url}/customer?{LINK}&customer={customer}")
    expect(page.get_by_role("heading", name="Timeline", exact=True)).to_be_visible()
    wait_until_idle(page)
    assert_no_errors(page)
    heading = page.locator('[data-testid="stMain"] h2').first.inner_text().replace("\u200b", "")
    assert heading == name  # the name's markup reads as it is (crm.format.plain puts a zero-width space after a colon)
    shown = page.locator('[data-testid="stMain"]').inner_text()
    assert "Traceback" not in shown
    for frame in page.frames:
        assert frame.evaluate(_OUTSIDE, HOST) == [], frame.url
    # a search for the markup finds the customer and lists it as text
    box = page.get_by_role("textbox", name="Find a customer")
    box.fill(name[:12])
    box.press("Enter")
    expect(page.get_by_text("Click a row, or choose below with the keyboard.", exact=False)).to_be_visible()
    wait_until_idle(page)
    assert_no_errors(page)
    for frame in page.frames:
        assert frame.evaluate(_OUTSIDE, HOST) == [], frame.url


_FIRST_ROW = """() => {
    const cell = (column) => document.querySelector(
        `.ag-body .ag-row[row-index="0"] [col-id="${column}"]`);
    const link = cell("customer_name")?.querySelector("a");
    const id = cell("customer_id");
    return link && id ? [link.innerText.trim(), link.getAttribute("href"), link.getAttribute("target"),
                         id.innerText.trim()] : null;
}"""
"""The first row's customer link (text, href, target) and customer id, read in one go: the grid may redraw
between two separate reads."""


def _first_linked_row(page):
    """The first grid on the page whose customer column holds links: its first row's link text, href and
    target and its customer id, read together once the page is idle."""
    linked = '.ag-center-cols-container .ag-row[row-index="0"] [col-id="customer_name"] a'
    page.wait_for_function(
        """selector => [...document.querySelectorAll('iframe[data-testid="stCustomComponentV1"]')]
              .some(f => f.contentDocument && f.contentDocument.querySelector(selector))""", arg=linked)
    wait_until_idle(page)
    grids = page.locator(GRID_FRAME)
    for index in range(grids.count()):
        row = grids.nth(index).content_frame.locator(":root").evaluate(_FIRST_ROW)
        if row:
            return row
    raise AssertionError("no grid links its customers")


@pytest.mark.parametrize("path, tab", [("service", None), ("satisfaction", None), ("funnel", "Forecast & ageing")])
def test_ticket_response_and_deal_grids_link_each_customer_to_their_360_page(page, server, frames, path, tab):
    page.goto(f"{server.url}/{path}?{LINK}")
    if tab:
        page.get_by_role("tab", name=tab).click()
    name, href, target, row_id = _first_linked_row(page)
    found = customer_view(frames, Filters.create(Q2, scope=Scope()), row_id)
    assert found is not None and name == found.header.name
    parts = urlsplit(href or "")
    params = parse_qs(parts.query)
    assert (parts.path, params["customer"]) == ("/customer", [row_id])
    assert (params["from"], params["to"]) == (["2026-04-01"], ["2026-06-30"])  # the filters come along
    assert target == "_blank"
