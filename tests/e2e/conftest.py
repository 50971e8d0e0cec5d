"""Browser fixtures: the demo store, `streamlit run` servers (one shared, or fresh ones), Debian chromium."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from crm.dataset import Frames, load_frames
from tests.conftest import require
from tests.e2e.harness import CHROMIUM, VIEWPORT, Server, launch_chromium, run_streamlit, session_cookie

TIMEOUT_MS = 90_000  # generous: a busy two-core machine (the guide asks for 90 s), never a fixed sleep


@pytest.fixture(scope="session")
def _playwright():
    """Playwright's sync API; a skip (a failure under CRM_REQUIRE_BROWSER=1) when it or chromium is missing."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        require("browser", f"the playwright package is not installed ({exc})")
    if not CHROMIUM.is_file():
        require("browser", f"no Debian chromium at {CHROMIUM} (apt-get install chromium)")
    expect.set_options(timeout=TIMEOUT_MS)  # a fresh server's first render takes a few seconds
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright):
    """Headless chromium for the whole run (each test gets its own context)."""
    chromium = launch_chromium(_playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser):
    """A page in a new browser context: own cookies and storage, a 1400×1000 viewport, signed in as the demo
    admin (harness.SESSION_TOKEN, a session on every server the harness starts)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([session_cookie()])
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def e2e_store(sqlite_store):
    """The session's SQLite demo store (seed 11, scale 0.25, as of 2026-06-30)."""
    return sqlite_store


@pytest.fixture(scope="session")
def frames(e2e_store) -> Frames:
    """The store's frames, as the app loads them: the tests compute what the tiles should show from these."""
    return load_frames(e2e_store)


# The server fixtures depend on `browser` so a machine without one skips before starting anything.


@pytest.fixture(scope="session")
def server(browser, e2e_store, tmp_path_factory) -> Iterator[Server]:
    """One app server for every test that does not need a fresh process."""
    with run_streamlit(str(e2e_store.url), tmp_path_factory.mktemp("streamlit") / "server.log") as running:
        yield running


@pytest.fixture
def fresh_server(browser, e2e_store, tmp_path) -> Iterator[Callable[[], Server]]:
    """A factory of new servers, stopped after the test: their first script run (legacy pages/ mode,
    before st.navigation is first called) is still ahead, which is what a deep link meets in production."""
    numbers = itertools.count(1)
    with ExitStack() as stack:
        def start() -> Server:
            log = tmp_path / f"server-{next(numbers)}.log"
            return stack.enter_context(run_streamlit(str(e2e_store.url), log))

        yield start
