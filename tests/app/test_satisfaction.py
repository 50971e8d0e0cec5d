"""AppTest: the satisfaction page shows crm's NPS/CSAT, drills product → team → agent, and a brush sets the period."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from streamlit.testing.v1 import AppTest

from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_value
from crm.metrics import compute_metrics, definition
from crm.metrics.registry import Unit
from crm.metrics.satisfaction import responses_behind, score_by
from crm.narrowing import narrow
from crm.scope import Scope
from crm.ui.frame import view_key
from tests.app.conftest import open_page, shown

H1 = {"from": "2026-01-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 1, 1), date(2026, 6, 30))


def open_here(query: dict) -> AppTest:
    return open_page("pages/satisfaction.py", query)


def tile_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def pick_first_row(at: AppTest, path: tuple[tuple[str, str], ...], kind: str = "csat") -> None:
    """Simulate choosing the first row of the drill table shown for ``path`` (its key names its view)."""
    key = view_key("sat_drill", path, kind, Filters.create(PERIOD, scope=Scope()))
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}


def ranked(at: AppTest, level: str) -> list[str]:
    """The drill table's rows that have a CSAT score, in the order shown (NPS-only groups follow them)."""
    table = at.dataframe[0].value
    return list(table[table["csat"] != "—"][level])  # an empty cell reads as an em dash


def responses_heading(at: AppTest) -> str:
    return next(shown(m.value) for m in at.markdown if " responses in " in m.value)


@pytest.mark.parametrize(("grain", "vs"), [("month", "previous"), ("week", "year")])
def test_page_renders_with_crm_numbers(app_store, grain, vs):
    at = open_here({**H1, "grain": grain, "vs": vs})
    assert not at.exception, at.exception
    m = compute_metrics(narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope())), PERIOD)
    shown = tile_values(at)
    for key in ("nps", "csat", "nps_responses", "csat_responses"):
        assert shown[definition(key).label] == format_value(m[key], definition(key).unit), key
    assert at.query_params["grain"] == grain and at.query_params["vs"] == vs
    assert responses_heading(at) == f"**{m['csat_responses']:,} CSAT responses in all products** (newest first, with comments)"


def test_a_drill_link_opens_the_agents_of_a_team(app_store):
    at = open_here({**H1, "drill": ["product:Data Connect", "team:Tier 1"]})
    assert not at.exception, at.exception
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    within = {"product": "Data Connect", "team": "Tier 1"}
    agents = score_by(ds, PERIOD, "csat", "agent", within)
    assert ranked(at, "agent") == agents["agent"].to_list()  # worst first, as crm ranks them
    table = at.dataframe[0].value
    # the cells are text as the tiles write them (an empty one an em dash, never "None")
    assert list(table["csat"]) == [format_value(v, Unit.RATIO) for v in agents["score"]]
    assert "nps" not in table.columns  # NPS responses carry no team: no NPS column at agent level
    behind = responses_behind(ds, PERIOD, "csat", within)
    assert responses_heading(at).startswith(f"**{behind.height:,} CSAT responses in Data Connect › Tier 1**")


def test_choosing_rows_drills_down_to_an_agent(app_store):
    at = open_here(H1)
    ds = narrow(load_frames(app_store), Filters.create(PERIOD, scope=Scope()))
    worst_product = score_by(ds, PERIOD, "csat", "product")["product"][0]
    pick_first_row(at, ())
    at.run()
    assert not at.exception, at.exception
    assert at.query_params["drill"] == f"product:{worst_product}"
    teams = score_by(ds, PERIOD, "csat", "team", {"product": worst_product})
    assert ranked(at, "team") == teams["team"].to_list()

    pick_first_row(at, (("product", worst_product),))
    at.run()
    worst_team = teams["team"][0]
    assert list(at.query_params["drill"]) == [f"product:{worst_product}", f"team:{worst_team}"]
    agents = score_by(ds, PERIOD, "csat", "agent", {"product": worst_product, "team": worst_team})
    assert ranked(at, "agent") == agents["agent"].to_list()

    pick_first_row(at, (("product", worst_product), ("team", worst_team)))
    at.run()
    agent = agents["agent"][0]
    within = {"product": worst_product, "team": worst_team, "agent": agent}
    behind = responses_behind(ds, PERIOD, "csat", within)
    assert responses_heading(at).startswith(f"**{behind.height:,} CSAT responses in {worst_product} › {worst_team} › {agent}**")

    at.button(key="sat_crumb_0").click().run()  # back to all products
    assert "drill" not in at.query_params
    assert next(iter(at.dataframe[0].value["product"])) == worst_product


def test_a_bad_drill_link_gives_a_notice(app_store):
    at = open_here({**H1, "drill": ["team:Tier 1"]})
    assert not at.exception
    assert any("drill path goes product → team → agent" in shown(w.value) for w in at.warning)
    assert "product" in at.dataframe[0].value.columns


def test_a_drill_with_no_responses_shows_an_empty_table(app_store):
    """Customer C0000142 answered surveys in H1 about Cockpit Core only (demo data, seed 7): drilled into Data
    Connect, the table has no rows (and was once left with no columns at all, which raised)."""
    at = open_here({**H1, "customers": ["C0000142"], "drill": ["product:Data Connect"]})
    assert not at.exception, at.exception
    drill = at.dataframe[0].value
    assert len(drill) == 0 and "team" in drill.columns


def _ms(day: date) -> float:
    return (datetime.combine(day, datetime.min.time()) - datetime(1970, 1, 1)).total_seconds() * 1000


def test_a_brush_on_the_trend_sets_the_period(app_store):
    from streamlit.elements.vega_charts import VegaLiteState

    at = open_here(H1)
    # brushed from mid-February to early April: the March and April points -> 1 March .. 30 April
    at.session_state["sat_trend_csat"] = VegaLiteState(
        selection={"brush": {"bucket": [_ms(date(2026, 2, 20)), _ms(date(2026, 4, 3))]}}
    )
    at.run()
    assert not at.exception, at.exception
    assert (at.query_params["from"], at.query_params["to"]) == ("2026-03-01", "2026-04-30")
    march_april = Period(date(2026, 3, 1), date(2026, 4, 30))
    m = compute_metrics(narrow(load_frames(app_store), Filters.create(march_april, scope=Scope())), march_april)
    assert tile_values(at)["CSAT"] == format_value(m["csat"], definition("csat").unit)
    assert at.sidebar.date_input(key="flt_range").value == (march_april.start, march_april.end)
