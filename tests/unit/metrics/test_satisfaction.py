"""Satisfaction trends, drill-down and the mix/rate decomposition on hand-made responses."""

from __future__ import annotations

import math
from datetime import date, datetime

import polars as pl
import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import satisfaction as sat
from crm.narrowing import narrow
from crm.scope import Scope

Q1 = Period(date(2026, 1, 1), date(2026, 3, 31))


def response(rid, kind, score, day, **extra):
    return {"response_id": rid, "kind": kind, "score": float(score), "responded_at": datetime.fromisoformat(day),
            **extra}


def dataset(rows, period=Q1):
    return narrow(frames_from_rows({"survey_responses": rows}), Filters.create(period, scope=Scope()))


def test_monthly_nps_trend_with_interval_and_low_confidence():
    rows = [response("1", "nps", 10, "2026-01-05"), response("2", "nps", 10, "2026-01-20"),
            response("3", "nps", 0, "2026-01-31 23:00"), response("4", "nps", 9, "2026-03-02")]
    trend = sat.score_trend(dataset(rows), Q1, "nps", "month")
    assert trend["bucket"].to_list() == [date(2026, 1, 1), date(2026, 3, 1)]  # February: no responses, no point
    jan = trend.row(0, named=True)
    assert jan["n"] == 3 and jan["promoters"] == 2 and jan["detractors"] == 1
    assert jan["score"] == pytest.approx(100 / 3)
    # x = (1, 1, -1): mean 1/3, var = 1 - 1/9 = 8/9; half = 1.96 * 100 * sqrt(8/9 / 3)
    half = 1.96 * 100 * math.sqrt(8 / 27)
    assert (jan["low"], jan["high"]) == pytest.approx((100 / 3 - half, 100 / 3 + half))
    assert trend["low_confidence"].to_list() == [True, True]


def test_weekly_csat_buckets_start_on_monday():
    rows = [response("1", "csat", 5, "2026-01-07"), response("2", "csat", 2, "2026-01-11"),
            response("3", "csat", 4, "2026-01-12")]
    trend = sat.score_trend(dataset(rows), Q1, "csat", "week")
    assert trend["bucket"].to_list() == [date(2026, 1, 5), date(2026, 1, 12)]
    assert trend["score"].to_list() == [0.5, 1.0]
    low, high = sat.wilson_interval(1, 2)
    assert (trend["low"][0], trend["high"][0]) == pytest.approx((low, high))


def test_comparison_with_the_previous_year_lands_on_this_years_months():
    rows = [response("1", "csat", 5, "2025-02-10"), response("2", "csat", 1, "2025-02-11")]
    other = sat.comparison_trend(dataset(rows), Q1, "csat", "month", against="year")
    assert other["bucket"].to_list() == [date(2026, 2, 1)]
    assert other["compared_bucket"].to_list() == [date(2025, 2, 1)]
    assert other["score"].to_list() == [0.5]


def test_the_previous_period_lands_bucket_by_bucket_on_this_one():
    # Q1 2026's three months against the three months before, whole: Oct, Nov, Dec land on Jan, Feb, Mar
    # (issue 12: bucket by bucket, so 1 Oct is in October's bucket, not cut off as by the 90 days before Q1)
    rows = [response("1", "csat", 5, "2025-10-05"), response("2", "csat", 1, "2025-11-20"),
            response("3", "csat", 4, "2025-12-31"), response("4", "csat", 2, "2025-10-01")]
    other = sat.comparison_trend(dataset(rows), Q1, "csat", "month")
    assert other["compared_bucket"].to_list() == [date(2025, 10, 1), date(2025, 11, 1), date(2025, 12, 1)]
    assert other["bucket"].to_list() == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert other["score"].to_list() == [0.5, 0.0, 1.0]  # Oct: 5 and 2 -> 1 of 2 satisfied; Nov: 1; Dec: 4


def test_weeks_a_year_earlier_land_on_the_same_weekday():
    rows = [response("1", "nps", 10, "2025-02-12")]  # the week of Monday 10 Feb 2025
    other = sat.comparison_trend(dataset(rows), Q1, "nps", "week", against="year")
    assert other["bucket"].to_list() == [date(2026, 2, 9)]  # 52 weeks on: Monday 9 Feb 2026


