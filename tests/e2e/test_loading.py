"""Browser: on a fresh server the first page loads the store's data with the frame shown (the sidebar's
page links, the page title) and a progress bar naming the step; the bar is gone once the page is drawn."""

from __future__ import annotations

import re

import pytest

from crm.dataset import COLUMNS
from crm.ui.pages import PAGES
from tests.e2e.harness import run_streamlit, wait_until_idle
from tests.e2e.screen import assert_no_errors, expect, wait_for_tiles

pytestmark = pytest.mark.browser

# Records, on every change of the page, what a person sees while a progress bar is up (it may be up for
# well under a second on a small store: polling from the test could miss it).
WATCH_LOADING = """
window.__loading = [];
new MutationObserver(() => {
  const bar = document.querySelector('[data-testid="stProgress"]');
  if (!bar) return;
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  window.__loading.push({
    text: bar.innerText.trim(),
    title: (document.querySelector('h1') || {}).innerText || '',
    links: sidebar ? sidebar.querySelectorAll('[data-testid="stPageLink"]').length : 0,
  });
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def _received(page) -> list[bytes]:
    """Every websocket frame the page receives from the server (Streamlit's messages, protobuf)."""
    frames: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived",
                                          lambda data: frames.append(data if isinstance(data, bytes) else data.encode())))
    return frames


@pytest.fixture
def reading_server(browser, e2e_store, tmp_path):
    """A new server without prepared snapshots: its first page reads every table from the store."""
    with run_streamlit(str(e2e_store.url), tmp_path / "server.log", snapshots=False) as server:
        yield server


def test_the_first_load_shows_the_frame_and_names_each_step(page, reading_server):
    server = reading_server
    page.add_init_script(WATCH_LOADING)
    received = _received(page)
    page.goto(server.url)
    wait_for_tiles(page)
    wait_until_idle(page)
    assert_no_errors(page)
    # steps reached the browser, in order; Streamlit replaces an element's update that has not been sent yet by
    # the next one, so on a busy machine some steps are never sent (the unit test checks every step is made)
    sent = b"".join(received)
    tables = [int(n) for n in re.findall(rb"Reading table (\d+) of " + str(len(COLUMNS)).encode(), sent)]
    assert tables and tables == sorted(tables), tables
    for i in set(tables):
        assert f"Reading table {i} of {len(COLUMNS)}: {list(COLUMNS)[i - 1]} (".encode() in sent, i
    # whatever was drawn while the bar was up came with the page's title and the navigation
    seen = page.evaluate("window.__loading")
    # ("Ready" is the bar's last word, drawn as the page replaces the frame: the links may be redrawing then)
    loading = [s for s in seen if not s["text"].startswith("Ready")]
    assert all(s["title"].strip() == "Cockpit" for s in loading), seen
    # once the navigation is drawn it stays while the bar is up; the sidebar's links may land a DOM mutation
    # after the bar's first text (one render batch), which the observer records but nobody can see
    drawn = next((i for i, s in enumerate(seen) if s["links"] == len(PAGES)), len(seen))
    assert all(s["links"] == len(PAGES) for s in seen[drawn:] if not s["text"].startswith("Ready")), seen
    assert all(s["text"].startswith(("Reading table", "Preparing", "Ready")) for s in seen), seen
    expect(page.get_by_test_id("stProgress")).to_have_count(0)

    received.clear()  # the data is loaded now: a new session gets no bar at all
    page.goto(server.url + "/funnel")
    wait_until_idle(page)
    expect(page.get_by_role("heading", name="Sales funnel")).to_be_visible()
    assert page.evaluate("window.__loading") == []
    assert b"Reading table" not in b"".join(received)
