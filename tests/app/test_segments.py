"""AppTest: the segment explorer — RFM tables, a simulated box on the scatter filters the grid and another
page, and a saved segment round trip."""

from __future__ import annotations

from datetime import date

import polars as pl
from streamlit.elements.plotly_chart import PlotlySelectionState, PlotlyState
from streamlit.testing.v1 import AppTest

from crm import segments
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.metrics import funnel, rfm
from crm.narrowing import narrow
from crm.scope import Scope
from crm.ui.frame import view_key
from tests.app.conftest import APP, open_page, shown

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 4, 1), date(2026, 6, 30))
SCATTER = view_key("seg_scatter", "recency_days", "monetary", ("monetary",), "")
"""The scatter's widget key on the default view (revenue on a log scale, no segment yet)."""


def open_here(query: dict) -> AppTest:
    return open_page("pages/segments.py", query)


def heading(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.startswith(("Selected customers", "All scored customers")))


def expected_scores(store) -> pl.DataFrame:
    """RFM as of 30 June over every customer, straight from the metric (tested on its own in unit tests)."""
    return rfm.rfm_scores(narrow(load_frames(store), Filters.create(PERIOD, scope=Scope())), PERIOD)


def box_event(x0: float, x1: float, y0: float, y1: float) -> PlotlyState:
    box = [{"xref": "x", "yref": "y", "x": [x0, x1], "y": [y0, y1]}]
    return PlotlyState(selection=PlotlySelectionState(points=[], point_indices=[], box=box, lasso=[]))


def test_the_page_shows_tiers_and_segments_of_the_scored_customers(app_store):
    at = open_here(Q2)
    assert not at.exception, at.exception
    scores = expected_scores(app_store)
    assert heading(at) == f"All scored customers · {scores.height:,}"
    counts = dict(scores.group_by("tier").len().iter_rows())
    shown = {m.label: m.value for m in at.metric}
    for tier in ("High value", "Potential", "Newcomers", "Churn risk"):
        assert shown[tier] == f"{counts.get(tier, 0):,}"
    table = at.dataframe[0].value
    by_segment = dict(scores.group_by("segment").len().iter_rows())
    assert dict(zip(table["segment"], table["customers"], strict=True)) == by_segment


def test_a_box_on_the_scatter_selects_customers_for_the_grid_the_url_and_the_funnel(app_store):
    at = open_here(Q2)
    scores = expected_scores(app_store)
    # the box: ordered within the last 60 days and spent 2,000 to 20,000 in the year (edges included)
    inside = scores.filter(pl.col("recency_days").is_between(0, 60) & pl.col("monetary").is_between(2000, 20000))
    assert 0 < inside.height < scores.height
    at.session_state[SCATTER] = box_event(60, 0, 20000, 2000)  # data values, also on the log axis
    at.run()
    assert not at.exception, at.exception
    assert heading(at).startswith(f"Selected customers · {inside.height:,} ·")
    rule = segments.SegmentRule.from_json(at.query_params["seg"])
    assert rule.box == (0.0, 60.0, 2000.0, 20000.0) and rule.as_of == PERIOD.end
    assert f"{inside.height:,} customers" in " ".join(i.value for i in at.sidebar.info)

    at.switch_page("pages/funnel.py").run()
    assert not at.exception, at.exception
    ids = inside["customer_id"].to_list()
    deals = funnel.deals_behind(narrow(load_frames(app_store), Filters.create(PERIOD, customers=ids, scope=Scope())), PERIOD)
    shown = next(h.value for h in at.subheader if h.value.startswith("All deals"))
    assert shown.startswith(f"All deals in this funnel · {deals.height:,} deals")

    at.sidebar.button(key="flt_clear_customers").click().run()
    assert "seg" not in at.query_params


def test_a_saved_segment_opens_again_with_the_same_customers(app_store):
    at = open_here(Q2)
    at.session_state[SCATTER] = box_event(0, 30, 0, 1e9)
    at.run()
    selected = heading(at)
    at.text_input(key="seg_save_name").input("  Recent buyers  ")
    next(b for b in at.button if b.label == "Save segment").click().run()
    assert not at.exception, at.exception
    saved = segments.list_saved(app_store)
    try:
        assert saved["name"].to_list() == ["Recent buyers"]
        assert "as_of" not in saved["rule"][0]  # the rule, not the day or the ids
        at.sidebar.button(key="flt_clear_customers").click().run()
        assert heading(at).startswith("All scored customers")
        at.selectbox(key="seg_saved_pick").set_value("Recent buyers")
        at.button(key="seg_saved_open").click().run()
        assert not at.exception, at.exception
        assert heading(at) == selected
    finally:
        for name in segments.list_saved(app_store)["name"].to_list():
            segments.delete_segment(app_store, name)


def test_a_broken_segment_in_the_link_is_ignored_with_a_notice(app_store):
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update({**Q2, "seg": '{"tiers": ["gold"]}'})
    at.run()  # the first page a link opens shows the notice
    assert not at.exception, at.exception
    assert any("Ignored the customer segment from the link: unknown tier(s) 'gold'" in shown(w.value) for w in at.warning)
    at.switch_page("pages/segments.py").run()
    assert heading(at).startswith("All scored customers")
    assert "seg" not in at.query_params


def test_the_movement_picker_selects_the_customers_of_one_matrix_cell(app_store):
    at = open_here(Q2)
    frames = load_frames(app_store)
    before_day = PERIOD.previous().end  # 31 March: the previous 91-day period ends the day before 1 April
    now = rfm.rfm_scores(narrow(frames, Filters.create(PERIOD, scope=Scope())), PERIOD)
    before = rfm.rfm_scores(narrow(frames, Filters.create(PERIOD, scope=Scope())), Period(before_day, before_day))
    moved = now.join(before.select("customer_id", was="segment"), on="customer_id").filter(
        (pl.col("was") == "Champions") & (pl.col("segment") == "Loyal"))
    assert moved.height > 0
    at.selectbox(key="seg_move_from").set_value("Champions")
    at.selectbox(key="seg_move_to").set_value("Loyal")
    at.button(key="seg_move_apply").click().run()
    assert not at.exception, at.exception
    assert heading(at).startswith(f"Selected customers · {moved.height:,} ·")
    rule = segments.SegmentRule.from_json(at.query_params["seg"])
    assert (rule.moved_from, rule.segments, rule.since) == (("Champions",), ("Loyal",), before_day)