def test_drill_ranks_worst_first_within_a_parent():
    rows = [
        response("1", "csat", 5, "2026-01-05", product="P", team="A", agent="a1", comment="great"),
        response("2", "csat", 1, "2026-01-06", product="P", team="B", agent="b1", comment="slow"),
        response("3", "csat", 4, "2026-01-07", product="P", team="B", agent="b2"),
        response("4", "csat", 1, "2026-01-08", product="Q", team="A", agent="a1"),
    ]
    ds = dataset(rows)
    teams = sat.score_by(ds, Q1, "csat", "team", {"product": "P"})
    assert teams["team"].to_list() == ["B", "A"] and teams["score"].to_list() == [0.5, 1.0]
    agents = sat.score_by(ds, Q1, "csat", "agent", {"product": "P", "team": "B"})
    assert agents["agent"].to_list() == ["b1", "b2"]
    behind = sat.responses_behind(ds, Q1, "csat", {"product": "P", "team": "B", "agent": "b1"})
    assert behind["response_id"].to_list() == ["2"] and behind["comment"].to_list() == ["slow"]


def test_what_moved_splits_the_change_exactly():
    # previous quarter: A 2x5 (1.0), B 2x1 (0.0); this quarter: A 1x5 (1.0, share 1/4), B 5,1,1 (1/3, share 3/4)
    rows = [
        response("1", "csat", 5, "2025-11-01", product="A"), response("2", "csat", 5, "2025-11-02", product="A"),
        response("3", "csat", 1, "2025-11-03", product="B"), response("4", "csat", 1, "2025-11-04", product="B"),
        response("5", "csat", 5, "2026-01-05", product="A"), response("6", "csat", 5, "2026-01-06", product="B"),
        response("7", "csat", 1, "2026-01-07", product="B"), response("8", "csat", 1, "2026-01-08", product="B"),
    ]
    moved = sat.decompose_change(dataset(rows), Q1, "csat", "product")
    rows_by = {r["product"]: r for r in moved.to_dicts()}
    assert rows_by["A"]["mix_effect"] == pytest.approx(-0.25) and rows_by["A"]["rate_effect"] == pytest.approx(0.0)
    assert rows_by["B"]["mix_effect"] == pytest.approx(0.25 * (1 / 3) / 2)
    assert rows_by["B"]["rate_effect"] == pytest.approx((1 / 3) * 1.25 / 2)
    assert moved["total_effect"].sum() == pytest.approx(0.0)  # 0.5 -> 0.5


def test_a_group_new_this_period_takes_its_own_value():
    rows = [
        response("1", "csat", 5, "2025-11-01", product="A"), response("2", "csat", 1, "2025-11-02", product="A"),
        response("3", "csat", 5, "2026-01-05", product="A"), response("4", "csat", 1, "2026-01-06", product="A"),
        response("5", "csat", 5, "2026-01-07", product="C"), response("6", "csat", 5, "2026-01-08", product="C"),
    ]
    moved = sat.decompose_change(dataset(rows), Q1, "csat", "product")
    by = {r["product"]: r for r in moved.to_dicts()}
    assert by["C"]["mix_effect"] == pytest.approx(0.5) and by["C"]["rate_effect"] == 0.0
    assert by["A"]["mix_effect"] == pytest.approx(-0.25)
    assert moved["total_effect"].sum() == pytest.approx(0.25)  # 0.5 -> 0.75
    assert moved["product"].to_list() == ["C", "A"]


def test_what_moved_with_no_responses_before_is_undefined():
    # Q1 has responses, the 90 days before none: the change is undefined, so no mix and no rate
    rows = [response("1", "csat", 5, "2026-01-05", product="A"), response("2", "csat", 1, "2026-01-06", product="A"),
            response("3", "csat", 5, "2026-01-07", product="C")]
    moved = sat.decompose_change(dataset(rows), Q1, "csat", "product").sort("product")
    assert moved["product"].to_list() == ["A", "C"]
    assert moved["n"].to_list() == [2, 1] and moved["n_previous"].to_list() == [0, 0]
    assert moved["score"].to_list() == [0.5, 1.0]  # A: 1 of 2 satisfied; C: 1 of 1
    assert moved["score_previous"].to_list() == [None, None]  # no responses: no score
    for column in ("mix_effect", "rate_effect", "total_effect"):
        assert moved[column].to_list() == [None, None], column
    # and the other way round: responses only in the previous period (Q4 2025's last 90 days)
    before = sat.decompose_change(dataset([response("4", "csat", 4, "2025-12-01", product="A")]), Q1, "csat", "product")
    assert before["n_previous"].to_list() == [1] and before["mix_effect"].to_list() == [None]
    # the chart draws no bars for an undefined change (and does not fail on it)
    from crm.charts import build_what_moved_chart

    figure = build_what_moved_chart(moved, "product", "csat")
    assert [list(bar.x) for bar in figure.data] == [[None, None], [None, None]]


