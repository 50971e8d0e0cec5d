"""Per-customer facts as of 30 Jun 2026, worked out by hand; and proof that nothing after the date counts.

The last 90 days are 2 Apr … 30 Jun 2026 (as_of − 89 … as_of); the 90 before, 2 Jan … 1 Apr; the RFM
window 1 Jul 2025 … 30 Jun 2026. The end of the day is midnight 1 Jul: anything stamped then or later
does not exist yet.

A  created 2025-06-30 10:00 (tenure 365). Orders: 30 Jun 23:59 100.00 and 2 Apr 00:00 50.25 (last 90
   days: 2 orders, 150.25); 1 Apr 200.00 and 2 Jan 10.00 (the 90 before: 210.00); 1 Jan 2026 7.00; 30 Jun
   2025 1000.00 (outside the RFM window); 1 Jul 2026 00:00 999.00 (after: ignored).
   change = 150.25 − 210.00 = −59.75, share −59.75 / 210; lifetime 1367.25; RFM recency 0, F 5, M 367.25.
B  created 2026-06-30 23:00 (tenure 0). One order 1 Mar 2026 80.00: recency 121 (not active: > 89 days),
   the 90 before 80.00 -> change −80.00, share −1.0. RFM scored with A (n = 2): A ranks 2 on R, F, M
   -> ⌈5 × 2 / 2⌉ = 5 (Champions, High value); B ranks 1 -> ⌈5 / 2⌉ = 3 (3, 3, 3: Loyal, tier Potential).
C  created 2024-06-30 (tenure 730), no orders. High-priority tickets (target 4 h):
   t1 1 Jun 09:00 answered 12:00 (3 h, fine); t2 answered at 13:00 (exactly 4 h: no breach);
   t3 1 May 09:00 answered 14:00 (5 h: breach); t4 30 Jun 20:00 never answered (4 h at the end: no
   breach); t5 30 Jun 19:00 answered 1 Jul 01:00 (after the end: unanswered then, 5 h waited: breach);
   t6 1 Apr 23:00 (before the window), t7 1 Jul (after): not counted. -> 5 tickets, 2 breaches.
   NPS 9 (1 May), 3 (15 Jun), 11 (20 Jun, off the scale: not a response), 10 (1 Jul 00:00, after) -> 3.
   CSAT 4 (30 Jun 23:59:59), 2 (2 Jul) -> 4.
   Interactions: 30 Jun 23:59, 1 Jun 00:00 (first of the 30 days), 31 May 23:59, 2 Apr 00:00 (first of the
   90 days), 1 Apr 23:59 (before), 1 Jul 00:00 (after), one with no moment -> 2 in 30 days, 4 in 90.
   Deals: D1 open since 1 May 1000.00; D2 won 15 Jul (after the end: open then) 500.10; D3 lost 10 Jun;
   D4 created 2 Jul -> 2 open deals, 1500.10.
D  created 1 Jul 00:00: does not exist yet. E created_at unknown: a customer, tenure unknown.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm.customer_facts import FACT_COLUMNS, customer_facts
from crm.dataset import Dataset, Frames, frames_from_rows
from crm.filters import Filters, Period
from crm.settings import ChurnBasis

AS_OF = date(2026, 6, 30)
PERIOD = Period(date(2026, 4, 2), AS_OF)


def dataset(frames: Frames) -> Dataset:
    """Every row of the frames as a Dataset, through the narrowing entry point the code base has."""
    try:
        from crm.narrowing import narrow
        from crm.scope import Scope

        return narrow(frames, Filters.create(PERIOD, scope=Scope()))
    except ImportError:
        return frames.narrow(Filters.create(PERIOD))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def customer(cid: str, created: str | None, **extra: object) -> dict[str, object]:
    return {"customer_id": cid, "name": f"Customer {cid}", "segment": "SMB", "region": "Europe",
            "industry": "Retail", "owner": "Ann", "created_at": ts(created) if created else None, **extra}


def order(oid: str, cid: str, at: str, amount: float) -> dict[str, object]:
    return {"order_id": oid, "customer_id": cid, "ordered_at": ts(at), "amount": amount}


def ticket(tid: str, created: str, answered: str | None) -> dict[str, object]:
    return {"ticket_id": tid, "customer_id": "C", "created_at": ts(created), "priority": "high",
            "first_response_at": ts(answered) if answered else None, "status": "open"}


def response(rid: str, kind: str, score: int, at: str) -> dict[str, object]:
    return {"response_id": rid, "customer_id": "C", "kind": kind, "score": score, "responded_at": ts(at)}


def interaction(iid: str, at: str | None) -> dict[str, object]:
    return {"interaction_id": iid, "customer_id": "C", "kind": "call", "occurred_at": ts(at) if at else None}


def deal(oid: str, status: str, created: str, amount: float, closed: str | None = None) -> dict[str, object]:
    return {"opportunity_id": oid, "customer_id": "C", "status": status, "created_at": ts(created), "amount": amount,
            "closed_at": ts(closed) if closed else None, "stage": "lead" if status == "open" else status}


def rows() -> dict[str, list[dict[str, object]]]:
    return {
        "customers": [
            customer("A", "2025-06-30 10:00"), customer("B", "2026-06-30 23:00"), customer("C", "2024-06-30 08:00"),
            customer("D", "2026-07-01 00:00"), customer("E", None),
        ],
        "orders": [
            order("o1", "A", "2026-06-30 23:59", 100.00), order("o2", "A", "2026-04-02 00:00", 50.25),
            order("o3", "A", "2026-04-01 12:00", 200.00), order("o4", "A", "2026-01-02 09:00", 10.00),
            order("o5", "A", "2026-01-01 09:00", 7.00), order("o6", "A", "2025-06-30 09:00", 1000.00),
            order("o7", "A", "2026-07-01 00:00", 999.00), order("o8", "B", "2026-03-01 10:00", 80.00),
        ],
        "tickets": [
            ticket("t1", "2026-06-01 09:00", "2026-06-01 12:00"), ticket("t2", "2026-06-01 09:00", "2026-06-01 13:00"),
            ticket("t3", "2026-05-01 09:00", "2026-05-01 14:00"), ticket("t4", "2026-06-30 20:00", None),
            ticket("t5", "2026-06-30 19:00", "2026-07-01 01:00"), ticket("t6", "2026-04-01 23:00", "2026-04-02 09:00"),
            ticket("t7", "2026-07-01 08:00", None),
        ],
        "survey_responses": [
            response("r1", "nps", 9, "2026-05-01 10:00"), response("r2", "nps", 3, "2026-06-15 10:00"),
            response("r3", "nps", 11, "2026-06-20 10:00"), response("r4", "nps", 10, "2026-07-01 00:00"),
            response("r5", "csat", 4, "2026-06-30 23:59:59"), response("r6", "csat", 2, "2026-07-02 10:00"),
        ],
        "interactions": [
            interaction("i1", "2026-06-30 23:59"), interaction("i2", "2026-06-01 00:00"), interaction("i3", "2026-05-31 23:59"),
            interaction("i4", "2026-04-02 00:00"), interaction("i5", "2026-04-01 23:59"), interaction("i6", "2026-07-01 00:00"),
            interaction("i7", None),
        ],
        "opportunities": [
            deal("D1", "open", "2026-05-01 10:00", 1000.00), deal("D2", "won", "2026-06-01 10:00", 500.10, "2026-07-15 10:00"),
            deal("D3", "lost", "2026-05-01 10:00", 300.00, "2026-06-10 10:00"), deal("D4", "open", "2026-07-02 10:00", 50.00),
        ],
    }


@pytest.fixture(scope="module")
def facts() -> pl.DataFrame:
    return customer_facts(dataset(frames_from_rows(rows())), AS_OF)


def by_id(facts: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {r["customer_id"]: r for r in facts.iter_rows(named=True)}


def test_one_row_per_customer_that_exists_by_the_end_of_the_day(facts):
    assert facts.columns == list(FACT_COLUMNS)
    assert facts["customer_id"].to_list() == ["A", "B", "C", "E"]  # D is created at midnight after as_of


def test_order_facts_and_rfm(facts):
    a, b = by_id(facts)["A"], by_id(facts)["B"]
    assert {k: a[k] for k in ("tenure_days", "active", "last_order_date", "lifetime_revenue", "orders_90d",
                              "order_value_90d", "order_value_prev_90d", "order_value_change")} == {
        "tenure_days": 365, "active": True, "last_order_date": date(2026, 6, 30), "lifetime_revenue": 1367.25,
        "orders_90d": 2, "order_value_90d": 150.25, "order_value_prev_90d": 210.00, "order_value_change": -59.75,
    }
    assert a["order_value_change_share"] == pytest.approx(-59.75 / 210)
    assert (a["recency_days"], a["frequency"], a["monetary"], a["r"], a["f"], a["m"], a["rfm_segment"], a["tier"]) == (
        0, 5, 367.25, 5, 5, 5, "Champions", "High value")
    assert (b["tenure_days"], b["active"], b["orders_90d"], b["order_value_prev_90d"], b["order_value_change"],
            b["order_value_change_share"]) == (0, False, 0, 80.0, -80.0, -1.0)
    assert (b["recency_days"], b["frequency"], b["monetary"], b["r"], b["f"], b["m"], b["rfm_segment"], b["tier"]) == (
        121, 1, 80.0, 3, 3, 3, "Loyal", "Potential")


def test_service_satisfaction_and_deal_facts(facts):
    c = by_id(facts)["C"]
    assert {k: c[k] for k in ("tenure_days", "active", "tickets_90d", "sla_breaches_90d", "interactions_30d",
                              "interactions_90d", "last_nps", "last_nps_at", "last_csat", "last_csat_at", "open_deals",
                              "open_deal_amount")} == {
        "tenure_days": 730, "active": False, "tickets_90d": 5, "sla_breaches_90d": 2,
        "interactions_30d": 2, "interactions_90d": 4,
        "last_nps": 3.0, "last_nps_at": ts("2026-06-15 10:00"), "last_csat": 4.0, "last_csat_at": ts("2026-06-30 23:59:59"),
        "open_deals": 2, "open_deal_amount": 1500.10,
    }
    # no orders: zero counts and amounts, no RFM, no share of change
    assert (c["orders_90d"], c["order_value_90d"], c["lifetime_revenue"], c["recency_days"], c["r"],
            c["order_value_change_share"], c["last_order_date"]) == (0, 0.0, 0.0, None, None, None, None)


def test_a_customer_with_no_rows_has_zeros_and_nulls(facts):
    e = by_id(facts)["E"]
    assert (e["tenure_days"], e["active"], e["tickets_90d"], e["interactions_90d"], e["open_deals"], e["last_nps"],
            e["rfm_segment"]) == (None, False, 0, 0, 0, None, None)


def later_rows_changed() -> dict[str, list[dict[str, object]]]:
    """The same store, with every row stamped after as_of changed, and new ones after it."""
    changed = rows()
    changed["customers"][3] = customer("D", "2026-07-01 00:00", churned_at=ts("2026-08-01 00:00"))
    changed["customers"][0]["churned_at"] = ts("2026-09-01 00:00")  # a later cancellation of A
    changed["orders"][6] = order("o7", "A", "2026-07-01 00:00", 12345.67)
    changed["orders"] += [order("o9", "B", "2026-07-02 10:00", 80.0), order("o10", "C", "2026-07-01 00:00", 5.0),
                          order("o11", "D", "2026-07-03 00:00", 5.0)]
    changed["tickets"][4] = ticket("t5", "2026-06-30 19:00", "2026-07-03 01:00")  # answered even later
    changed["tickets"][6] = {**ticket("t7", "2026-07-01 08:00", "2026-07-01 08:05"), "status": "closed"}
    changed["tickets"] += [ticket("t8", "2026-07-01 00:00", None), ticket("t9", "2026-08-01 00:00", "2026-08-01 09:00")]
    changed["survey_responses"][3] = response("r4", "nps", 0, "2026-07-01 00:00")
    changed["survey_responses"] += [response("r7", "csat", 1, "2026-07-01 00:00")]
    changed["interactions"][5] = {**interaction("i6", "2026-07-01 00:00"), "kind": "meeting"}
    changed["interactions"] += [interaction("i8", "2026-07-02 10:00"), {**interaction("i9", "2026-08-01 10:00"),
                                                                         "customer_id": "A"}]
    changed["opportunities"][0] = deal("D1", "won", "2026-05-01 10:00", 1000.00, "2026-07-01 00:00")  # won after
    changed["opportunities"][1] = deal("D2", "lost", "2026-06-01 10:00", 500.10, "2026-08-01 10:00")
    changed["opportunities"][3] = deal("D4", "won", "2026-07-02 10:00", 99999.0, "2026-07-03 10:00")
    changed["opportunities"] += [deal("D5", "open", "2026-07-01 00:00", 7.0)]
    return changed


@pytest.mark.parametrize("basis", list(ChurnBasis))
def test_nothing_after_the_date_changes_the_facts(facts, basis):
    before = customer_facts(dataset(frames_from_rows(rows(), churn_basis=basis)), AS_OF)
    after = customer_facts(dataset(frames_from_rows(later_rows_changed(), churn_basis=basis)), AS_OF)
    assert_frame_equal(before, after)
    if basis is ChurnBasis.ACTIVITY:
        assert_frame_equal(before, facts)
    # and the change is visible a day later, so the comparison could fail
    assert not customer_facts(dataset(frames_from_rows(rows(), churn_basis=basis)), date(2026, 7, 1)).equals(
        customer_facts(dataset(frames_from_rows(later_rows_changed(), churn_basis=basis)), date(2026, 7, 1)))


def test_subscription_basis_active_means_started_and_not_cancelled():
    customers = [
        customer("A", "2026-01-01 09:00", churned_at=ts("2026-06-30 10:00")),  # cancelled on the day: not active
        customer("B", "2026-01-01 09:00", churned_at=ts("2026-07-01 00:00")),  # cancelled the day after: active
        customer("C", "2026-06-30 23:59"),                                      # started on the day: active
        customer("E", None),                                                   # no start: never active
    ]
    facts = customer_facts(dataset(frames_from_rows({"customers": customers}, churn_basis=ChurnBasis.SUBSCRIPTION)), AS_OF)
    assert dict(facts.select("customer_id", "active").rows()) == {"A": False, "B": True, "C": True, "E": False}


def test_sla_breaches_in_business_hours():
    # the default calendar works Mon-Fri 09:00-17:00: t3 (Fri 1 May, 5 business hours) still breaches; t4 and
    # t5 came in on Tue 30 Jun after 17:00, so no business hour has passed by midnight: no breach
    c = customer_facts(dataset(frames_from_rows(rows())), AS_OF, sla_basis="business").filter(customer_id="C")
    assert (c["tickets_90d"][0], c["sla_breaches_90d"][0]) == (5, 1)


def test_no_customers_no_rows():
    facts = customer_facts(dataset(frames_from_rows({})), AS_OF)
    assert facts.height == 0 and facts.columns == list(FACT_COLUMNS)
