"""Loading the store's data: the steps go to the session that loads, once; the frames are then shared;
no progress bar is left on a page once the data is there."""

from __future__ import annotations

from crm.dataset import COLUMNS
from crm.ui import loaders
from crm.ui.pages import PAGES
from tests.app.conftest import open_page


def test_a_load_reports_its_steps_once_then_the_frames_are_shared(app_store, monkeypatch):
    monkeypatch.setenv("CRM_SNAPSHOT_DIR", "off")  # a load from the store (crm.snapshot has its own tests)
    url, version = str(app_store.url), app_store.data_version()
    steps: list[str] = []
    first = loaders.get_frames(url, version, progress=lambda fraction, text: steps.append(text))
    assert steps[0] == f"Reading table 1 of {len(COLUMNS)}: customers (0 rows so far)"
    rows = sum(app_store.read(name, columns[:1]).height for name, columns in COLUMNS.items())  # the demo has no bad rows
    assert steps[-2:] == [f"Preparing {rows:,} rows: joins, stage history, business hours", f"Ready: {rows:,} rows"]
    assert len(steps) == len(COLUMNS) + 2
    steps.clear()
    assert loaders.get_frames(url, version, progress=lambda fraction, text: steps.append(text)) is first
    assert steps == []


def test_no_progress_bar_is_left_once_the_page_is_drawn(app_store):
    at = open_page("pages/cockpit.py", {"period": "last_90"})
    assert not at.exception
    assert at.get("progress") == []
    assert [t.value for t in at.title] == ["Cockpit"]
    assert len(PAGES) >= 8
