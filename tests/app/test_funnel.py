"""AppTest: the funnel page renders in every mode and breakdown, and a chart selection filters the deals."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.metrics import funnel
from crm.narrowing import narrow
from crm.scope import Scope
from tests.app.conftest import open_page

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 4, 1), date(2026, 6, 30))


def open_funnel(query: dict) -> AppTest:
    return open_page("pages/funnel.py", query)


def grid_heading(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.startswith(("Deals behind", "All deals")))


@pytest.mark.parametrize("mode", funnel.MODES)
def test_every_mode_renders_with_crm_numbers(app_store, mode):
    at = open_funnel({**Q2, "mode": mode})
    assert not at.exception, at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    table = funnel.compute_funnel(ds, PERIOD, mode)
    deals = funnel.deals_behind(ds, PERIOD, mode)
    assert f"{deals.height:,} deals" in grid_heading(at)
    if mode != "snapshot":
        assert deals.height == table["reached"][0]
    else:
        assert deals.height == table["deals"].sum()
    assert at.query_params["mode"] == mode


@pytest.mark.parametrize("by", funnel.BREAKDOWNS)
def test_every_breakdown_renders(app_store, by):
    at = open_funnel({**Q2, "by": by})
    assert not at.exception, at.exception
    assert at.query_params["by"] == by


def test_selection_from_the_link_filters_the_deals(app_store):
    at = open_funnel({**Q2, "select": ["step:4", "owner:Ava Thompson"]})
    assert not at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    expected = funnel.deals_behind(ds, PERIOD, "cohort", funnel.DealDrill((4,), "owner", ("Ava Thompson",)))
    assert expected.height > 0
    assert grid_heading(at).startswith(f"Deals behind the selection · {expected.height:,} deals")
    assert "Chart selection" in " ".join(i.value for i in at.sidebar.info)


def test_a_simulated_box_selection_on_the_funnel_filters_the_grid(app_store):
    from streamlit.elements.plotly_chart import PlotlySelectionState, PlotlyState

    at = open_funnel(Q2)
    everything = grid_heading(at)
    points = [{"customdata": {"0": 5}, "curve_number": 0, "point_number": 4, "point_index": 4, "x": 10, "y": "won"}]
    at.session_state["fun_chart"] = PlotlyState(selection=PlotlySelectionState(points=points, point_indices=[4],
                                                                               box=[], lasso=[]))
    at.run()
    assert not at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    won = funnel.deals_behind(ds, PERIOD, "cohort", funnel.DealDrill(steps=(5,)))
    assert grid_heading(at).startswith(f"Deals behind the selection · {won.height:,} deals")
    assert grid_heading(at) != everything
    assert at.query_params["select"] == "step:5"
    at.sidebar.button(key="flt_clear_selection").click().run()
    assert grid_heading(at) == everything


TAB_WORDS = {"Velocity": "Time in stage", "Win / loss": "Win rate = won", "Forecast & ageing": "Expected close"}
"""Each tab's caption: it is on the page only while its tab runs."""


def open_tabs(at: AppTest) -> list[str]:
    captions = " ".join(c.value for c in at.caption)
    return [tab for tab, words in TAB_WORDS.items() if words in captions]


def ageing_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "open deals in their stage longer than" in m.value)


@pytest.mark.parametrize("by", funnel.BREAKDOWNS)
def test_only_the_open_tab_runs_and_the_forecast_tab_keeps_its_days(app_store, by):
    at = open_funnel({**Q2, "by": by})
    assert not at.exception, at.exception
    assert open_tabs(at) == ["Velocity"] and not at.number_input
    for visit, tab in enumerate(("Win / loss", "Forecast & ageing", "Velocity", "Forecast & ageing")):
        at.session_state["fun_tab"] = tab
        at.run()
        assert not at.exception, at.exception
        assert open_tabs(at) == [tab]
        if visit == 1:
            assert at.number_input(key="fun_days").value == 30
            at.number_input(key="fun_days").set_value(90).run()  # kept while another tab is open
    assert at.number_input(key="fun_days").value == 90
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    stuck = funnel.compute_ageing(ds, PERIOD, 90)  # the numbers' own tests are in tests/unit
    assert stuck.height > 0
    assert ageing_line(at).startswith(f"**{stuck.height:,} open deals in their stage longer than 90 days**")
