"""Satisfaction trends, drill-down and the mix/rate decomposition on hand-made responses."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import satisfaction as sat

Q1 = Period(date(2026, 1, 1), date(2026, 3, 31))


def response(rid, kind, score, day, **extra):
    return {"response_id": rid, "kind": kind, "score": float(score), "responded_at": datetime.fromisoformat(day),
            **extra}


def dataset(rows, period=Q1):
    return frames_from_rows({"survey_responses": rows}).narrow(Filters.create(period))


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
    # Q1 2026 (90 days) against 2 Oct .. 31 Dec 2025: its buckets Oct, Nov, Dec land on Jan, Feb, Mar
    rows = [response("1", "csat", 5, "2025-10-05"), response("2", "csat", 1, "2025-11-20"),
            response("3", "csat", 4, "2025-12-31"), response("4", "csat", 2, "2025-10-01")]  # 1 Oct: before it
    other = sat.comparison_trend(dataset(rows), Q1, "csat", "month")
    assert other["compared_bucket"].to_list() == [date(2025, 10, 1), date(2025, 11, 1), date(2025, 12, 1)]
    assert other["bucket"].to_list() == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert other["score"].to_list() == [1.0, 0.0, 1.0]


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
