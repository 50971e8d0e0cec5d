"""Partial buckets (crm.metrics.periods.coverage): which weeks and months a trend may draw as whole."""

from __future__ import annotations

from datetime import date

import polars as pl

from crm.filters import Period
from crm.metrics.periods import Coverage, coverage, with_coverage

DEC_1 = date(2026, 12, 1)


def test_a_month_the_data_reaches_only_on_its_first_day_is_partial():
    # data through 1 December: December covers 1 of its 31 days, November all of its 30
    assert coverage(date(2026, 12, 1), date(2026, 12, 1), "month", DEC_1) == Coverage(1, 31, False)
    assert coverage(date(2026, 12, 1), date(2026, 12, 31), "month", DEC_1) == Coverage(1, 31, False)
    assert coverage(date(2026, 11, 1), date(2026, 11, 30), "month", DEC_1) == Coverage(30, 30, True)
    # the data ends on the month's last day: whole
    assert coverage(date(2026, 11, 1), date(2026, 11, 30), "month", date(2026, 11, 30)) == Coverage(30, 30, True)
    # February 2028 has 29 days; data through the 28th leaves it partial
    assert coverage(date(2028, 2, 1), date(2028, 2, 29), "month", date(2028, 2, 28)) == Coverage(28, 29, False)


def test_a_bucket_cut_by_the_period_is_partial_even_when_the_data_goes_on():
    # a period from 15 November: that month's bucket holds 16 of its 30 days
    assert coverage(date(2026, 11, 15), date(2026, 11, 30), "month", DEC_1) == Coverage(16, 30, False)
    # a period to 20 November while the data runs to 1 December
    assert coverage(date(2026, 11, 1), date(2026, 11, 20), "month", DEC_1) == Coverage(20, 30, False)


def test_weeks_run_monday_to_sunday():
    # 30 Nov 2026 is a Monday: data through Tuesday 1 Dec covers 2 of that week's 7 days
    assert coverage(date(2026, 11, 30), date(2026, 12, 6), "week", DEC_1) == Coverage(2, 7, False)
    assert coverage(date(2026, 11, 23), date(2026, 11, 29), "week", DEC_1) == Coverage(7, 7, True)
    # a week cut by a period starting on Wednesday 18 Nov: 18..22 = 5 days
    assert coverage(date(2026, 11, 18), date(2026, 11, 22), "week", DEC_1) == Coverage(5, 7, False)


def test_no_data_or_data_ending_before_the_bucket_covers_nothing():
    assert coverage(date(2026, 12, 1), date(2026, 12, 31), "month", None) == Coverage(0, 31, False)
    assert coverage(date(2026, 12, 1), date(2026, 12, 31), "month", date(2026, 11, 20)) == Coverage(0, 31, False)


def test_with_coverage_reads_bucket_starts_and_cuts_them_to_the_period():
    # score trends give only the calendar start of each bucket; the period cuts the first and the last
    trend = pl.DataFrame({"bucket": [date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)]})
    out = with_coverage(trend, "week", DEC_1, Period(date(2026, 11, 18), DEC_1))
    assert out["complete"].to_list() == [False, True, False]
    assert out["covered_days"].to_list() == [5, 7, 2]
    assert out["calendar_days"].to_list() == [7, 7, 7]
