"""AppTest: the service page shows crm's numbers in calendar and business hours, and saves new SLA targets."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from crm import demo
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_value, tickets
from crm.metrics import compute_metrics, definition, service
from crm.metrics.registry import Unit
from crm.narrowing import narrow
from crm.scope import Scope
from crm.settings import load_settings
from crm.store import Store
from tests.app.conftest import open_page
from tests.conftest import AS_OF, SEED

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 4, 1), date(2026, 6, 30))


def open_here(query: dict) -> AppTest:
    return open_page("pages/service.py", query)


def table_with(at: AppTest, column: str):
    """The shown table that has ``column`` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize(("basis", "suffix"), [("calendar", "_hours"), ("business", "_business_hours")])
def test_tiles_and_tables_show_crm_numbers(app_store, basis, suffix):
    at = open_here({**Q2, "basis": basis, "split": "priority"})
    assert not at.exception, at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    m = compute_metrics(ds, PERIOD)
    shown = {metric.label: metric.value for metric in at.metric}
    for key in (f"first_response_p50{suffix}", f"resolution_p90{suffix}", "backlog", "reopened_tickets"):
        assert shown[definition(key).label] == format_value(m[key], definition(key).unit), key
    times = service.service_times(ds, PERIOD, "priority", basis)
    table = table_with(at, "first_response_p90")
    assert list(table["priority"]) == times["priority"].to_list()
    # shown as text, one decimal and the unit, an em dash for none (never "None")
    assert list(table["first_response_p90"]) == [format_value(v, Unit.HOURS) for v in times["first_response_p90"]]
    watch = service.sla_watchlist(ds, PERIOD, basis)
    assert any(f"At risk now: {tickets(watch.height)} unanswered on 30 Jun 2026" in md.value for md in at.markdown)
    stale = service.sla_stale(ds, PERIOD, basis)
    assert stale.height > 0  # the demo's oldest unanswered tickets: counted apart, not topping the list
    assert [e.label for e in at.expander if e.label.startswith("Long-stale")] == [
        f"Long-stale: {tickets(stale.height, 'open ticket')} past their target for more than 7 days"]
    assert set(watch["ticket_id"]).isdisjoint(stale["ticket_id"])
    assert all(h <= 7 * 24 for h in watch["over_by_hours"])  # no ticket breached more than a week ago leads the list


def test_calendar_and_business_medians_differ(app_store):
    calendar = open_here({**Q2, "basis": "calendar"})
    business = open_here({**Q2, "basis": "business"})
    first = definition("first_response_p50_hours").label
    first_business = definition("first_response_p50_business_hours").label
    shown_calendar = {m.label: m.value for m in calendar.metric}[first]
    shown_business = {m.label: m.value for m in business.metric}[first_business]
    assert shown_calendar != shown_business


def test_saving_new_sla_targets_changes_the_breach_rate(app_store, tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")  # its own copy: saving bumps the data version
    store.replace_business_data(demo.generate(demo.DemoSpec(seed=SEED, scale=0.25, as_of=AS_OF)))
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    at = open_here(Q2)
    at.number_input(key="svc_t_normal").set_value(48.0)
    at.button(key="FormSubmitter:svc_settings-Save calendar and targets").click().run()
    assert not at.exception, at.exception
    assert dict(load_settings(store).targets)["normal"] == 48.0
    assert store.data_version() == 2
    sla = table_with(at, "target_hours")
    normal = sla[sla["priority"] == "normal"].iloc[0]
    assert normal["target_hours"] == 48.0
    ds = narrow(load_frames(store), Filters.create(PERIOD, scope=Scope()))
    expected = service.sla_by_priority(ds, PERIOD).filter(priority="normal")
    assert normal["breached"] == expected["breached"][0]
    store.close()
