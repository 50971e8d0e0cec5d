"""AppTest fixtures: a demo store for the app, clean caches, and the pages/ folder quirk neutralised."""

from __future__ import annotations

import re

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def open_page(page: str, query: dict) -> AppTest:
    """Run the app with ``query`` in the URL, then switch to ``page`` (e.g. "pages/funnel.py")."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(query)
    at.run()
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


@pytest.fixture
def app_store(sqlite_store, monkeypatch):
    """Point the app at the session's SQLite demo store."""
    monkeypatch.setenv("CRM_DATABASE_URL", str(sqlite_store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    return sqlite_store
