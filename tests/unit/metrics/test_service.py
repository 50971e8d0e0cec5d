"""Service metrics in calendar and business hours, SLA per priority, the watchlist; worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from crm.business_hours import BusinessCalendar
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import service
from crm.settings import ServiceSettings, SettingsError, load_settings, parse_holidays, save_settings
from crm.store import Store

JAN = Period(date(2026, 1, 1), date(2026, 1, 31))  # 2 Jan 2026 is a Friday


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


TICKETS = [
    # Friday 16:00 -> Monday 10:00: 66 calendar hours, 2 business hours (Fri 16-17, Mon 9-10)
    {"ticket_id": "W", "priority": "high", "team": "A", "created_at": ts("2026-01-02 16:00"),
     "first_response_at": ts("2026-01-05 10:00"), "resolved_at": ts("2026-01-05 12:00")},
    # Tuesday 16:30 -> Wednesday 09:15 across a night: 16.75 h calendar, 0.75 h business
    {"ticket_id": "N", "priority": "normal", "team": "A", "created_at": ts("2026-01-06 16:30"),
     "first_response_at": ts("2026-01-07 09:15"), "resolved_at": ts("2026-01-07 16:30")},
    # urgent, answered within the hour
    {"ticket_id": "U", "priority": "urgent", "team": "B", "created_at": ts("2026-01-08 10:00"),
     "first_response_at": ts("2026-01-08 10:30"), "resolved_at": ts("2026-01-08 11:00")},
    # no priority (judged as normal), never answered, created on the last afternoon: 7 h old at the end
    {"ticket_id": "Z", "priority": None, "team": "B", "created_at": ts("2026-01-31 17:00")},
]


def dataset(calendar: BusinessCalendar | None = None):
    settings = ServiceSettings(calendar=calendar) if calendar else None
    return frames_from_rows({"tickets": TICKETS}, settings=settings).narrow(Filters.create(JAN))


def test_calendar_and_business_hours_differ_across_weekends_and_nights():
    ds = dataset()
    calendar = service.service_times(ds, JAN, "team", "calendar").sort("team")
    business = service.service_times(ds, JAN, "team", "business").sort("team")
    # team A: first responses 66 h and 16.75 h calendar; 2 h and 0.75 h business; linear p50 = their mean
    assert calendar["first_response_p50"][0] == pytest.approx((66 + 16.75) / 2)
    assert business["first_response_p50"][0] == pytest.approx((2 + 0.75) / 2)
    # resolutions 68 h and 24 h calendar; Fri 1 h + Mon 3 h = 4 h and 0.5 h + 7.5 h = 8 h business
    assert calendar["resolution_p90"][0] == pytest.approx(24 + 0.9 * (68 - 24))
    assert business["resolution_p50"][0] == pytest.approx(6.0)


def test_high_priority_breaches_in_calendar_hours_but_not_in_business_hours():
    ds = dataset()
    calendar = service.sla_by_priority(ds, JAN, "calendar")
    business = service.sla_by_priority(ds, JAN, "business")
    rows = {r["priority"]: r for r in calendar.iter_rows(named=True)}
    assert [r["priority"] for r in calendar.iter_rows(named=True)] == ["urgent", "high", "normal", "low"]
    assert (rows["high"]["tickets"], rows["high"]["breached"]) == (1, 1)  # 66 h > 4 h
    assert (rows["normal"]["tickets"], rows["normal"]["breached"]) == (2, 1)  # N: 16.75 h > 8 h; Z: 7 h waited
    assert (rows["urgent"]["breached"], rows["low"]["tickets"]) == (0, 0)
    assert rows["low"]["sla_breach_rate"] is None
    by_business = {r["priority"]: r["breached"] for r in business.iter_rows(named=True)}
    assert by_business == {"urgent": 0, "high": 0, "normal": 0, "low": 0}  # 2 h, 0.75 h, Z: Saturday, 0 h worked


def test_a_holiday_and_another_time_zone_change_business_time():
    holiday = BusinessCalendar(holidays=(date(2026, 1, 5),))  # the Monday W was answered on is a holiday
    ds = dataset(holiday)
    w = service.service_times(ds, JAN, "priority", "business").filter(priority="high")
    assert w["first_response_p50"][0] == pytest.approx(1.0)  # only Friday 16-17 counts; Monday is a holiday
    tokyo = BusinessCalendar(timezone="Asia/Tokyo")  # 09:00-17:00 Tokyo = 00:00-08:00 UTC
    u = service.service_times(dataset(tokyo), JAN, "priority", "business").filter(priority="urgent")
    assert u["first_response_p50"][0] == pytest.approx(0.0)  # 10:00-10:30 UTC is 19:00 in Tokyo: after hours


def test_the_watchlist_lists_unanswered_tickets_near_or_past_target():
    ds = dataset()
    watch = service.sla_watchlist(ds, JAN)
    # Z: 7 h of its 8 h target have passed at the end (>= 75%): due soon
    assert watch.select("ticket_id", "sla").rows() == [("Z", "due soon")]
    assert watch["waited_hours"][0] == pytest.approx(7.0)


def test_holidays_are_parsed_line_by_line():
    assert parse_holidays("2026-12-25\n\n# office closed\n2026-01-01  # new year\n2026-12-25") == (
        date(2026, 1, 1), date(2026, 12, 25))
    with pytest.raises(SettingsError, match="line 2: '25/12/2026'"):
        parse_holidays("2026-01-01\n25/12/2026")


def test_settings_round_trip_through_the_store_and_bump_the_version(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.ensure_schema()
    assert load_settings(store) == ServiceSettings()
    wanted = ServiceSettings(
        calendar=BusinessCalendar(workdays=(1, 2, 3, 4), start=time(8, 30), end=time(16, 0), timezone="Europe/Berlin",
                                  holidays=(date(2026, 12, 24),)),
        sla_targets=(("urgent", 0.5), ("high", 2.0), ("normal", 8.0), ("low", 48.0)),
    )
    assert save_settings(store, wanted) == 1
    assert load_settings(store) == wanted
    store.close()


def test_the_distribution_bins_times_into_bands():
    histogram = service.time_histogram(dataset(), JAN, "business")
    first = dict(histogram.filter(measure="first response").select("band", "tickets").rows())
    # business first responses: 2 h (W), 0.75 h (N), 0.5 h (U); Z never answered
    assert (first["0–1 h"], first["1–2 h"], first["2–4 h"]) == (2, 0, 1)
    assert sum(first.values()) == 3
    resolution = dict(histogram.filter(measure="resolution").select("band", "tickets").rows())
    assert (resolution["1–2 h"], resolution["4–8 h"], resolution["8–12 h"]) == (1, 1, 1)  # 1 h, 4 h, 8 h: left-closed
