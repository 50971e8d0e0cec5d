"""After an import or a settings change, the pages keep serving the data they have while the new data
version loads in the background (crm.ui.loaders.serve_frames), then switch to it."""

from __future__ import annotations

import pytest

from crm.settings import ChurnBasis, save_churn_basis
from crm.store import Store
from crm.ui import loaders


@pytest.fixture
def store(tmp_path, demo_frames) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.replace_business_data(demo_frames)
    return store


def finish(url: str, version: int) -> None:
    """Wait for the background load of ``version`` (it may have finished already)."""
    thread = loaders._shelf().refreshing.get((url, version))
    if thread is not None:
        thread.join(timeout=120)


def test_a_new_version_loads_in_the_background_while_the_old_one_is_served(store):
    url = str(store.url)
    first = loaders.serve_frames(url, store.data_version())
    assert first.preparing is None and first.frames.churn_basis is ChurnBasis.ACTIVITY
    newer = save_churn_basis(store, ChurnBasis.SUBSCRIPTION)
    served = loaders.serve_frames(url, newer)
    assert served.frames is first.frames and served.preparing == newer  # the old data, and a notice
    finish(url, newer)
    assert loaders.is_ready(url, newer)
    now = loaders.serve_frames(url, newer)
    assert now.preparing is None and now.frames.version == newer
    assert now.frames.churn_basis is ChurnBasis.SUBSCRIPTION


def test_a_version_that_cannot_load_is_reported_and_the_old_data_stays(store, monkeypatch):
    url = str(store.url)
    first = loaders.serve_frames(url, store.data_version())

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(loaders, "load_frames", broken)
    newer = save_churn_basis(store, ChurnBasis.SUBSCRIPTION)
    loaders.serve_frames(url, newer)
    finish(url, newer)
    served = loaders.serve_frames(url, newer)
    assert served.frames is first.frames and served.failed == "OSError" and served.preparing is None