def test_the_previous_period_line_compares_each_month_with_the_same_month_before():
    q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
    # Q2 (91 days) against Q1's three months: April with January, May with February, June with March.
    # 31 Dec lies in the 91 days before Q2 but in none of Q1's months: not on the line.
    rows = [response("0", "csat", 1, "2025-12-31"), response("1", "csat", 5, "2026-01-15"),
            response("2", "csat", 1, "2026-02-10"), response("3", "csat", 5, "2026-02-11"),
            response("4", "csat", 4, "2026-03-31")]
    other = sat.comparison_trend(dataset(rows, q2), q2, "csat", "month")
    assert other["compared_bucket"].to_list() == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert other["bucket"].to_list() == [date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)]
    assert other["score"].to_list() == [1.0, 0.5, 1.0]  # Jan: 5; Feb: 1 and 5; Mar: 4
    assert other["n"].to_list() == [1, 2, 1]
    # a period starting mid-month compares with the same days three months before: 15 Jan .. 31 Mar
    mid = Period(date(2026, 4, 15), date(2026, 6, 30))
    cut = sat.comparison_trend(dataset([response("5", "csat", 1, "2026-01-10"), *rows[1:]], mid), mid, "csat", "month")
    assert cut["n"].to_list() == [1, 2, 1]  # 10 Jan is before 15 Jan
    # weeks: the two weeks from Monday 6 Apr against the two weeks before (from Monday 23 Mar)
    two_weeks = Period(date(2026, 4, 6), date(2026, 4, 19))
    weekly = sat.comparison_trend(dataset([response("6", "csat", 5, "2026-03-24"), response("7", "csat", 1, "2026-04-02")],
                                          two_weeks), two_weeks, "csat", "week")
    assert weekly["compared_bucket"].to_list() == [date(2026, 3, 23), date(2026, 3, 30)]
    assert weekly["bucket"].to_list() == [date(2026, 4, 6), date(2026, 4, 13)]
    assert weekly["score"].to_list() == [1.0, 0.0]


def test_scores_off_their_scale_are_not_responses_in_hand_made_frames():
    # NPS 11 and CSAT 0 and 6 are off their scales: left out. NPS: 10 and 0 -> (1 - 1) / 2 = 0 (with 11
    # counted as a promoter it would be 100 × (2 − 1) / 3). CSAT: 5 alone -> 1.0 (with 6 counted: 2 of 3).
    rows = [response("1", "nps", 10, "2026-01-05", product="P"), response("2", "nps", 0, "2026-01-06", product="P"),
            response("3", "nps", 11, "2026-01-07", product="P"), response("4", "csat", 5, "2026-01-08", product="P"),
            response("5", "csat", 0, "2026-01-09", product="P"), response("6", "csat", 6, "2026-01-10", product="P")]
    _assert_off_scale_left_out(dataset(rows))


def _assert_off_scale_left_out(ds):
    from crm.metrics import compute_metrics

    m = compute_metrics(ds, Q1)
    assert (m["nps_responses"], m["nps"]) == (2, 0.0)
    assert (m["csat_responses"], m["csat"]) == (1, 1.0)
    trend = sat.score_trend(ds, Q1, "nps", "month")
    assert (trend["n"].item(), trend["promoters"].item(), trend["score"].item()) == (2, 1, 0.0)
    assert sat.score_by(ds, Q1, "csat", "product")["n"].to_list() == [1]
    assert sorted(sat.responses_behind(ds, Q1, "nps")["response_id"].to_list()) == ["1", "2"]


def test_scores_off_their_scale_in_the_store_are_left_out_and_reported(tmp_path):
    import sqlalchemy as sa

    from crm import quality, schema
    from crm.dataset import load_frames
    from crm.store import Store

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with Store(url) as store:
        store.ensure_schema()
        with store.transaction() as conn:  # as another tool could write them: no import checks
            conn.execute(sa.insert(schema.survey_responses), [
                {"response_id": "1", "kind": "nps", "score": 10.0, "responded_at": datetime(2026, 1, 5), "product": "P"},
                {"response_id": "2", "kind": "nps", "score": 0.0, "responded_at": datetime(2026, 1, 6), "product": "P"},
                {"response_id": "3", "kind": "nps", "score": 11.0, "responded_at": datetime(2026, 1, 7), "product": "P"},
                {"response_id": "4", "kind": "csat", "score": 5.0, "responded_at": datetime(2026, 1, 8), "product": "P"},
                {"response_id": "5", "kind": "csat", "score": 0.0, "responded_at": datetime(2026, 1, 9), "product": "P"},
                {"response_id": "6", "kind": "csat", "score": 6.0, "responded_at": datetime(2026, 1, 10), "product": "P"},
            ])
        _assert_off_scale_left_out(narrow(load_frames(store), Filters.create(Q1, scope=Scope())))
        found = quality.findings(quality.read_tables(store))
    scale = found.filter((pl.col("table") == "survey_responses") & (pl.col("rule") == quality.SCALE_RULE))
    assert scale["count"].to_list() == [3]  # responses 3, 5, 6
    assert scale["excluded"].to_list() == [True]
