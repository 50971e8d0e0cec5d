"""AppTest: the cockpit renders, its tiles show what crm computes, filters change them."""

from __future__ import annotations

from datetime import date

from streamlit.testing.v1 import AppTest

from crm.dataset import load_frames
from crm.filters import Filters, Period, resolve_preset
from crm.format import format_value
from crm.metrics import compute_metrics, tiles
from crm.narrowing import narrow
from crm.scope import Scope
from tests.app.conftest import APP, shown


def run_app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if query:
        at.query_params.update(query)
    return at.run()


COCKPIT_TILES = len(tiles()) + 1
"""The registry's tiles and the at-risk revenue tile (crm.ui.tiles.at_risk_tile; tests/app/test_churn_risk.py)."""


def shown_tiles(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric if m.label != "At-risk revenue"}


def expected_tiles(store, filters: Filters) -> dict[str, str]:
    frames = load_frames(store)
    values = compute_metrics(narrow(frames, filters), filters.period)
    return {m.label: format_value(values[m.key], m.unit) for m in tiles()}


def last_day(store) -> date:
    return load_frames(store).last_event_date()


def test_cockpit_renders_every_tile_with_crm_values(app_store):
    at = run_app()
    assert not at.exception
    assert len(at.metric) == COCKPIT_TILES and len(tiles()) >= 10
    default = Filters.create(resolve_preset("last_90", last_day(app_store)), scope=Scope())
    assert shown_tiles(at) == expected_tiles(app_store, default)
    assert at.query_params["period"] == "last_90"
    assert len(at.get("plotly_chart")) == 3


def test_changing_the_period_changes_the_tiles(app_store):
    at = run_app()
    before = shown_tiles(at)
    at.selectbox(key="flt_preset").set_value("last_30").run()
    assert not at.exception
    last_30 = Filters.create(resolve_preset("last_30", last_day(app_store)), scope=Scope())
    assert shown_tiles(at) == expected_tiles(app_store, last_30)
    assert shown_tiles(at) != before
    assert at.query_params["period"] == "last_30"


def test_region_filter_narrows_the_tiles(app_store):
    at = run_app()
    at.multiselect(key="flt_region").select("Europe").run()
    assert not at.exception
    europe = Filters.create(resolve_preset("last_90", last_day(app_store)), regions=["Europe"], scope=Scope())
    assert shown_tiles(at) == expected_tiles(app_store, europe)
    assert at.query_params["region"] == "Europe"


def test_deep_link_restores_the_filters(app_store):
    at = run_app({"from": "2026-04-01", "to": "2026-04-30", "segment": "SMB", "compare": "0"})
    assert not at.exception
    assert at.date_input(key="flt_range").value == (date(2026, 4, 1), date(2026, 4, 30))
    assert at.multiselect(key="flt_segment").value == ["SMB"]
    april = Filters.create(Period(date(2026, 4, 1), date(2026, 4, 30)), segments=["SMB"], scope=Scope())
    assert shown_tiles(at) == expected_tiles(app_store, april)
    assert all(m.delta in ("", None) for m in at.metric)  # no comparison asked for


def test_invalid_link_parameters_show_a_notice_not_an_error(app_store):
    at = run_app({"from": "2026-13-45", "to": "x", "region": "Atlantis", "bogus": "1"})
    assert not at.exception
    notices = " ".join(shown(w.value) for w in at.warning)
    assert "Ignored the period" in notices and "Atlantis" in notices and "bogus" in notices
    assert len(at.metric) == COCKPIT_TILES
    assert at.selectbox(key="flt_preset").value == "last_90"


def test_period_without_data_says_so(app_store):
    at = run_app({"from": "2020-01-01", "to": "2020-01-31"})
    assert not at.exception
    by_label = {m.label: m.value for m in at.metric}
    assert by_label["Win rate"] == "—" and by_label["NPS"] == "—"
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "No deals closed in this period." in captions
    assert "No NPS responses in this period." in captions


def test_empty_store_explains_what_to_do(tmp_path, monkeypatch):
    from crm.store import Store

    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    store.ensure_schema()
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    at = run_app()
    assert not at.exception
    assert "python -m crm init-demo" in " ".join(i.value for i in at.info)
    assert len(at.metric) == 0


def test_first_start_fills_an_empty_store_with_demo_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    monkeypatch.setenv("CRM_DEMO_ON_EMPTY", "1")
    at = run_app()
    assert not at.exception
    assert len(at.metric) == COCKPIT_TILES
    assert all(m.value != "—" for m in at.metric)
