"""Churn trend, customer flow, cohort retention and churn by attribute on a hand-made order history.

Window 30 days: a customer is active on day d when an order is dated d − 29 … d.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import churn
from crm.narrowing import narrow
from crm.scope import Scope

FEB_MAR = Period(date(2026, 2, 1), date(2026, 3, 31))
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))

CUSTOMERS = [
    {"customer_id": "A", "region": "Europe"}, {"customer_id": "B", "region": "Europe"},
    {"customer_id": "C", "region": "Asia"}, {"customer_id": "D", "region": "Asia"}, {"customer_id": "E", "region": "Asia"},
]
ORDERS = [(oid, cid, day, amount) for oid, cid, day, amount in (
    ("1", "A", "2026-01-31", 100.0),  # A's first order on the last day of January
    ("2", "A", "2026-02-15", 50.0),
    ("3", "A", "2026-03-20", 25.0),
    ("4", "B", "2026-01-10", 40.0),   # B never orders again
    ("5", "C", "2025-11-01", 10.0),
    ("6", "C", "2026-03-05", 30.0),   # C comes back in March after lapsing
    ("7", "D", "2026-02-28", 70.0),   # D's first order on the last day of February
    ("8", "E", "2026-03-31", 5.0),    # E's first order on the last day of March
)]


@pytest.fixture(scope="module")
def ds():
    orders = [{"order_id": o, "customer_id": c, "ordered_at": datetime.fromisoformat(d), "amount": a}
              for o, c, d, a in ORDERS]
    return narrow(frames_from_rows({"customers": CUSTOMERS, "orders": orders}), Filters.create(FEB_MAR, scope=Scope()))


def test_monthly_churn_and_customer_flow(ds):
    trend = churn.churn_trend(ds, FEB_MAR, window_days=30)
    rows = trend.select("month", "active_before", "active_customers", "churned", "churn_rate", "new", "returning",
                        "reactivated").rows()
    assert rows == [
        # Feb: active 31 Jan {A, B}; active 28 Feb {A, D}; B churned; D new; A returning
        (date(2026, 2, 1), 2, 2, 1, 0.5, 1, 1, 0),
        # Mar: active 28 Feb {A, D}; active 31 Mar {A, C, E}: D's order ran out on 29 Mar; E new, A returning,
        # C reactivated (no order in the 30 days ending 28 Feb)
        (date(2026, 3, 1), 2, 3, 1, 0.5, 1, 1, 1),
    ]
    # the flow reconciles: active before − churned + new + reactivated = active at the end
    for r in trend.iter_rows(named=True):
        assert r["active_before"] - r["churned"] + r["new"] + r["reactivated"] == r["active_customers"]


def test_a_trend_of_more_months_than_one_pass_holds(ds):
    # 27 months (a pass takes 20): only Nov 2025 .. Mar 2026 have customers; the last two as above
    trend = churn.churn_trend(ds, Period(date(2024, 1, 1), date(2026, 3, 31)), window_days=30)
    assert trend.height == 27 and trend["month"][20] == date(2025, 9, 1)
    rows = {r[0]: r[1:] for r in trend.select("month", "active_before", "active_customers", "churned", "churn_rate",
                                              "new", "returning", "reactivated").rows()}
    assert rows[date(2025, 11, 1)] == (0, 1, 0, None, 1, 0, 0)    # C's first order on 1 Nov, active on 30 Nov
    assert rows[date(2025, 12, 1)] == (1, 0, 1, 1.0, 0, 0, 0)     # ... and no longer on 31 Dec
    assert rows[date(2026, 1, 1)] == (0, 2, 0, None, 2, 0, 0)     # A and B new
    assert rows[date(2026, 2, 1)] == (2, 2, 1, 0.5, 1, 1, 0)
    assert rows[date(2026, 3, 1)] == (2, 3, 1, 0.5, 1, 1, 1)
    quiet = [m for m in rows if m < date(2025, 11, 1)]
    assert len(quiet) == 22 and all(rows[m] == (0, 0, 0, None, 0, 0, 0) for m in quiet)


def test_cohort_retention_counts_customers_and_revenue(ds):
    cells = churn.cohort_retention(ds, MARCH)
    by_cell = {(r["cohort"], r["months_since"]): r for r in cells.iter_rows(named=True)}
    january = date(2026, 1, 1)
    assert by_cell[(january, 0)]["cohort_size"] == 2  # A (31 Jan) and B
    assert (by_cell[(january, 1)]["customers"], by_cell[(january, 2)]["customers"]) == (1, 1)  # A in Feb and Mar
    assert by_cell[(january, 1)]["customer_retention"] == 0.5
    assert by_cell[(january, 1)]["revenue_retention"] == pytest.approx(50 / 140)
    assert by_cell[(january, 2)]["revenue_retention"] == pytest.approx(25 / 140)
    november = date(2025, 11, 1)
    assert by_cell[(november, 4)]["customer_retention"] == 1.0 and by_cell[(november, 4)]["revenue_retention"] == 3.0
    assert (november, 1) not in by_cell  # nobody from November ordered in December
    assert by_cell[(date(2026, 2, 1), 0)]["cohort_size"] == 1 and by_cell[(date(2026, 3, 1), 0)]["cohort_size"] == 1


def test_churn_by_region_against_the_previous_period(ds):
    # March; the previous period is 29 Jan .. 28 Feb. Active 28 Jan {B}; 28 Feb {A, D}; 31 Mar {A, C, E}
    table = churn.churn_by(ds, MARCH, "region", window_days=30)
    rows = {r["region"]: r for r in table.iter_rows(named=True)}
    assert table["region"].to_list() == ["Asia", "Europe"]  # highest churn first
    assert (rows["Asia"]["active_before"], rows["Asia"]["churned"], rows["Asia"]["churn_rate"]) == (1, 1, 1.0)  # D
    assert rows["Asia"]["churn_rate_previous"] is None  # nobody in Asia was active on 28 Jan
    assert (rows["Europe"]["churn_rate"], rows["Europe"]["churn_rate_previous"]) == (0.0, 1.0)  # A stays; B left
    assert rows["Europe"]["change"] == -1.0
    with pytest.raises(ValueError, match="unknown dimension"):
        churn.churn_by(ds, MARCH, "owner")
