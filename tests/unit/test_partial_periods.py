"""Partial periods (issue 12): reports say which buckets are whole (``complete``), charts draw the others apart.

One small world whose data ends on Tuesday 1 December 2026: December holds 1 of its 31 days, November
is whole. Every expected value below is counted by hand from the rows.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
import pytest

from crm import schema
from crm.charts import (
    PARTIAL_OPACITY,
    build_cohort_heatmap,
    build_revenue_chart,
    build_satisfaction_chart,
    build_score_trend_chart,
    build_service_chart,
    sparkline,
)
from crm.cli import main
from crm.dataset import COLUMNS, frames_from_rows
from crm.filters import Filters, Period
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from crm.store import Store

LAST_DAY = date(2026, 12, 1)
NOV_DEC = Period(date(2026, 11, 1), LAST_DAY)

ROWS: dict[str, list[dict[str, object]]] = {
    "customers": [{"customer_id": c, "name": c, "created_at": datetime(2026, 1, 1)} for c in "ABC"],
    "orders": [
        # A: first order in October, again in November and on 1 December; B first in November; C on 1 December
        {"order_id": "R1", "customer_id": "A", "ordered_at": datetime(2026, 10, 5), "amount": 10.0},
        {"order_id": "R2", "customer_id": "A", "ordered_at": datetime(2026, 11, 3), "amount": 20.0},
        {"order_id": "R3", "customer_id": "A", "ordered_at": datetime(2026, 12, 1), "amount": 5.0},
        {"order_id": "R4", "customer_id": "B", "ordered_at": datetime(2026, 11, 10), "amount": 7.0},
        {"order_id": "R5", "customer_id": "C", "ordered_at": datetime(2026, 12, 1), "amount": 9.0},
    ],
    "opportunities": [
        {"opportunity_id": "D1", "customer_id": "A", "amount": 100.0, "created_at": datetime(2026, 10, 1),
         "closed_at": datetime(2026, 11, 10), "stage": "won", "status": "won"},
        {"opportunity_id": "D2", "customer_id": "A", "amount": 30.0, "created_at": datetime(2026, 11, 20),
         "closed_at": datetime(2026, 12, 1, 9), "stage": "won", "status": "won"},
    ],
    "survey_responses": [
        # Wednesday 18 Nov, Tuesday 24 Nov, Tuesday 1 Dec
        {"response_id": "S1", "customer_id": "A", "kind": "csat", "score": 5, "responded_at": datetime(2026, 11, 18)},
        {"response_id": "S2", "customer_id": "A", "kind": "csat", "score": 4, "responded_at": datetime(2026, 11, 24)},
        {"response_id": "S3", "customer_id": "A", "kind": "csat", "score": 2, "responded_at": datetime(2026, 12, 1)},
    ],
}


@pytest.fixture(scope="module")
def frames():
    built = frames_from_rows(ROWS)
    assert built.last_event_date() == LAST_DAY
    return built


def tail(table: pl.DataFrame, n: int = 2) -> list[tuple]:
    return table.select("complete", "covered_days", "calendar_days").tail(n).rows()


# --- reports ---------------------------------------------------------------------------------------------

def test_revenue_by_month_marks_december_partial_and_november_whole(frames):
    table = build_report("revenue_by_month", frames, Filters.create(NOV_DEC, scope=Scope()))
    assert [m.isoformat() for m in table["month"].tail(2)] == ["2026-11-01", "2026-12-01"]
    assert table["revenue_won"].tail(2).to_list() == [100.0, 30.0]
    assert tail(table) == [(True, 30, 30), (False, 1, 31)]
    assert table["complete"].head(10).to_list() == [True] * 10  # Jan..Oct 2026 are over


def test_a_month_cut_by_the_period_end_is_partial_though_the_data_goes_on(frames):
    table = build_report("revenue_by_month", frames, Filters.create(Period(date(2026, 11, 1), date(2026, 11, 20)), scope=Scope()))
    assert table["month"][-1] == date(2026, 11, 1)
    assert tail(table, 1) == [(False, 20, 30)]  # 1..20 November of 30


@pytest.mark.parametrize("name", ["kpi_trend", "win_cycle_trend", "satisfaction_by_month", "service_by_month",
                                  "churn_trend"])
def test_every_monthly_report_carries_complete(frames, name):
    table = build_report(name, frames, Filters.create(NOV_DEC, scope=Scope()))
    assert tail(table) == [(True, 30, 30), (False, 1, 31)]


def test_weekly_trend_buckets_cut_by_the_period_start_or_the_last_day_are_partial(frames):
    # period Wednesday 18 Nov .. Tuesday 1 Dec: weeks of 16 Nov (18..22: 5 days), 23 Nov (whole), 30 Nov (30 Nov, 1 Dec)
    table = build_report("csat_trend", frames, Filters.create(Period(date(2026, 11, 18), LAST_DAY), scope=Scope()),
                         ReportOptions(grain="week"))
    assert [b.isoformat() for b in table["bucket"]] == ["2026-11-16", "2026-11-23", "2026-11-30"]
    assert table["n"].to_list() == [1, 1, 1]
    assert tail(table, 3) == [(False, 5, 7), (True, 7, 7), (False, 2, 7)]
    service = build_report("service_trend", frames, Filters.create(Period(date(2026, 11, 18), LAST_DAY), scope=Scope()),
                           ReportOptions(grain="week"))
    assert tail(service, 3) == [(False, 5, 7), (True, 7, 7), (False, 2, 7)]


def test_a_cohort_cell_is_complete_when_its_month_is_over(frames):
    table = build_report("cohort_retention", frames, Filters.create(NOV_DEC, scope=Scope()))
    cells = {(c.isoformat()[:7], k): (size, n, whole, days)
             for c, k, size, n, whole, days in table.select("cohort", "months_since", "cohort_size", "customers",
                                                            "complete", "covered_days").iter_rows()}
    assert cells == {
        ("2026-10", 0): (1, 1, True, 31),   # A in October
        ("2026-10", 1): (1, 1, True, 30),   # A in November
        ("2026-10", 2): (1, 1, False, 1),   # A on 1 December: December is not over
        ("2026-11", 0): (1, 1, True, 30),   # B
        ("2026-12", 0): (1, 1, False, 1),   # C: a cohort of one day
    }


def test_cli_report_json_has_complete(tmp_path, capsys):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    raw = {name: pl.DataFrame([{c: r.get(c) for c in schema.polars_schema(name, COLUMNS[name])} for r in rows],
                              schema=schema.polars_schema(name, COLUMNS[name]), orient="row")
           for name, rows in ROWS.items()}
    store.replace_business_data(raw)
    code = main(["--db", str(store.url), "report", "revenue_by_month", "--from", "2026-11-01", "--to", "2026-12-01",
                 "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["month"], r["revenue_won"], r["complete"], r["covered_days"], r["calendar_days"]) for r in rows[-2:]] == [
        ("2026-11-01", 100.0, True, 30, 30), ("2026-12-01", 30.0, False, 1, 31)]
    code = main(["--db", str(store.url), "report", "cohort_retention", "--to", "2026-12-01", "--format", "csv"])
    header, *lines = capsys.readouterr().out.splitlines()
    assert code == 0 and "complete" in header.split(",")
    assert lines[-1].startswith("2026-12-01,0,") and ",false," in lines[-1]


# --- figures ---------------------------------------------------------------------------------------------

def test_revenue_chart_draws_the_partial_month_light_hatched_and_labelled(frames):
    fig = build_revenue_chart(build_report("revenue_by_month", frames, Filters.create(NOV_DEC, scope=Scope()))).to_plotly_json()
    bars = fig["data"][0]
    assert bars["x"][-2:] == ["Nov 2026", "Dec 2026 · 1 of 31 days"]
    assert list(bars["marker"]["opacity"][-2:]) == [1.0, PARTIAL_OPACITY]
    assert list(bars["marker"]["pattern"]["shape"][-2:]) == ["", "/"]
    assert bars["hovertext"][-2] == "" and "partial: 1 of 31 days" in bars["hovertext"][-1]
    assert "%{hovertext}" in bars["hovertemplate"]


def test_trend_lines_reach_the_partial_month_dotted_with_a_hover_note(frames):
    trend = build_report("kpi_trend", frames, Filters.create(NOV_DEC, scope=Scope()))
    fig = build_satisfaction_chart(trend)
    csat = [t for t in fig.data if t.legendgroup == "CSAT"]
    dotted, solid, partial = csat
    # CSAT: November 5 and 4 -> 2 of 2 satisfied = 100 %; December 2 -> 0 %
    assert solid.line.dash is None and solid.y[-2:] == (100.0, None)
    assert dotted.line.dash == "dot" and dotted.y[-2:] == (100.0, 0.0) and dotted.y[-3] is None
    assert partial.y[-1] == 0.0 and set(partial.y[:-1]) == {None} and partial.marker.symbol == "circle-open"
    assert "1 of 31 days" in partial.hovertext[-1] and "%{hovertext}" in partial.hovertemplate
    assert fig.data[0].x[-1] == "Dec 2026 · 1 of 31 days"
    service = build_service_chart(trend)
    assert list(service.data[0].marker.opacity[-2:]) == [1.0, PARTIAL_OPACITY]
    assert any(t.line.dash == "dot" and t.legendgroup == "SLA breach rate" for t in service.data[1:])


def test_whole_buckets_only_draw_no_partial_traces(frames):
    trend = build_report("kpi_trend", frames, Filters.create(Period(date(2026, 11, 1), date(2026, 11, 30)), scope=Scope()))
    assert trend["complete"].all()
    fig = build_satisfaction_chart(trend)
    assert [t.name for t in fig.data] == ["NPS", "CSAT"]
    bars = build_revenue_chart(build_report("revenue_by_month", frames, Filters.create(NOV_DEC.previous(), scope=Scope())))
    assert "·" not in "".join(bars.data[0].x)


def test_cohort_heatmap_puts_partial_cells_apart(frames):
    fig = build_cohort_heatmap(build_report("cohort_retention", frames, Filters.create(NOV_DEC, scope=Scope())), "customers")
    whole, partial = fig.data
    # rows Oct, Nov, Dec 2026 cohorts; columns +0, +1, +2
    assert [list(r) for r in whole.z] == [[100.0, 100.0, None], [100.0, None, None], [None, None, None]]
    assert [list(r) for r in partial.z] == [[None, None, 100.0], [None, None, None], [100.0, None, None]]
    assert partial.text[0][2] == "(100%)" and partial.customdata[2][0] == "1 of 31 days"


def test_score_trend_chart_notes_partial_weeks(frames):
    table = build_report("csat_trend", frames, Filters.create(Period(date(2026, 11, 18), LAST_DAY), scope=Scope()),
                         ReportOptions(grain="week"))
    spec = build_score_trend_chart(table, "csat", "week", "Previous period").to_dict()
    (rows,) = spec["datasets"].values()
    assert [r["note"] for r in rows] == ["5 of 7 days", "", "2 of 7 days"]
    assert [r["complete"] for r in rows] == [False, True, False]
    text = json.dumps(spec)
    assert '"strokeDash": [2, 3]' in text and "datum.complete" in text


def test_sparkline_ends_on_the_last_whole_month_and_keeps_the_partial_apart(frames):
    line = sparkline(build_report("kpi_trend", frames, Filters.create(NOV_DEC, scope=Scope())), "revenue_won")
    assert len(line.values) == 11 and line.values[-1] == 100.0  # January .. November
    assert line.partial == [("Dec · 1 of 31 days", 30.0)]
