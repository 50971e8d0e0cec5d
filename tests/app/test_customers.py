"""AppTest: the churn and retention page shows crm's numbers for the chosen activity window."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_value
from crm.metrics import churn, definition
from crm.narrowing import narrow
from crm.scope import Scope
from tests.app.conftest import open_page, shown

H1 = {"from": "2026-01-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 1, 1), date(2026, 6, 30))


def open_here(query: dict) -> AppTest:
    return open_page("pages/customers.py", query)


@pytest.mark.parametrize("window", [90, 30])
def test_tiles_and_tables_follow_the_activity_window(app_store, window):
    at = open_here({**H1, "window": str(window), "dim": "segment"})
    assert not at.exception, at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    summary = churn.summarise_customers(ds, PERIOD, window).collect().row(0, named=True)
    shown = {m.label: m.value for m in at.metric}
    for key in ("active_customers", "churn_rate"):
        assert shown[definition(key).label] == format_value(summary[key], definition(key).unit)
    by_segment = churn.churn_by(ds, PERIOD, "segment", window)
    table = at.dataframe[0].value
    assert list(table["segment"]) == by_segment["segment"].to_list()
    assert list(table["churn_rate"]) == pytest.approx(by_segment["churn_rate"].to_list())
    # the change in percentage points: (this period's rate - the previous one's) x 100
    points = [None if now is None or before is None else (now - before) * 100
              for now, before in by_segment.select("churn_rate", "churn_rate_previous").iter_rows()]
    assert [None if v != v else v for v in table["change"]] == pytest.approx(points)
    assert at.query_params["window"] == str(window)


def test_a_bad_window_in_the_link_falls_back_with_a_notice(app_store):
    at = open_here({**H1, "window": "7"})
    assert not at.exception
    assert any("Ignored window='7'" in shown(w.value) for w in at.warning)
    assert at.query_params["window"] == "90"
