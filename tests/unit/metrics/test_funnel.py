"""Funnel, velocity, forecast and ageing on hand-made stage histories; answers worked out by hand."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from crm import reports
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import funnel
from crm.narrowing import narrow
from crm.scope import Scope

JAN = Period(date(2026, 1, 1), date(2026, 1, 31))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def deal(oid, amount, created="2026-01-02", status="open", closed=None, **extra):
    return {"opportunity_id": oid, "amount": float(amount), "created_at": ts(created), "status": status,
            "closed_at": ts(closed) if closed else None, **extra}


def hist(oid, *rows):
    return [{"opportunity_id": oid, "stage": s, "entered_at": ts(at)} for s, at in rows]


DEALS = [
    deal("A", 1),  # no history: at the first stage
    deal("B", 2, status="lost", closed="2026-01-20"),
    deal("C", 4, status="won", closed="2026-01-25"),  # skipped qualified
    deal("D", 8),  # history starts at qualified (created = lead)
    deal("E", 16),  # goes back from proposal to qualified and on again
    deal("F", 32),  # three stages at the same moment
    deal("G", 1000, created="2025-12-10"),  # created before the period: not in the cohort
    deal("H", 64, status="won", closed="2026-01-20"),  # lead, then straight to won
    deal("I", 128),  # lost, then re-opened
    deal("J", 256),  # qualified only after the period end
    deal("K", 512, status="won", closed="2026-02-05"),  # won after the period end
]
HISTORY = [
    *hist("B", ("lead", "2026-01-02"), ("qualified", "2026-01-05"), ("proposal", "2026-01-10"), ("lost", "2026-01-20")),
    *hist("C", ("lead", "2026-01-02"), ("proposal", "2026-01-06"), ("negotiation", "2026-01-15"), ("won", "2026-01-25")),
    *hist("D", ("qualified", "2026-01-03"), ("proposal", "2026-01-09")),
    *hist("E", ("lead", "2026-01-02"), ("qualified", "2026-01-04"), ("proposal", "2026-01-06"),
          ("qualified", "2026-01-08"), ("proposal", "2026-01-12"), ("negotiation", "2026-01-18")),
    # same moment, stored in reverse order: ordered by stage position
    *hist("F", ("proposal", "2026-01-05 09:00"), ("qualified", "2026-01-05 09:00"), ("lead", "2026-01-05 09:00")),
    *hist("G", ("lead", "2025-12-10"), ("qualified", "2026-01-04")),
    *hist("H", ("lead", "2026-01-02"), ("won", "2026-01-20")),
    *hist("I", ("lead", "2026-01-02"), ("qualified", "2026-01-04"), ("lost", "2026-01-10"), ("lead", "2026-01-12"),
          ("qualified", "2026-01-14"), ("proposal", "2026-01-20")),
    *hist("J", ("lead", "2026-01-02"), ("qualified", "2026-02-03")),
    *hist("K", ("lead", "2026-01-02"), ("qualified", "2026-01-05"), ("proposal", "2026-01-10"),
          ("negotiation", "2026-01-20"), ("won", "2026-02-05")),
]


@pytest.fixture(scope="module")
def ds():
    frames = frames_from_rows({"opportunities": DEALS, "opportunity_stages": HISTORY})
    return narrow(frames, Filters.create(JAN, scope=Scope()))


def test_cohort_funnel_by_hand(ds):
    # levels: A1 B3 C5 D3 E4 F3 H5 I3 J1 K4
    f = funnel.compute_funnel(ds, JAN, "cohort")
    assert f["stage"].to_list() == ["lead", "qualified", "proposal", "negotiation", "won"]
    assert f["reached"].to_list() == [10, 8, 8, 4, 2]
    # amounts are powers of two: all 10 = 1023; without A (1) and J (256) = 766; C+E+H+K = 596; C+H = 68
    assert f["amount"].to_list() == [1023.0, 766.0, 766.0, 596.0, 68.0]
    assert f["step_conversion"].to_list() == [None, 0.8, 1.0, 0.5, 0.5]
    assert f["cumulative_conversion"].to_list() == [1.0, 0.8, 0.8, 0.4, 0.2]
    assert f["dropped"].to_list() == [None, 2, 0, 4, 2]


def test_strict_funnel_stops_at_the_first_skip(ds):
    # levels: A1 B3 C1 (skipped qualified) D3 E4 F3 H1 (lead -> won skips) I3 J1 K4
    f = funnel.compute_funnel(ds, JAN, "strict")
    assert f["reached"].to_list() == [10, 6, 6, 2, 0]
    assert f["step_conversion"].to_list() == [None, 0.6, 1.0, pytest.approx(1 / 3), 0.0]


def test_snapshot_counts_open_deals_by_stage_at_the_end(ds):
    # open at 1 Feb: A lead, J lead (its qualified comes later), G qualified, D F I proposal, E K negotiation
    s = funnel.compute_funnel(ds, JAN, "snapshot")
    assert s["stage"].to_list() == ["lead", "qualified", "proposal", "negotiation"]
    assert s["deals"].to_list() == [2, 1, 3, 2]
    assert s["amount"].to_list() == [257.0, 1000.0, 168.0, 528.0]
    assert s["weighted_amount"].to_list() == pytest.approx([25.7, 250.0, 84.0, 396.0])


def test_breakdown_by_owner_and_drill_to_the_deals():
    deals = [deal("A", 10, owner="Ann"), deal("B", 20, owner="Ann", status="won", closed="2026-01-20"),
             deal("C", 30, owner="Bob"), deal("D", 40, owner=None)]
    history = hist("C", ("lead", "2026-01-02"), ("proposal", "2026-01-05"))
    ds = narrow(frames_from_rows({"opportunities": deals, "opportunity_stages": history}), Filters.create(JAN, scope=Scope()))
    f = funnel.compute_funnel(ds, JAN, "cohort", by="owner")
    ann = f.filter(pl.col("owner") == "Ann")
    assert ann["reached"].to_list() == [2, 1, 1, 1, 1]
    bob = f.filter(pl.col("owner") == "Bob")
    assert bob["reached"].to_list() == [1, 1, 1, 0, 0]
    assert f.filter(pl.col("owner") == "(none)")["reached"].to_list() == [1, 0, 0, 0, 0]
    behind = funnel.deals_behind(ds, JAN, "cohort", funnel.DealDrill(steps=(3,), by="owner", values=("Ann", "Bob")))
    assert behind["opportunity_id"].to_list() == ["B", "C"]
    assert behind.filter(pl.col("opportunity_id") == "C")["history"].item() == "lead 2026-01-02 → proposal 2026-01-05"
    assert behind.filter(pl.col("opportunity_id") == "B")["stage"].item() == "won"


@pytest.mark.parametrize(("mode", "drill", "rows", "first", "count", "amount"), [
    # cohort: the ten deals created in January (not G), 1 + 2 + ... + 512 = 1023; ties on the day by id
    ("cohort", funnel.DealDrill(), 3, ["A", "B", "C"], 10, 1023.0),
    # levels >= 4: C5 E4 H5 K4 = 4 + 16 + 64 + 512
    ("cohort", funnel.DealDrill(steps=(4,)), 2, ["C", "E"], 4, 596.0),
    # strict levels >= 3: B D E F I K = 2 + 8 + 16 + 32 + 128 + 512
    ("strict", funnel.DealDrill(steps=(3,)), 2, ["B", "D"], 6, 698.0),
    # open at 1 Feb: G (created in December) first, then A D E F I J K by id; 257 + 1000 + 168 + 528
    ("snapshot", funnel.DealDrill(), 3, ["G", "A", "D"], 8, 1953.0),
    # in proposal at the end: D F I = 8 + 32 + 128; fewer deals than rows: all of them
    ("snapshot", funnel.DealDrill(steps=(3,)), 5, ["D", "F", "I"], 3, 168.0),
])
def test_first_deals_lists_the_first_rows_and_counts_them_all(ds, mode, drill, rows, first, count, amount):
    listed = funnel.first_deals(ds, JAN, mode, drill, rows)
    assert listed.rows["opportunity_id"].to_list() == first
    assert (listed.deals, listed.amount) == (count, amount)
    whole = funnel.deals_behind(ds, JAN, mode, drill)
    assert listed.rows.equals(whole.head(rows))  # the same columns, values and order as the whole list's head


def test_first_deals_look_up_stage_and_history_for_the_rows_shown(ds):
    listed = funnel.first_deals(ds, JAN, "cohort", funnel.DealDrill(steps=(4,)), 2).rows
    c, e = listed.to_dicts()
    assert (c["status"], c["stage"], c["closed_at"]) == ("won", "won", ts("2026-01-25"))
    assert c["history"] == "lead 2026-01-02 → proposal 2026-01-06 → negotiation 2026-01-15 → won 2026-01-25"
    assert (e["status"], e["stage"], e["closed_at"]) == ("open", "negotiation", None)
    snapshot = funnel.first_deals(ds, JAN, "snapshot", funnel.DealDrill(), 1).rows
    assert snapshot.select("opportunity_id", "stage", "history").row(0) == (
        "G", "qualified", "lead 2025-12-10 → qualified 2026-01-04")


def test_first_deals_of_a_breakdown_value_and_of_none():
    deals = [deal("A", 10, owner="Ann"), deal("B", 20, owner="Ann", status="won", closed="2026-01-20"),
             deal("C", 30, owner="Bob"), deal("D", 40, owner=None)]
    ds = narrow(frames_from_rows({"opportunities": deals}), Filters.create(JAN, scope=Scope()))
    none = funnel.first_deals(ds, JAN, "cohort", funnel.DealDrill(by="owner", values=("(none)",)), 10)
    assert (none.rows["opportunity_id"].to_list(), none.deals, none.amount) == (["D"], 1, 40.0)
    ann = funnel.first_deals(ds, JAN, "cohort", funnel.DealDrill(by="owner", values=("Ann",)), 1)
    assert (ann.rows["opportunity_id"].to_list(), ann.deals, ann.amount) == (["A"], 2, 30.0)
    nobody = funnel.first_deals(ds, JAN, "cohort", funnel.DealDrill(by="owner", values=("Zoe",)), 10)
    assert (nobody.rows.height, nobody.deals, nobody.amount) == (0, 0, 0.0)


def test_the_report_looks_the_first_deals_up_by_key_within_a_region():
    # deals in two regions, listed in the store's order, not by creation; the history of
    # every deal, Europe's and not, lies mixed in one table
    customers = [{"customer_id": "EU1", "name": "Alpha", "region": "Europe"},
                 {"customer_id": "EU2", "name": "Beta", "region": "Europe"},
                 {"customer_id": "US1", "name": "Gamma", "region": "North America"}]
    deals = [deal("P", 1, created="2026-01-09", customer_id="EU2", region="Europe"),
             deal("Q", 2, created="2026-01-03", customer_id="US1", region="North America"),
             deal("R", 4, created="2026-01-05", customer_id="EU1", region="Europe", status="won", closed="2026-01-20"),
             deal("S", 8, created="2026-01-04", customer_id="EU2", region="Europe"),
             deal("T", 16, created="2026-01-07", customer_id="EU1", region="Europe")]
    history = [*hist("T", ("lead", "2026-01-07"), ("proposal", "2026-01-15")),
               *hist("Q", ("lead", "2026-01-03"), ("qualified", "2026-01-04")),
               *hist("R", ("lead", "2026-01-05"), ("won", "2026-01-20")),
               *hist("S", ("lead", "2026-01-04"), ("qualified", "2026-01-06")),
               *hist("P", ("lead", "2026-01-09"))]
    frames = frames_from_rows({"customers": customers, "opportunities": deals, "opportunity_stages": history})
    europe = Filters.create(JAN, regions=("Europe",), scope=Scope())
    # Europe: P R S T (not Q), 1 + 4 + 8 + 16 = 29; by creation S (4th), R (5th), T (7th), P (9th)
    listed = reports.first_deals(frames, europe, reports.ReportOptions(mode="cohort"), rows=3)
    assert listed.rows["opportunity_id"].to_list() == ["S", "R", "T"]
    assert (listed.deals, listed.amount) == (4, 29.0)
    assert listed.rows["customer_name"].to_list() == ["Beta", "Alpha", "Alpha"]
    assert listed.rows["stage"].to_list() == ["qualified", "won", "proposal"]
    assert listed.rows["history"].to_list() == ["lead 2026-01-04 → qualified 2026-01-06", "lead 2026-01-05 → won 2026-01-20",
                                                "lead 2026-01-07 → proposal 2026-01-15"]
    assert listed.rows.equals(funnel.deals_behind(narrow(frames, europe), JAN).head(3))
    # at the qualified step or beyond: R (won), S, T; in snapshot mode the open ones: P S T
    reached = reports.first_deals(frames, europe.with_selection((("step", "2"),)), reports.ReportOptions(), rows=5)
    assert (reached.rows["opportunity_id"].to_list(), reached.deals, reached.amount) == (["S", "R", "T"], 3, 28.0)
    snapshot = reports.first_deals(frames, europe, reports.ReportOptions(mode="snapshot"), rows=2)
    assert (snapshot.rows["opportunity_id"].to_list(), snapshot.deals, snapshot.amount) == (["S", "T"], 3, 25.0)
    assert snapshot.rows["stage"].to_list() == ["qualified", "proposal"]


def test_stage_velocity_by_hand():
    deals = [deal("V1", 1, created="2026-01-01"), deal("V2", 1, created="2026-01-02")]
    history = [
        *hist("V1", ("lead", "2026-01-01"), ("qualified", "2026-01-03"), ("proposal", "2026-01-07"),
              ("lost", "2026-01-08")),
        *hist("V2", ("lead", "2026-01-02"), ("qualified", "2026-01-06"), ("proposal", "2026-02-10")),
    ]
    ds = narrow(frames_from_rows({"opportunities": deals, "opportunity_stages": history}), Filters.create(JAN, scope=Scope()))
    v = funnel.compute_stage_velocity(ds, JAN)
    rows = {r["stage"]: r for r in v.to_dicts()}
    assert rows["lead"]["deals"] == 2 and rows["lead"]["median_days"] == 3.0 and rows["lead"]["p75_days"] == 3.5
    assert rows["qualified"]["deals"] == 1 and rows["qualified"]["median_days"] == 4.0  # V2 left after the end
    assert rows["proposal"]["median_days"] == 1.0
    assert rows["negotiation"]["deals"] == 0 and rows["negotiation"]["median_days"] is None


FORECAST_DEALS = [
    deal("F1", 100, created="2026-01-05", expected_close_date=date(2026, 2, 10)),
    deal("F2", 200, created="2026-01-10"),  # no expected date: created + median cycle (41 days) = 20 Feb
    deal("F3", 50, created="2025-11-01", expected_close_date=date(2025, 12, 15)),  # overdue
    deal("W1", 999, created="2025-12-01", status="won", closed="2026-01-11"),
]


def test_weighted_forecast_by_expected_close_month():
    history = hist("F1", ("lead", "2026-01-05"), ("proposal", "2026-01-20"))
    ds = narrow(frames_from_rows({"opportunities": FORECAST_DEALS, "opportunity_stages": history}),
                Filters.create(JAN, scope=Scope()))
    assert funnel.median_cycle_days(ds, JAN) == 41.0
    f = funnel.compute_forecast(ds, JAN)
    assert f["month"].to_list() == [date(2025, 12, 1), date(2026, 2, 1)]
    assert f["deals"].to_list() == [1, 2]
    assert f["amount"].to_list() == [50.0, 300.0]
    assert f["weighted_amount"].to_list() == pytest.approx([5.0, 70.0])  # 50*0.1; 100*0.5 + 200*0.1
    assert f["overdue"].to_list() == [True, False]


def test_ageing_lists_deals_stuck_longer_than_n_days():
    history = hist("F1", ("lead", "2026-01-05"), ("proposal", "2026-01-20"))
    ds = narrow(frames_from_rows({"opportunities": FORECAST_DEALS, "opportunity_stages": history}),
                Filters.create(JAN, scope=Scope()))
    assert funnel.compute_ageing(ds, JAN, days=30)["opportunity_id"].to_list() == ["F3"]  # 92 days
    aged = funnel.compute_ageing(ds, JAN, days=10)
    assert aged["opportunity_id"].to_list() == ["F3", "F2", "F1"]
    assert aged["days_in_stage"].to_list() == pytest.approx([92.0, 22.0, 12.0])


def test_win_loss_and_lost_reasons_against_the_previous_period():
    deals = [
        deal("1", 10, owner="Ann", status="won", closed="2026-01-05"),
        deal("2", 20, owner="Ann", status="lost", closed="2026-01-06", lost_reason="Price"),
        deal("3", 30, owner="Bob", status="lost", closed="2026-01-07", lost_reason="Price"),
        deal("4", 40, owner="Bob", status="lost", closed="2026-01-08", lost_reason=None),
        deal("5", 50, owner="Bob", status="won", closed="2025-12-20", created="2025-12-01"),
        deal("6", 60, owner="Bob", status="lost", closed="2025-12-21", created="2025-12-01", lost_reason="Timing"),
    ]
    ds = narrow(frames_from_rows({"opportunities": deals}), Filters.create(JAN, scope=Scope()))
    w = funnel.compute_win_loss(ds, JAN, "owner")
    assert w["owner"].to_list() == ["Bob", "Ann"]  # worst first
    assert w["win_rate"].to_list() == [0.0, 0.5]
    assert w["previous_win_rate"].to_list() == [0.5, None]
    r = funnel.compute_lost_reasons(ds, JAN)
    assert r["lost_reason"].to_list() == ["Price", "(not given)", "Timing"]
    assert r["deals"].to_list() == [2, 1, 0] and r["amount"].to_list() == [50.0, 40.0, 0.0]
    assert r["previous_deals"].to_list() == [0, 0, 1] and r["change"].to_list() == [2, 1, -1]


def test_other_stage_names_work_without_code_changes():
    stages = [
        {"stage": "Prospecting", "position": 1, "win_probability": 0.2, "kind": "open"},
        {"stage": "Engaging", "position": 2, "win_probability": 0.6, "kind": "open"},
        {"stage": "Won", "position": 3, "win_probability": 1.0, "kind": "won"},
        {"stage": "Lost", "position": 4, "win_probability": 0.0, "kind": "lost"},
    ]
    deals = [deal("X", 10), deal("Y", 20, status="won", closed="2026-01-09"), deal("Z", 30)]
    history = [*hist("Z", ("Prospecting", "2026-01-02"), ("Engaging", "2026-01-03"))]
    ds = narrow(frames_from_rows({"opportunities": deals, "opportunity_stages": history, "pipeline_stages": stages}),
        Filters.create(JAN, scope=Scope()))
    f = funnel.compute_funnel(ds, JAN, "cohort")
    assert f["stage"].to_list() == ["Prospecting", "Engaging", "Won"]
    assert f["reached"].to_list() == [3, 2, 1]
    snap = funnel.compute_funnel(ds, JAN, "snapshot")
    assert snap["weighted_amount"].to_list() == pytest.approx([2.0, 18.0])


def test_time_in_stage_counts_deals_that_left_the_stage_within_the_period_whatever_their_creation():
    deals = [deal("G", 1, created="2025-12-10"), deal("V", 1, created="2026-01-02"),
             deal("W", 1, created="2026-01-20"), deal("Z", 1, created="2025-12-01")]
    history = [
        *hist("G", ("lead", "2025-12-10"), ("qualified", "2026-01-04")),  # created in December, left lead in January
        *hist("V", ("lead", "2026-01-02"), ("qualified", "2026-01-06"), ("proposal", "2026-02-10")),
        *hist("W", ("lead", "2026-01-20"), ("qualified", "2026-02-01 00:00")),  # left at January's end: February
        *hist("Z", ("lead", "2025-12-01"), ("qualified", "2025-12-20")),  # left before the period
    ]
    ds = narrow(frames_from_rows({"opportunities": deals, "opportunity_stages": history}), Filters.create(JAN, scope=Scope()))
    jan = {r["stage"]: r for r in funnel.compute_stage_velocity(ds, JAN).to_dicts()}
    # lead left in January: G after 25 days, V after 4; median 14.5, p75 = 4 + 0.75 * (25 - 4)
    assert jan["lead"]["deals"] == 2
    assert (jan["lead"]["median_days"], jan["lead"]["p75_days"]) == (pytest.approx(14.5), pytest.approx(19.75))
    assert jan["qualified"]["deals"] == 0  # V and W leave qualified / lead in February
    feb_period = Period(date(2026, 2, 1), date(2026, 2, 28))
    feb = {r["stage"]: r for r in funnel.compute_stage_velocity(ds, feb_period).to_dicts()}
    assert (feb["lead"]["deals"], feb["lead"]["median_days"]) == (1, pytest.approx(12.0))  # W: 20 Jan -> 1 Feb
    assert (feb["qualified"]["deals"], feb["qualified"]["median_days"]) == (1, pytest.approx(35.0))  # V: 6 Jan -> 10 Feb
