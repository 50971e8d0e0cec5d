"""AppTest: the churn basis chosen on the Data page, and the cockpit and churn page following it."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_value
from crm.metrics import churn, definition
from crm.narrowing import narrow
from crm.scope import Scope
from crm.settings import ChurnBasis, load_churn_basis, save_churn_basis
from crm.store import Store
from crm.ui import loaders
from tests.app.conftest import open_page, shown

H1 = {"from": "2026-01-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 1, 1), date(2026, 6, 30))


@pytest.fixture
def own_store(tmp_path, monkeypatch, demo_frames):
    """A copy of the demo store for this test alone (the setting is written to it)."""
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")
    store.replace_business_data(demo_frames)
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    monkeypatch.setattr("crm.ui.data.UPLOAD_ROOT", tmp_path / "uploads")
    yield store
    store.close()


def test_the_data_page_saves_the_churn_basis(own_store):
    at = open_page("pages/data.py", {})
    assert not at.exception, at.exception
    choice = at.radio(key="data_churn_basis_choice")
    assert choice.value == ChurnBasis.ACTIVITY
    assert any(e.label == "Churn basis: activity" for e in at.expander)
    caption = next(shown(c.value) for c in at.caption if "Subscription" in c.value)
    assert "created (creation date) on or before it and not cancelled" in caption and "within the 90 days" in caption
    version = own_store.data_version()
    choice.set_value(ChurnBasis.SUBSCRIPTION)
    next(b for b in at.button if b.label == "Save churn basis").click().run()
    assert not at.exception, at.exception
    assert load_churn_basis(own_store) is ChurnBasis.SUBSCRIPTION and own_store.data_version() == version + 1
    assert any(e.label == "Churn basis: subscription" for e in at.expander)


def window_choices(at) -> list:
    return [s for s in at.get("button_group") if s.label.startswith("A customer is active for")]


def test_the_churn_page_and_the_cockpit_follow_the_subscription_basis(own_store):
    at = open_page("pages/customers.py", {**H1, "dim": "region"})
    assert not at.exception and len(window_choices(at)) == 1  # activity: the window is a choice
    version = save_churn_basis(own_store, ChurnBasis.SUBSCRIPTION)  # outside the app: another person's change
    at = open_page("pages/customers.py", {**H1, "dim": "region"})  # may show the older data, with a notice
    thread = loaders._shelf().refreshing.get((str(own_store.url), version))
    if thread is not None:  # the new version loads in the background; the page redraws once it is ready
        thread.join(timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not [i for i in at.info if "is being prepared" in i.value]
    ds = narrow(load_frames(own_store), Filters.create(PERIOD, scope=Scope()))
    summary = churn.summarise_customers(ds, PERIOD).collect().row(0, named=True)
    activity = churn.summarise_customers(dataclasses.replace(ds, churn_basis=ChurnBasis.ACTIVITY),
                                         PERIOD).collect().row(0, named=True)
    assert summary["churn_rate"] != activity["churn_rate"]  # the demo's cancellations: a real difference
    metrics = {m.label: m.value for m in at.metric}
    for key in ("active_customers", "churn_rate"):
        assert metrics[definition(key).label] == format_value(summary[key], definition(key).unit)
    assert not window_choices(at)  # the window does not apply
    assert any("Churn basis **subscription**" in c.value for c in at.caption)
    by_region = churn.churn_by(ds, PERIOD, "region")
    assert list(at.dataframe[0].value["churn_rate"]) == pytest.approx(by_region["churn_rate"].to_list())

    at.switch_page("pages/cockpit.py").run()
    assert not at.exception, at.exception
    tile = next(m for m in at.metric if m.label == definition("churn_rate").label)
    assert tile.value == format_value(summary["churn_rate"], definition("churn_rate").unit)
    assert "churn basis: subscription" in tile.proto.help
