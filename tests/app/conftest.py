"""AppTest fixtures: a demo store for the app, signed-in sessions, clean caches, and the pages/ folder quirk
neutralised."""

from __future__ import annotations

import os
import re

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from crm import auth
from crm.store import Store, StoreError
from crm.ui.session import TOKEN_KEY
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
DEMO_NAMES: dict[str, str] = {role: name for name, role, _, _ in auth.DEMO_USERS}
"""The demo user of each role (``admin`` → ``admin``, ``executive`` → ``exec``, ...)."""
_FROM_FILE = AppTest.from_file


def sign_in(at: AppTest, role: str = "admin") -> AppTest:
    """Start ``at`` signed in as the demo user of ``role`` on the store the app uses (CRM_DATABASE_URL): a
    session made by crm.auth.create_session, its token in the session state, as the login form leaves it."""
    with Store(os.environ["CRM_DATABASE_URL"]) as store:
        auth.add_demo_users(store)  # a test's own store has none yet
        at.session_state[TOKEN_KEY] = auth.create_session(store, DEMO_NAMES[role])
    return at


def new_app(role: str | None = "admin", timeout: float = 90) -> AppTest:
    """The app, signed in as the demo user of ``role``; ``None``: a visitor nobody has signed in."""
    at = _FROM_FILE(APP, default_timeout=timeout)
    return at if role is None else sign_in(at, role)


def open_page(page: str, query: dict, role: str = "admin") -> AppTest:
    """Open ``page`` (e.g. "pages/funnel.py") from a link with ``query``, signed in as the demo ``role``: AppTest
    runs the default page first, which keeps only its own URL settings, so the link's query is set again."""
    at = new_app(role)
    at.query_params.update(query)
    at.run()
    at.query_params.clear()
    at.query_params.update(query)
    at.switch_page(page).run()
    return at


def shown(markdown: str) -> str:
    """What a person reads from a Markdown body: backslash escapes (crm.format.plain) removed."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


@pytest.fixture(autouse=True)
def _clean_caches():
    """st.cache_* survive from one AppTest to the next in one process."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def _no_legacy_pages_folder(monkeypatch):
    """AppTest resets PagesManager.uses_pages_directory on every run; a live server sets it to
    False once st.navigation runs. Keep it False so reruns go through app.py as on a server."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def _signed_in_by_default(monkeypatch):
    """``AppTest.from_file`` gives an app signed in as the demo admin (every page, every row) when a store is
    set (CRM_DATABASE_URL): the page tests read data, which only a signed-in person sees. Tests of the login
    page, of other roles or of an empty session use ``new_app(role)``."""

    def from_file(*args, **kwargs) -> AppTest:
        at = _FROM_FILE(*args, **kwargs)
        try:
            return sign_in(at) if os.environ.get("CRM_DATABASE_URL") else at
        except StoreError:  # a test of an unreachable store: nobody can sign in there
            return at

    monkeypatch.setattr(AppTest, "from_file", from_file)


@pytest.fixture
def app_store(sqlite_store, monkeypatch):
    """Point the app at the session's SQLite demo store, with its demo users (one per role)."""
    monkeypatch.setenv("CRM_DATABASE_URL", str(sqlite_store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    auth.add_demo_users(sqlite_store)
    return sqlite_store
