"""Active customers and churn on both churn bases, on one hand-made store.

Subscription basis: active on day d when created_at is on or before d and there is no churned_at on or
before d (calendar days). Each customer's active days, worked out from the rows below:

    A  created 10 Jan                          active 10 Jan ... (never cancelled)
    B  created 20 Jan, churned 10 Feb          active 20 Jan ... 9 Feb
    C  created  5 Feb, churned 31 Mar 23:00    active  5 Feb ... 30 Mar (the cancellation day is not active)
    D  created 15 Mar, churned 20 Mar          active 15 Mar ... 19 Mar (new and gone within March)
    E  created 28 Feb 23:59                    active 28 Feb ... (the creation day is active)
    F  no created_at                           never active
    G  created 1 Dec 2025, churned 31 Jan      active 1 Dec 2025 ... 30 Jan
    H  created  2 Apr                          active 2 Apr ... (after every period below)

Activity basis (orders within the 90 days ending on d): A ordered 15 Jan and 10 Mar, B 25 Jan, C 5 Mar.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import churn, compute_metrics, definition, monthly_trend, tiles
from crm.narrowing import narrow
from crm.reports import build_report
from crm.scope import Scope
from crm.settings import ChurnBasis

JAN_MAR = Period(date(2026, 1, 1), date(2026, 3, 31))
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
PREVIOUS = MARCH.previous()  # 29 Jan ... 28 Feb: the day before it is 28 Jan

CUSTOMERS = [
    {"customer_id": cid, "region": region, "created_at": created and datetime.fromisoformat(created),
     "churned_at": churned and datetime.fromisoformat(churned)}
    for cid, region, created, churned in (
        ("A", "Europe", "2026-01-10", None),
        ("B", "Europe", "2026-01-20", "2026-02-10"),
        ("C", "Asia", "2026-02-05", "2026-03-31 23:00"),
        ("D", "Asia", "2026-03-15", "2026-03-20"),
        ("E", "Asia", "2026-02-28 23:59", None),
        ("F", "Asia", None, None),
        ("G", "Europe", "2025-12-01", "2026-01-31"),
        ("H", "Europe", "2026-04-02", None),
    )
]
ORDERS = [
    {"order_id": oid, "customer_id": cid, "ordered_at": datetime.fromisoformat(day), "amount": 10.0}
    for oid, cid, day in (("1", "A", "2026-01-15"), ("2", "A", "2026-03-10"), ("3", "B", "2026-01-25"),
                          ("4", "C", "2026-03-05"))
]


def frames(basis: ChurnBasis):
    return frames_from_rows({"customers": CUSTOMERS, "orders": ORDERS}, churn_basis=basis)


@pytest.fixture(scope="module")
def subscription():
    return frames(ChurnBasis.SUBSCRIPTION)


@pytest.fixture(scope="module")
def activity():
    return frames(ChurnBasis.ACTIVITY)


def summary(fr, period: Period, filters: Filters | None = None) -> dict:
    ds = narrow(fr, filters or Filters.create(period, scope=Scope()))
    return churn.summarise_customers_over(ds, churn.single(period)).collect().row(0, named=True)


def test_subscription_summary_for_march_and_the_period_before(subscription):
    # March: subscribed on 28 Feb {A, C, E}; on 31 Mar {A, E}: C cancelled on 31 Mar -> 1 of 3 churned
    march = summary(subscription, MARCH)
    assert (march["active_before"], march["churned"], march["active_customers"]) == (3, 1, 2)
    assert march["churn_rate"] == pytest.approx(1 / 3)
    # 29 Jan .. 28 Feb: subscribed on 28 Jan {A, B, G}; on 28 Feb {A, C, E}: B and G cancelled -> 2 of 3
    before = summary(subscription, PREVIOUS)
    assert (before["active_before"], before["churned"], before["active_customers"]) == (3, 2, 3)
    assert before["churn_rate"] == pytest.approx(2 / 3)


def test_activity_summary_on_the_same_store_differs(activity):
    # March, 90-day window: 28 Feb sees orders of 1 Dec .. 28 Feb {A (15 Jan), B (25 Jan)};
    # 31 Mar sees 1 Jan .. 31 Mar {A, B, C (5 Mar)}: nobody churned
    march = summary(activity, MARCH)
    assert (march["active_before"], march["churned"], march["active_customers"], march["churn_rate"]) == (2, 0, 3, 0.0)


def test_the_metrics_and_their_monthly_trend_follow_the_basis(subscription, activity):
    values = compute_metrics(narrow(subscription, Filters.create(MARCH, scope=Scope())), MARCH)
    assert values["active_customers"] == 2 and values["churn_rate"] == pytest.approx(1 / 3)
    assert compute_metrics(narrow(activity, Filters.create(MARCH, scope=Scope())), MARCH)["active_customers"] == 3
    trend = monthly_trend(narrow(subscription, Filters.create(MARCH, scope=Scope())), MARCH, months=3)
    # Jan: 31 Dec {G} -> 31 Jan {A, B}: G gone (1/1); Feb: {A, B} -> {A, C, E}: B gone (1/2); Mar as above
    assert trend["active_customers"].to_list() == [2, 3, 2]
    assert trend["churn_rate"].to_list() == pytest.approx([1.0, 0.5, 1 / 3])


def test_subscription_churn_trend_and_customer_flow(subscription):
    trend = churn.churn_trend(narrow(subscription, Filters.create(JAN_MAR, scope=Scope())), JAN_MAR, window_days=30)
    rows = trend.select("month", "active_before", "active_customers", "churned", "churn_rate", "new", "returning",
                        "reactivated").rows()
    assert rows == [
        # Jan: 31 Dec {G}; 31 Jan {A, B} (G cancelled on 31 Jan); new A, B; nobody stays from before
        (date(2026, 1, 1), 1, 2, 1, 1.0, 2, 0, 0),
        # Feb: 31 Jan {A, B}; 28 Feb {A, C, E}; B cancelled; new C, E; A stays
        (date(2026, 2, 1), 2, 3, 1, 0.5, 2, 1, 0),
        # Mar: 28 Feb {A, C, E}; 31 Mar {A, E}; C cancelled; new D (gone on 20 Mar); A and E stay
        (date(2026, 3, 1), 3, 2, 1, 1 / 3, 1, 2, 0),
    ]


def test_subscription_churn_by_region(subscription):
    # days: 28 Jan (before the previous period), 28 Feb (before March), 31 Mar
    # Europe {A, B, G, H}: 28 Jan {A, B, G}, 28 Feb {A}, 31 Mar {A}  -> March 0/1, previous 2/3
    # Asia {C, D, E, F}:   28 Jan {},        28 Feb {C, E}, 31 Mar {E} -> March 1/2, previous undefined
    table = churn.churn_by(narrow(subscription, Filters.create(MARCH, scope=Scope())), MARCH, "region")
    assert table["region"].to_list() == ["Asia", "Europe"]
    rows = {r["region"]: r for r in table.iter_rows(named=True)}
    assert (rows["Asia"]["active_before"], rows["Asia"]["churned"], rows["Asia"]["churn_rate"]) == (2, 1, 0.5)
    assert rows["Asia"]["churn_rate_previous"] is None and rows["Asia"]["change"] is None
    assert (rows["Europe"]["active_before"], rows["Europe"]["churned"], rows["Europe"]["churn_rate"]) == (1, 0, 0.0)
    assert (rows["Europe"]["active_before_previous"], rows["Europe"]["churned_previous"]) == (3, 2)
    assert rows["Europe"]["change"] == pytest.approx(-2 / 3)


def test_customer_filters_narrow_the_subscribers(subscription):
    # Europe only: 28 Feb {A}, 31 Mar {A}
    europe = summary(subscription, MARCH, Filters.create(MARCH, regions=["Europe"], scope=Scope()))
    assert (europe["active_before"], europe["churned"], europe["active_customers"], europe["churn_rate"]) == (1, 0, 1, 0.0)
    # a customer set: {B, C}: 28 Feb {C}, 31 Mar {}
    pair = summary(subscription, MARCH, Filters.create(MARCH, customers=["B", "C"], scope=Scope()))
    assert (pair["active_before"], pair["churned"], pair["churn_rate"]) == (1, 1, 1.0)


def test_no_subscribers_is_undefined_not_zero():
    empty = frames_from_rows({"customers": [{"customer_id": "X", "created_at": datetime(2027, 1, 1)}]},
                             churn_basis=ChurnBasis.SUBSCRIPTION)
    row = summary(empty, MARCH)
    assert (row["active_before"], row["churned"], row["active_customers"], row["churn_rate"]) == (0, 0, 0, None)


def test_a_customers_only_store_has_data_on_the_subscription_basis_only():
    only = {"customers": CUSTOMERS}
    sub, act = (frames_from_rows(only, churn_basis=b) for b in (ChurnBasis.SUBSCRIPTION, ChurnBasis.ACTIVITY))
    assert not sub.is_empty() and act.is_empty()
    assert sub.last_event_date() == date(2026, 4, 2)  # H's creation, the latest customer event
    assert act.last_event_date() is None


def test_definitions_say_which_basis_is_in_use(subscription):
    assert "churn basis: activity" in definition("churn_rate").formula
    assert "90 days" in definition("active_customers").formula
    sub = {m.key: m.formula for m in tiles(ChurnBasis.SUBSCRIPTION)}
    assert "churn basis: subscription" in sub["churn_rate"] and "not cancelled (cancellation date)" in sub["active_customers"]
    assert sub["revenue_won"] == definition("revenue_won").formula  # other metrics do not depend on it
    kpis = build_report("kpis", subscription, Filters.create(MARCH, scope=Scope()))
    row = kpis.filter(kpis["key"] == "churn_rate").row(0, named=True)
    assert "subscription" in row["formula"] and row["value"] == pytest.approx(1 / 3)
