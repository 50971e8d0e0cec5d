"""Every cockpit metric on tiny hand-made frames; the expected values are worked out by hand."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from crm.dataset import frames_from_rows, load_frames
from crm.filters import Filters, Period, month_periods
from crm.metrics import compute_metrics, compute_with_previous, monthly_trend, tiles
from crm.metrics.kpis import METRIC_SETS
from crm.metrics.periods import Buckets
from crm.metrics.sales import summarise_revenue_over, summarise_sales_over
from crm.metrics.satisfaction import nps_interval, wilson_interval
from crm.narrowing import narrow
from crm.scope import Scope

JANUARY = Period(date(2026, 1, 1), date(2026, 1, 31))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def metrics_for(tables, period=JANUARY, **dims):
    frames = frames_from_rows(tables)
    return compute_metrics(narrow(frames, Filters.create(period, **dims, scope=Scope())), period)


DEALS = [
    # won in January after 21 days
    {"opportunity_id": "D1", "amount": 100.0, "created_at": ts("2025-12-20"), "closed_at": ts("2026-01-10"),
     "status": "won"},
    {"opportunity_id": "D2", "amount": 50.0, "created_at": ts("2026-01-05"), "closed_at": ts("2026-01-20"),
     "status": "lost"},
    # closed exactly at the period end (midnight after 31 Jan): that close belongs to February, so
    # January's end still sees D3 open (at lead, no history row)
    {"opportunity_id": "D3", "amount": 70.0, "created_at": ts("2026-01-15"), "closed_at": ts("2026-02-01"),
     "status": "won"},
    # open, no history row: at the first open stage (lead, 0.1)
    {"opportunity_id": "D4", "amount": 200.0, "created_at": ts("2026-01-31 23:00"), "status": "open"},
    # open, skipped 'qualified'; its move to negotiation happens after the period end
    {"opportunity_id": "D5", "amount": 1000.0, "created_at": ts("2025-11-01"), "status": "open"},
    {"opportunity_id": "D6", "amount": 300.0, "created_at": ts("2026-01-02"), "closed_at": ts("2026-01-12"),
     "status": "won"},
]
HISTORY = [
    {"opportunity_id": "D5", "stage": "lead", "entered_at": ts("2025-11-01")},
    {"opportunity_id": "D5", "stage": "proposal", "entered_at": ts("2026-01-10")},
    {"opportunity_id": "D5", "stage": "negotiation", "entered_at": ts("2026-02-05")},
]


def test_sales_metrics_by_hand():
    m = metrics_for({"opportunities": DEALS, "opportunity_stages": HISTORY})
    assert m["revenue_won"] == 400.0
    assert m["won_deals"] == 2 and m["lost_deals"] == 1
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["new_opportunities"] == 4  # D2, D3, D4, D6
    assert m["sales_cycle_days"] == pytest.approx(15.5)  # median of 21 and 10 days
    assert m["pipeline_value"] == 1270.0  # D3 + D4 + D5: 70 + 200 + 1000
    assert m["weighted_pipeline"] == pytest.approx(70 * 0.1 + 200 * 0.1 + 1000 * 0.5)
    assert m["open_deals"] == 3


def test_stage_at_same_moment_takes_higher_position_last():
    moment = ts("2026-01-10 09:00")
    deals = [{"opportunity_id": "D7", "amount": 100.0, "created_at": ts("2026-01-01"), "status": "open"}]
    history = [  # stored in reverse order on purpose
        {"opportunity_id": "D7", "stage": "proposal", "entered_at": moment},
        {"opportunity_id": "D7", "stage": "qualified", "entered_at": moment},
    ]
    m = metrics_for({"opportunities": deals, "opportunity_stages": history})
    assert m["weighted_pipeline"] == pytest.approx(50.0)  # proposal, 0.5


def test_no_closed_deals_gives_undefined_win_rate_and_zero_revenue():
    deals = [{"opportunity_id": "D1", "amount": 10.0, "created_at": ts("2026-01-03"), "status": "open"}]
    m = metrics_for({"opportunities": deals})
    assert m["win_rate"] is None and m["sales_cycle_days"] is None
    assert m["revenue_won"] == 0.0 and m["new_opportunities"] == 1


def _responses(kind, scores, day="2026-01-15"):
    return [{"response_id": f"{kind}{i}", "kind": kind, "score": float(s), "responded_at": ts(day)}
            for i, s in enumerate(scores)]


def test_nps_and_csat_by_hand():
    responses = (
        _responses("nps", [10, 9, 8, 6, 0])
        + [{"response_id": "late", "kind": "nps", "score": 10.0, "responded_at": ts("2026-02-01")}]
        + _responses("csat", [5, 4, 3, 1])
    )
    m = metrics_for({"survey_responses": responses})
    assert m["nps"] == 0.0 and m["nps_responses"] == 5  # 2 promoters, 2 detractors, the late one excluded
    assert m["csat"] == 0.5 and m["csat_responses"] == 4


def test_all_detractors_and_no_responses():
    m = metrics_for({"survey_responses": _responses("nps", [0, 3, 6])})
    assert m["nps"] == -100.0
    assert m["csat"] is None and m["csat_responses"] == 0


def test_intervals_by_hand():
    low, high = nps_interval(promoters=2, passives=1, detractors=2)
    # var of (+1,+1,0,-1,-1) = 4/5; half width = 1.96 * 100 * sqrt(0.8 / 5) = 78.4
    assert (low, high) == pytest.approx((-78.4, 78.4))
    assert nps_interval(0, 3, 0) == pytest.approx((0.0, 0.0))  # all passives: no spread
    assert nps_interval(0, 0, 0) is None
    low, high = wilson_interval(2, 4)
    assert (low, high) == pytest.approx((0.150035, 0.849965), abs=1e-6)
    assert wilson_interval(0, 0) is None


TICKETS = [
    # urgent, answered after 1.5 h: a breach
    {"ticket_id": "T1", "priority": "urgent", "created_at": ts("2026-01-10 10:00"),
     "first_response_at": ts("2026-01-10 11:30"), "resolved_at": ts("2026-01-10 14:00")},
    # no first response recorded but resolved: first answered at resolution (2 h)
    {"ticket_id": "T2", "priority": "normal", "created_at": ts("2026-01-10 10:00"),
     "resolved_at": ts("2026-01-10 12:00")},
    # never answered, but only 12 h old at the period end: low target is 24 h
    {"ticket_id": "T3", "priority": "low", "created_at": ts("2026-01-31 12:00")},
    # never answered, 12 days old at the end: a breach
    {"ticket_id": "T4", "priority": "high", "created_at": ts("2026-01-20 00:00")},
    # empty priority uses normal (8 h); answered exactly at 8 h is not a breach
    {"ticket_id": "T5", "priority": None, "created_at": ts("2026-01-15 00:00"),
     "first_response_at": ts("2026-01-15 08:00"), "resolved_at": ts("2026-01-16 00:00")},
    # created before the period, resolved after it: only in the backlog
    {"ticket_id": "T6", "priority": "normal", "created_at": ts("2025-12-31 20:00"),
     "first_response_at": ts("2025-12-31 21:00"), "resolved_at": ts("2026-02-03 00:00")},
    # answered after the period end: not answered as of the end, only 4 h old then
    {"ticket_id": "T7", "priority": "normal", "created_at": ts("2026-01-31 20:00"),
     "first_response_at": ts("2026-02-01 02:00")},
]


def test_service_metrics_by_hand():
    m = metrics_for({"tickets": TICKETS})
    assert m["tickets_created"] == 6
    assert m["sla_breach_rate"] == pytest.approx(2 / 6)  # T1, T4
    # first responses by the end: 1.5, 2, 8 h; linear p90 = 2 + 0.8 * (8 - 2)
    assert m["first_response_p50_hours"] == pytest.approx(2.0)
    assert m["first_response_p90_hours"] == pytest.approx(6.8)
    # resolutions by the end: 4, 2, 24 h
    assert m["resolution_p50_hours"] == pytest.approx(4.0)
    assert m["resolution_p90_hours"] == pytest.approx(20.0)
    assert m["backlog"] == 4  # T3, T4, T6, T7


def test_empty_period_is_undefined_not_nan():
    m = metrics_for({})
    assert m["tickets_created"] == 0 and m["backlog"] == 0
    for key in ("sla_breach_rate", "first_response_p50_hours", "nps", "csat", "win_rate", "churn_rate"):
        assert m[key] is None, key


APRIL = Period(date(2026, 4, 1), date(2026, 4, 30))
ORDERS = [
    {"order_id": "O1", "customer_id": "A", "ordered_at": ts("2026-01-05 10:00"), "amount": 10.0},  # one order
    {"order_id": "O2", "customer_id": "B", "ordered_at": ts("2026-01-01 09:00"), "amount": 10.0},
    {"order_id": "O3", "customer_id": "B", "ordered_at": ts("2026-04-15 09:00"), "amount": 10.0},
    {"order_id": "O4", "customer_id": "C", "ordered_at": ts("2026-01-31 23:59"), "amount": 10.0},
    {"order_id": "O5", "customer_id": "D", "ordered_at": ts("2026-04-20 09:00"), "amount": 10.0},
    {"order_id": "O6", "customer_id": "E", "ordered_at": ts("2025-12-31 23:00"), "amount": 10.0},
    {"order_id": "O7", "customer_id": "F", "ordered_at": ts("2026-05-01 00:00"), "amount": 10.0},
]


def test_active_customers_and_churn_by_hand():
    # active on 31 Mar: orders 1 Jan..31 Mar -> A, B, C; on 30 Apr: 31 Jan..30 Apr -> B, C, D
    m = metrics_for({"orders": ORDERS}, period=APRIL)
    assert m["active_customers"] == 3
    assert m["churn_rate"] == pytest.approx(1 / 3)  # A left


def test_region_filter_uses_the_customers_region():
    customers = [{"customer_id": "A", "region": "Europe"}, {"customer_id": "B", "region": "Asia Pacific"}]
    tickets = [
        {"ticket_id": "T1", "customer_id": "A", "created_at": ts("2026-01-05")},
        {"ticket_id": "T2", "customer_id": "B", "created_at": ts("2026-01-05")},
        {"ticket_id": "T3", "customer_id": "A", "created_at": ts("2026-01-06")},
    ]
    m = metrics_for({"customers": customers, "tickets": tickets}, regions=["Europe"])
    assert m["tickets_created"] == 2


FEBRUARY = Period(date(2026, 2, 1), date(2026, 2, 28))
MIDNIGHT = "2026-02-01 00:00"  # January's end moment: what is stamped then happens in February


def test_an_event_at_midnight_after_the_period_belongs_to_the_next_day():
    from crm.metrics import compute_many
    from crm.metrics.funnel import compute_funnel

    tables = {
        "opportunities": [
            # created at the midnight: a February deal, not in January's pipeline
            {"opportunity_id": "M1", "amount": 100.0, "created_at": ts(MIDNIGHT), "status": "open"},
            # won at the midnight: open (at lead) at January's end, won in February
            {"opportunity_id": "M2", "amount": 40.0, "created_at": ts("2026-01-10"), "closed_at": ts(MIDNIGHT),
             "status": "won"},
            # moved to proposal at the midnight: at lead at January's end, at proposal at February's
            {"opportunity_id": "M3", "amount": 200.0, "created_at": ts("2026-01-05"), "status": "open"},
        ],
        "opportunity_stages": [
            {"opportunity_id": "M3", "stage": "lead", "entered_at": ts("2026-01-05")},
            {"opportunity_id": "M3", "stage": "proposal", "entered_at": ts(MIDNIGHT)},
        ],
        "orders": [
            {"order_id": "O1", "customer_id": "Y", "ordered_at": ts("2026-01-31 23:59"), "amount": 10.0},
            {"order_id": "O2", "customer_id": "X", "ordered_at": ts(MIDNIGHT), "amount": 10.0},
        ],
        "survey_responses": [
            {"response_id": "S1", "kind": "nps", "score": 10.0, "responded_at": ts("2026-01-31 23:00")},
            {"response_id": "S2", "kind": "nps", "score": 0.0, "responded_at": ts(MIDNIGHT)},
        ],
    }
    frames = frames_from_rows(tables)
    ds = narrow(frames, Filters.create(JANUARY, scope=Scope()))
    jan, feb = compute_many(ds, [JANUARY, FEBRUARY])  # both months in one pass over the tables
    assert (jan, feb) == (compute_metrics(ds, JANUARY), compute_metrics(ds, FEBRUARY))  # and each alone
    # January: created M2, M3; nothing won; open at the end M2 (lead) and M3 (lead)
    assert (jan["new_opportunities"], jan["won_deals"], jan["revenue_won"]) == (2, 0, 0.0)
    assert (jan["open_deals"], jan["pipeline_value"]) == (2, 240.0)
    assert jan["weighted_pipeline"] == pytest.approx(40 * 0.1 + 200 * 0.1)  # 24
    assert jan["active_customers"] == 1  # Y; X's order is dated 1 Feb
    assert (jan["nps_responses"], jan["nps"]) == (1, 100.0)  # S1 only
    # February: created M1; M2 won (40); open at the end M1 (lead) and M3 (proposal)
    assert (feb["new_opportunities"], feb["won_deals"], feb["revenue_won"]) == (1, 1, 40.0)
    assert (feb["open_deals"], feb["pipeline_value"]) == (2, 300.0)
    assert feb["weighted_pipeline"] == pytest.approx(100 * 0.1 + 200 * 0.5)  # 110
    assert (feb["nps_responses"], feb["nps"]) == (1, -100.0)  # S2
    # the funnels agree: January's cohort (M2, M3) reached lead only; its snapshot has both at lead
    cohort = compute_funnel(ds, JANUARY)
    assert cohort["reached"].to_list() == [2, 0, 0, 0, 0]
    snapshot = compute_funnel(ds, JANUARY, "snapshot")
    assert snapshot["deals"].to_list() == [2, 0, 0, 0]
    assert compute_funnel(ds, FEBRUARY, "snapshot")["deals"].to_list() == [1, 0, 1, 0]  # M1 lead, M3 proposal


# --- a page's metric set: the metrics it shows, and no others computed ------------------------------------

PAGE_SHOWS = {
    # the tiles, then the satisfaction chart (NPS, CSAT, responses) and the service chart (tickets, backlog, SLA)
    "cockpit": {m.key for m in tiles()} | {"nps_responses", "csat_responses", "tickets_created"},
    "satisfaction": {"nps", "nps_responses", "csat", "csat_responses"},
    "service": {f"{name}{unit}" for name in ("first_response_p50", "first_response_p90", "resolution_p50",
                                              "resolution_p90") for unit in ("_hours", "_business_hours")}
               | {"sla_breach_rate", "sla_breach_rate_business", "backlog", "reopened_tickets", "tickets_created"},
    "customers": {"active_customers", "churn_rate"},
}
"""What each page reads from its KPIs and 12-month trend (pages/*.py), written out here."""


@pytest.mark.parametrize("metric_set", sorted(PAGE_SHOWS))
def test_a_pages_metric_set_gives_what_it_shows_as_every_metric_does_and_nothing_else(sqlite_store, metric_set):
    filters = Filters.create(Period(date(2026, 4, 1), date(2026, 6, 30)), scope=Scope())
    ds = narrow(load_frames(sqlite_store), filters)
    every = compute_with_previous(ds, filters.period)
    some = compute_with_previous(ds, filters.period, METRIC_SETS[metric_set])
    shows = PAGE_SHOWS[metric_set]
    for full, part in zip(every, some, strict=True):
        assert {k: part[k] for k in shows} == {k: full[k] for k in shows}
        assert all(full[k] is not None for k in shows)  # the demo data defines every one of them
        assert set(part) == set(full)
    trend_every = monthly_trend(ds, filters.period)
    trend_some = monthly_trend(ds, filters.period, summaries=METRIC_SETS[metric_set])
    assert trend_some.select(sorted(shows)).equals(trend_every.select(sorted(shows)))
    if metric_set != "cockpit":  # the cockpit computes five areas whole: its other sales metrics come along
        computed = {k for k, v in some[0].items() if v is not None}
        assert computed <= shows | {"won_deals", "lost_deals", "sales_cycle_days", "weighted_pipeline", "open_deals"}


def test_the_revenue_summary_is_the_sales_summarys_revenue_and_won_deals(sqlite_store):
    ds = narrow(load_frames(sqlite_store), Filters.create(Period(date(2025, 1, 1), date(2026, 6, 30)), scope=Scope()))
    months = Buckets(tuple(month_periods(date(2026, 6, 20), 24)))  # the last one cut on the 20th
    sales = summarise_sales_over(ds, months).select("bucket", "revenue_won", "won_deals").collect()
    revenue = summarise_revenue_over(ds, months).collect()
    assert revenue.equals(sales)
    assert revenue["won_deals"].sum() > 100 and revenue["revenue_won"].min() >= 0.0
