"""Business-hours durations across nights, weekends, holidays and time zones; worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, time

import polars as pl
import pytest

from crm.business_hours import (
    BusinessCalendar,
    CalendarError,
    business_hours_between,
    business_seconds_at,
    with_business_seconds,
)

OFFICE = BusinessCalendar()  # Monday to Friday, 09:00-17:00, UTC; 2026-01-02 is a Friday


def hours(start: str, end: str, calendar: BusinessCalendar = OFFICE) -> float | None:
    frame = pl.DataFrame({"a": [datetime.fromisoformat(start)], "b": [datetime.fromisoformat(end)]})
    return frame.select(business_hours_between(pl.col("a"), pl.col("b"), calendar)).item()


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("2026-01-02 16:00", "2026-01-05 10:00", 2.0),   # Friday 1 h + Monday 1 h, the weekend skipped
    ("2026-01-02 18:00", "2026-01-05 09:30", 0.5),   # after hours on Friday, half an hour on Monday
    ("2026-01-03 10:00", "2026-01-04 10:00", 0.0),   # all weekend
    ("2026-01-05 08:00", "2026-01-05 08:30", 0.0),   # before opening
    ("2026-01-05 09:00", "2026-01-12 09:00", 40.0),  # a whole working week
    ("2026-01-06 16:30", "2026-01-07 09:15", 0.75),  # across a night
    ("2026-01-06 10:00", "2026-01-06 10:00", 0.0),
])
def test_office_hours(start, end, expected):
    assert hours(start, end) == pytest.approx(expected)


def test_holidays_are_not_worked():
    calendar = BusinessCalendar(holidays=(date(2026, 1, 5),))  # that Monday off
    assert hours("2026-01-02 16:00", "2026-01-06 10:00", calendar) == pytest.approx(2.0)
    assert hours("2026-01-05 10:00", "2026-01-05 12:00", calendar) == 0.0
    # a holiday on a weekend changes nothing
    assert hours("2026-01-02 16:00", "2026-01-05 10:00", BusinessCalendar(holidays=(date(2026, 1, 3),))) == 2.0


def test_time_zone_moves_the_working_day():
    berlin = BusinessCalendar(timezone="Europe/Berlin")  # UTC+1 in January
    # 07:30-08:30 UTC is 08:30-09:30 in Berlin: half an hour of work there, none in a UTC office
    assert hours("2026-01-06 07:30", "2026-01-06 08:30", berlin) == pytest.approx(0.5)
    assert hours("2026-01-06 07:30", "2026-01-06 08:30", OFFICE) == 0.0
    # in July Berlin is UTC+2: 07:00 UTC is 09:00 there
    assert hours("2026-07-07 06:00", "2026-07-07 08:00", berlin) == pytest.approx(1.0)


def test_other_working_week():
    sunday_to_thursday = BusinessCalendar(workdays=(7, 1, 2, 3, 4), start=time(8), end=time(16))
    assert hours("2026-01-02 10:00", "2026-01-03 10:00", sunday_to_thursday) == 0.0  # Friday, Saturday
    assert hours("2026-01-04 08:00", "2026-01-04 16:00", sunday_to_thursday) == 8.0  # Sunday


def test_nulls_stay_null_and_frames_get_columns():
    frame = pl.LazyFrame({"a": [datetime(2026, 1, 5, 9), None], "b": [datetime(2026, 1, 5, 11), datetime(2026, 1, 5)]})
    out = with_business_seconds(frame, {"a": "ba", "b": "bb"}, OFFICE).collect()
    assert ((out["bb"] - out["ba"]) / 3600).to_list() == [2.0, None]
    assert business_seconds_at(datetime(2026, 1, 5, 11), OFFICE) - business_seconds_at(
        datetime(2026, 1, 5, 9), OFFICE) == 7200.0


def test_bad_calendars_are_refused_with_a_reason():
    with pytest.raises(CalendarError, match="time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(CalendarError, match="ends"):
        BusinessCalendar(start=time(17), end=time(9))
    with pytest.raises(CalendarError, match="weekdays"):
        BusinessCalendar(workdays=(0, 8))
    with pytest.raises(CalendarError):
        BusinessCalendar.from_json('{"start": "nine"}')
    same = BusinessCalendar(holidays=(date(2026, 12, 25),), timezone="Europe/Berlin")
    assert BusinessCalendar.from_json(same.to_json()) == same
