"""Service metrics in calendar and business hours, SLA per priority, the watchlist; worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, time

import polars as pl
import pytest

from crm.business_hours import BusinessCalendar
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import service
from crm.metrics.periods import Buckets
from crm.narrowing import narrow
from crm.scope import Scope
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
    return narrow(frames_from_rows({"tickets": TICKETS}, settings=settings), Filters.create(JAN, scope=Scope()))


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


WAITING = [
    # all unanswered and unresolved at the end of January (1 Feb 00:00); a week before it is 25 Jan 00:00
    # high (4 h), created 30 Jan 00:00: waited 48 h, breached 30 Jan 04:00, within the week: at risk
    {"ticket_id": "R", "priority": "high", "created_at": ts("2026-01-30 00:00")},
    # normal (8 h), created 24 Jan 16:00: exactly 8 h waited on 25 Jan 00:00, not yet breached then: at risk,
    # waited 7 d 8 h = 176 h, over by 168 h
    {"ticket_id": "E", "priority": "normal", "created_at": ts("2026-01-24 16:00")},
    # normal, created 24 Jan 15:59: 8 h 1 min waited on 25 Jan 00:00, breached before the week: long-stale,
    # waited 7 d 8 h 1 min = 7 + 481/1440 days
    {"ticket_id": "S", "priority": "normal", "created_at": ts("2026-01-24 15:59")},
    # low (24 h), created 1 Jan: 31 days waited, breached on 2 Jan: long-stale
    {"ticket_id": "O", "priority": "low", "created_at": ts("2026-01-01 00:00")},
    # low, created 31 Jan 12:00: 12 h of 24 (< 75%): neither list
    {"ticket_id": "L", "priority": "low", "created_at": ts("2026-01-31 12:00")},
    # normal, created 31 Jan 10:00, answered exactly at midnight after 31 Jan (after the period): 14 h waited,
    # breached 31 Jan 18:00: at risk
    {"ticket_id": "M", "priority": "normal", "created_at": ts("2026-01-31 10:00"),
     "first_response_at": ts("2026-02-01 00:00")},
    # created exactly at the end: after the period, in neither list
    {"ticket_id": "X", "priority": "urgent", "created_at": ts("2026-02-01 00:00")},
]


def test_the_watchlist_puts_tickets_at_risk_now_first_and_long_stale_ones_apart():
    ds = narrow(frames_from_rows({"tickets": TICKETS + WAITING}), Filters.create(JAN, scope=Scope()))
    watch = service.sla_watchlist(ds, JAN)
    assert watch.select("ticket_id", "sla", "waited_hours", "target_hours", "over_by_hours").rows() == [
        ("E", "breached", 176.0, 8.0, 168.0),
        ("R", "breached", 48.0, 4.0, 44.0),
        ("M", "breached", 14.0, 8.0, 6.0),
        ("Z", "due soon", 7.0, 8.0, -1.0),
    ]
    stale = service.sla_stale(ds, JAN)
    assert stale["ticket_id"].to_list() == ["O", "S"]
    assert stale["waited_days"].to_list() == pytest.approx([31.0, 7 + 481 / 1440])
    assert stale["target_hours"].to_list() == [24.0, 8.0]


def test_the_stale_list_judges_the_target_in_business_hours_on_that_basis():
    # 9-17 Mon-Fri. E (normal, Sat 24 Jan 16:00) has waited no business hour by Sun 25 Jan 00:00 and 40 by the
    # end (Mon 26 .. Fri 30 Jan, 8 h each): breached within the week, at risk. S (Sat 15:59) likewise.
    # O (Thu 1 Jan, low): by 25 Jan 16 working days = 128 h > 24: long-stale.
    ds = narrow(frames_from_rows({"tickets": WAITING}, settings=ServiceSettings(calendar=BusinessCalendar())),
        Filters.create(JAN, scope=Scope()))
    assert service.sla_stale(ds, JAN, "business")["ticket_id"].to_list() == ["O"]
    watch = service.sla_watchlist(ds, JAN, "business")
    assert watch.select("ticket_id", "waited_hours").rows() == [("S", 40.0), ("E", 40.0), ("R", 8.0)]


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


def test_a_ticket_resolved_in_the_period_with_a_later_response_was_answered_when_resolved():
    # R (normal, target 8 h): created 31 Jan 09:00, resolved 12:00, its first response recorded on 1 Feb
    # 08:00, after January's end. At that end the response does not exist yet, so R was first answered
    # when resolved: 3 h, within target (not unanswered, 15 h old and breached).
    # S (normal): answered after 1 h. Same for E, whose response is stamped exactly at midnight after
    # 31 Jan (the period end), so it too was answered at its resolution then, after 2 h.
    tickets = [
        {"ticket_id": "R", "priority": "normal", "created_at": ts("2026-01-31 09:00"),
         "resolved_at": ts("2026-01-31 12:00"), "first_response_at": ts("2026-02-01 08:00")},
        {"ticket_id": "S", "priority": "normal", "created_at": ts("2026-01-10 09:00"),
         "first_response_at": ts("2026-01-10 10:00"), "resolved_at": ts("2026-01-10 11:00")},
        {"ticket_id": "E", "priority": "normal", "created_at": ts("2026-01-31 20:00"),
         "resolved_at": ts("2026-01-31 22:00"), "first_response_at": ts("2026-02-01 00:00")},
    ]
    ds = narrow(frames_from_rows({"tickets": tickets}), Filters.create(JAN, scope=Scope()))
    one = service.service_times(ds, JAN).row(0, named=True)
    assert one["first_response_p50"] == pytest.approx(2.0)  # 1, 2, 3 h
    assert one["first_response_p90"] == pytest.approx(2.8)  # 2 + 0.8 * (3 - 2)
    assert one["sla_breach_rate"] == 0.0
    summary = service.summarise_service(ds, JAN).collect().row(0, named=True)
    assert summary["first_response_p50_hours"] == pytest.approx(2.0)
    assert summary["sla_breach_rate"] == 0.0
    trend = service.service_trend(ds, JAN, "month").row(0, named=True)
    assert (trend["first_response_p50"], trend["sla_breach_rate"]) == (pytest.approx(2.0), 0.0)
    assert service.sla_watchlist(ds, JAN).height == 0  # all three were answered by the end
    bands = service.time_histogram(ds, JAN).filter(pl.col("measure") == "first response")
    assert bands.filter(pl.col("tickets") > 0).rows() == [("first response", "1–2 h", 1), ("first response", "2–4 h", 2)]
    # February sees R's own response: 23 h after creation, breached
    feb = Period(date(2026, 2, 1), date(2026, 2, 28))
    r_only = narrow(frames_from_rows({"tickets": tickets[:1]}), Filters.create(JAN, scope=Scope()))
    assert service.service_times(r_only, JAN)["first_response_p50"].item() == pytest.approx(3.0)
    at_feb = r_only.tickets.select(service.response_hours_at(feb.end_ts)).collect().item()
    assert at_feb == pytest.approx(23.0)  # 31 Jan 09:00 -> 1 Feb 08:00


def test_a_ticket_event_at_midnight_after_the_period_belongs_to_the_next_day():
    # N: created exactly at midnight after 31 Jan: a February ticket (not created, not in the backlog in
    # January). O: created 31 Jan 10:00, resolved exactly at that midnight: still open at January's end.
    # Q (urgent, 1 h): created 31 Jan 22:00, first response exactly at midnight: unanswered at the end,
    # 2 h old then: breached.
    tickets = [
        {"ticket_id": "N", "priority": "normal", "created_at": ts("2026-02-01 00:00")},
        {"ticket_id": "O", "priority": "low", "created_at": ts("2026-01-31 10:00"), "resolved_at": ts("2026-02-01 00:00")},
        {"ticket_id": "Q", "priority": "urgent", "created_at": ts("2026-01-31 22:00"),
         "first_response_at": ts("2026-02-01 00:00")},
    ]
    frames = frames_from_rows({"tickets": tickets})
    feb = Period(date(2026, 2, 1), date(2026, 2, 28))
    jan = service.summarise_service(narrow(frames, Filters.create(JAN, scope=Scope())), JAN).collect().row(0, named=True)
    assert jan["tickets_created"] == 2  # O, Q
    # O: low, 14 h old at the end, within its 24 h; Q: breached -> 1 of 2
    assert jan["sla_breach_rate"] == pytest.approx(0.5)
    assert jan["first_response_p50_hours"] is None and jan["resolution_p50_hours"] is None
    ds = narrow(frames, Filters.create(JAN, scope=Scope()))
    assert service.summarise_backlog(ds, JAN).collect()["backlog"].item() == 2  # O and Q, not N
    assert service.sla_watchlist(ds, JAN)["ticket_id"].to_list() == ["Q"]  # O: 14 of 24 h, under 75%
    # the same moments through the per-bucket pass: January then February
    both = service.summarise_backlog_over(ds, Buckets((JAN, feb))).collect().sort("bucket")
    assert both["backlog"].to_list() == [2, 2]  # Jan: O, Q; Feb: N, Q (O resolved at February's start)
    february = service.summarise_service(narrow(frames, Filters.create(feb, scope=Scope())), feb).collect().row(0, named=True)
    assert february["tickets_created"] == 1  # N
