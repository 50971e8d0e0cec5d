"""Customer 360 (crm.customer_view) on hand-made rows, as of 30 Jun 2026: the end is midnight 1 Jul; anything
stamped then or later does not exist yet. Every expected value below is worked out by hand.

Customers: C1 Anna Berg AB (Elena Rossi, Europe), C2 Berg Logistics (Ben Carter), C3 Carl Anders (Ben Carter),
C10 Zeta Works (Ben Carter).

C1, as of 30 Jun:
- Orders O1 10 May 100.00 (web), O2 30 Jun 23:59:59 50.00 (the last moment of the day: counted); O3 1 Jul 00:00
  70.00 (after). Lifetime revenue 150.00, last order 30 Jun.
- Deals: D1 created 1 May 09:00 1000.00, history lead (at creation: no stage change), qualified 10 May 09:00,
  won 15 Jun 12:00 (a won row: "won" comes from status and closing moment), won 15 Jun 12:00. D2 created
  20 Jun 08:00 500.00, lead then, proposal 25 Jun 10:00, negotiation 2 Jul (after): open at proposal, 10 days
  old (20 Jun 08:00 → 1 Jul 00:00 = 10 d 16 h). D3 created 1 Jun 200.00, lost 5 Jul (after): open then, at
  lead (no history: the first open stage), 30 days old. Open deals 2, 700.00.
- Tickets: T1 high (4 h target) 10 Jun 09:00, answered 15:00 (6 h: 2 h over), resolved 11 Jun 09:00 (24 h).
  T2 urgent (1 h) 29 Jun 10:00, never answered: open, waited 38 h, breached. T3 normal (8 h) 20 Jun 12:00,
  resolved 21 Jun 12:00, its recorded response 2 Jul (after): first answered on resolution, 24 h (16 h over).
  T4 normal 25 Jun 09:00 answered 09:30 (0.5 h), resolved 3 Jul (after): open, answered, not breached,
  waited 135 h. 4 tickets in 90 days, 3 SLA breaches (T1, T2, T3).
- Surveys: S1 NPS 9 on T1 12 Jun "Great help"; S2 CSAT 2 on 2 Jul (after).
- Interactions: I1 call 1 Jun 10:00 (D1), due 5 Jun, done 4 Jun. I2 email 20 Jun 09:00 (D2) due 28 Jun 09:00,
  never done: overdue 2 days (2 d 15 h). I3 meeting 26 Jun 14:00 due 30 Jun 12:00, done 2 Jul (after): overdue
  0 days (12 h). I4 call 2 Jul (after). I5 chat 29 Jun 16:00 due 5 Jul: not overdue.
RFM (C1 and C2 scored, n = 2): C1 recency 0, 2 orders, 150.00; C2 (one order 1 Jun, 300.00) recency 29.
C1 ranks 2 on R and F (5, 5) and 1 on M (⌈5 × 1 / 2⌉ = 3): R5 F5 M3 → Loyal (2–5/3–5/3–5), tier others.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm.churn_model import fit_models
from crm.customer_facts import customer_facts
from crm.customer_view import (
    TIMELINE_SCHEMA,
    CustomerNotFound,
    EventKind,
    customer_header,
    customer_timeline,
    customer_view,
    find_customers,
    has_view_filters,
    open_items,
    open_items_tables,
    timeline_for,
    timeline_table,
    view_filters,
)
from crm.dataset import Dataset, Frames, frames_from_rows
from crm.filters import Filters, Period
from crm.narrowing import UnscopedRead, narrow
from crm.scope import Scope

AS_OF = date(2026, 6, 30)
FILTERS = Filters.create(Period(date(2026, 4, 1), AS_OF), scope=Scope())
BEN = Filters.create(Period(date(2026, 4, 1), AS_OF), scope=Scope.create(owners=["Ben Carter"]))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


CUSTOMERS = [
    {"customer_id": "C1", "name": "Anna Berg AB", "email": "anna.berg@example.com", "phone": "+46 70 123 45 67",
     "region": "Europe", "country": "Sweden", "segment": "SMB", "industry": "Retail", "owner": "Elena Rossi",
     "created_at": at("2025-01-01 00:00")},
    {"customer_id": "C2", "name": "Berg Logistics", "email": "info@berglog.example", "phone": "+1 212 555 0100",
     "region": "North America", "segment": "Enterprise", "owner": "Ben Carter", "created_at": at("2025-02-01 00:00")},
    {"customer_id": "C3", "name": "Carl Anders", "email": "carl@anders.example", "phone": "+46 8 999 00 11",
     "region": "Europe", "segment": "SMB", "owner": "Ben Carter", "created_at": at("2025-03-01 00:00")},
    {"customer_id": "C10", "name": "Zeta Works", "email": "hello@zeta.example", "phone": None,
     "region": "Europe", "segment": "SMB", "owner": "Ben Carter", "created_at": at("2025-04-01 00:00")},
]


def base_rows() -> dict[str, list[dict[str, object]]]:
    deal = {"customer_id": "C1", "owner": "Elena Rossi", "team": "Team Cirrus", "region": "Europe",
            "product": "Analytics Pro"}
    ticket = {"customer_id": "C1", "team": "Tier 1", "agent": "Wen Li", "product": "Analytics Pro", "channel": "email",
              "category": "billing", "reopened": 0}
    return {
        "customers": CUSTOMERS,
        "orders": [
            {"order_id": "O1", "customer_id": "C1", "ordered_at": at("2026-05-10 10:00"), "amount": 100.0, "channel": "web"},
            {"order_id": "O2", "customer_id": "C1", "ordered_at": at("2026-06-30 23:59:59"), "amount": 50.0,
             "channel": "sales"},
            {"order_id": "O3", "customer_id": "C1", "ordered_at": at("2026-07-01 00:00"), "amount": 70.0, "channel": "web"},
            {"order_id": "O4", "customer_id": "C2", "ordered_at": at("2026-06-01 12:00"), "amount": 300.0, "channel": "web"},
        ],
        "opportunities": [
            {**deal, "opportunity_id": "D1", "amount": 1000.0, "created_at": at("2026-05-01 09:00"),
             "closed_at": at("2026-06-15 12:00"), "stage": "won", "status": "won"},
            {**deal, "opportunity_id": "D2", "amount": 500.0, "created_at": at("2026-06-20 08:00"),
             "expected_close_date": date(2026, 7, 31), "stage": "negotiation", "status": "open"},
            {**deal, "opportunity_id": "D3", "amount": 200.0, "created_at": at("2026-06-01 00:00"),
             "closed_at": at("2026-07-05 10:00"), "stage": "lost", "status": "lost", "lost_reason": "Price"},
            {**deal, "opportunity_id": "D9", "customer_id": "C2", "owner": "Ben Carter", "amount": 50.0,
             "created_at": at("2026-06-02 00:00"), "stage": "lead", "status": "open"},
        ],
        "opportunity_stages": [
            {"opportunity_id": "D1", "stage": "lead", "entered_at": at("2026-05-01 09:00")},
            {"opportunity_id": "D1", "stage": "qualified", "entered_at": at("2026-05-10 09:00")},
            {"opportunity_id": "D1", "stage": "won", "entered_at": at("2026-06-15 12:00")},
            {"opportunity_id": "D2", "stage": "lead", "entered_at": at("2026-06-20 08:00")},
            {"opportunity_id": "D2", "stage": "proposal", "entered_at": at("2026-06-25 10:00")},
            {"opportunity_id": "D2", "stage": "negotiation", "entered_at": at("2026-07-02 10:00")},
        ],
        "tickets": [
            {**ticket, "ticket_id": "T1", "priority": "high", "created_at": at("2026-06-10 09:00"),
             "first_response_at": at("2026-06-10 15:00"), "resolved_at": at("2026-06-11 09:00"), "status": "resolved"},
            {**ticket, "ticket_id": "T2", "priority": "urgent", "created_at": at("2026-06-29 10:00"), "status": "open"},
            {**ticket, "ticket_id": "T3", "priority": "normal", "created_at": at("2026-06-20 12:00"),
             "first_response_at": at("2026-07-02 09:00"), "resolved_at": at("2026-06-21 12:00"), "status": "resolved",
             "category": "bug"},
            {**ticket, "ticket_id": "T4", "priority": "normal", "created_at": at("2026-06-25 09:00"),
             "first_response_at": at("2026-06-25 09:30"), "resolved_at": at("2026-07-03 09:00"), "status": "resolved"},
        ],
        "survey_responses": [
            {"response_id": "S1", "customer_id": "C1", "ticket_id": "T1", "kind": "nps", "score": 9.0,
             "responded_at": at("2026-06-12 08:00"), "comment": "Great help"},
            {"response_id": "S2", "customer_id": "C1", "kind": "csat", "score": 2.0, "responded_at": at("2026-07-02 08:00")},
        ],
        "interactions": [
            {"interaction_id": "I1", "customer_id": "C1", "opportunity_id": "D1", "kind": "call",
             "occurred_at": at("2026-06-01 10:00"), "owner": "Elena Rossi", "due_at": at("2026-06-05 10:00"),
             "completed_at": at("2026-06-04 10:00")},
            {"interaction_id": "I2", "customer_id": "C1", "opportunity_id": "D2", "kind": "email",
             "occurred_at": at("2026-06-20 09:00"), "owner": "Elena Rossi", "due_at": at("2026-06-28 09:00")},
            {"interaction_id": "I3", "customer_id": "C1", "kind": "meeting", "occurred_at": at("2026-06-26 14:00"),
             "owner": "Elena Rossi", "due_at": at("2026-06-30 12:00"), "completed_at": at("2026-07-02 10:00")},
            {"interaction_id": "I4", "customer_id": "C1", "kind": "call", "occurred_at": at("2026-07-02 11:00"),
             "owner": "Elena Rossi", "due_at": at("2026-07-02 12:00")},
            {"interaction_id": "I5", "customer_id": "C1", "kind": "chat", "occurred_at": at("2026-06-29 16:00"),
             "owner": "Elena Rossi", "due_at": at("2026-07-05 10:00")},
        ],
    }


@pytest.fixture
def frames() -> Frames:
    return frames_from_rows(base_rows())


def view(frames: Frames, filters: Filters = FILTERS) -> Dataset:
    return narrow(frames, view_filters(filters))


# --- search ----------------------------------------------------------------------------------------------------


def ids(frames: Frames, query: str, filters: Filters = FILTERS, contacts: bool = True) -> list[str]:
    return find_customers(frames, filters, query, contacts=contacts).rows["customer_id"].to_list()


def test_a_name_matches_case_insensitively_names_starting_with_it_first(frames):
    assert ids(frames, "berg") == ["C2", "C1"]  # Berg Logistics starts with it; Anna Berg AB contains it
    assert ids(frames, "  BERG ") == ["C2", "C1"]
    assert find_customers(frames, FILTERS, "berg").total == 2


def test_an_exact_id_comes_first_then_other_ids_containing_it(frames):
    assert ids(frames, "c1") == ["C1", "C10"]
    assert ids(frames, "C10") == ["C10"]


def test_email_and_phone_digits_match(frames):
    assert ids(frames, "anna.berg@") == ["C1"]
    assert ids(frames, "example.com") == ["C1"]  # the others are at .example
    assert ids(frames, "555-0100") == ["C2"]  # digits 5550100 inside +1 212 555 0100
    assert ids(frames, "46 70") == ["C1"]  # 4670 inside 46701234567, not in C3's 468999 0011
    assert ids(frames, "+46") == []  # two digits are not a phone search; no name, id or email holds "+46"


def test_without_contacts_email_and_phone_are_not_searched(frames):
    assert ids(frames, "anna.berg", contacts=False) == []
    assert ids(frames, "555 0100", contacts=False) == []
    assert ids(frames, "berg", contacts=False) == ["C2", "C1"]


def test_limit_total_and_empty_query(frames):
    matches = find_customers(frames, FILTERS, "e", limit=2)
    assert matches.rows["customer_id"].to_list() == ["C1", "C2"] and matches.total == 4  # every email has an e
    assert find_customers(frames, FILTERS, "   ").total == 0
    assert find_customers(frames, FILTERS, "   ").rows.columns == [
        "customer_id", "name", "email", "phone", "region", "segment", "owner"]


def test_a_customer_outside_the_scope_is_not_found(frames):
    assert ids(frames, "berg", BEN) == ["C2"]
    assert find_customers(frames, BEN, "anna").total == 0
    assert ids(frames, "c1", BEN) == ["C10"]
    with pytest.raises(UnscopedRead):
        find_customers(frames, Filters.create(Period(AS_OF, AS_OF)), "berg")


# --- header --------------------------------------------------------------------------------------------------


def test_header_worked_out_by_hand(frames):
    header = customer_header(view(frames), "C1", AS_OF)
    assert header is not None
    assert (header.name, header.segment, header.region, header.owner) == ("Anna Berg AB", "SMB", "Europe", "Elena Rossi")
    assert (header.email, header.phone) == ("anna.berg@example.com", "+46 70 123 45 67")
    assert (header.r, header.f, header.m, header.rfm_segment, header.tier) == (5, 5, 3, "Loyal", "others")
    assert (header.recency_days, header.frequency, header.monetary) == (0, 2, 150.0)
    assert header.lifetime_revenue == 150.0 and header.last_order_date == AS_OF and header.active
    assert (header.open_deals, header.open_deal_amount) == (2, 700.0)
    assert (header.tickets_90d, header.sla_breaches_90d) == (4, 3)
    assert (header.last_nps, header.last_csat) == (9.0, None)
    assert header.churn_risk is None and header.churn_rule is None  # no model given


def test_header_rfm_scores_come_from_the_whole_view_not_the_one_customer(frames):
    ds = view(frames)
    only_c1 = pl.DataFrame({"customer_id": ["C1"], "r": [1], "f": [2], "m": [3], "segment": ["Hibernating"],
                            "tier": ["Churn risk"], "recency_days": [9], "frequency": [1], "monetary": [5.0]})
    header = customer_header(ds, "C1", AS_OF, scores=only_c1)
    assert header is not None and (header.r, header.f, header.m, header.rfm_segment, header.tier) == (
        1, 2, 3, "Hibernating", "Churn risk")
    unscored = customer_header(ds, "C3", AS_OF)
    assert unscored is not None and unscored.r is None and unscored.tier is None and unscored.lifetime_revenue == 0.0


def test_header_contacts_are_masked_for_roles_that_may_not_see_them(frames):
    header = customer_header(view(frames), "C1", AS_OF)
    assert header is not None
    assert (header.masked("analyst").email, header.masked("analyst").phone) == ("a***@example.com", "••••••••67")
    assert header.masked("rep") == header


def test_header_churn_risk_is_the_models_for_the_customer(frames):
    ds = view(frames)
    facts = customer_facts(ds, AS_OF).filter(pl.col("customer_id").is_in(["C1", "C2"]))
    training = facts.with_columns(churned=pl.Series([True, False]), as_of=pl.lit(AS_OF))
    model = fit_models(training, AS_OF)
    header = customer_header(ds, "C1", AS_OF, churn_model=model)
    assert header is not None
    assert header.churn_risk == 1.0  # C1's leaf holds C1 alone, who churned
    assert header.churn_rule in model.leaf_rules.values()


def test_unknown_or_out_of_scope_customer_has_no_header(frames):
    assert customer_header(view(frames), "C404", AS_OF) is None
    assert customer_header(view(frames, BEN), "C1", AS_OF) is None
    assert customer_view(frames, BEN, "C1") is None
    assert customer_view(frames, FILTERS, "C1") is not None


# --- timeline --------------------------------------------------------------------------------------------------

EXPECTED = [
    ("2026-05-01 09:00", EventKind.DEAL_CREATED, "D1", 1000.0, None, None),
    ("2026-05-10 09:00", EventKind.STAGE_CHANGE, "D1", None, None, None),
    ("2026-05-10 10:00", EventKind.ORDER, "O1", 100.0, None, None),
    ("2026-06-01 00:00", EventKind.DEAL_CREATED, "D3", 200.0, None, None),
    ("2026-06-01 10:00", EventKind.INTERACTION, "I1", None, None, None),
    ("2026-06-10 09:00", EventKind.TICKET_OPENED, "T1", None, None, 4.0),
    ("2026-06-10 15:00", EventKind.FIRST_RESPONSE, "T1", None, 6.0, 4.0),
    ("2026-06-11 09:00", EventKind.TICKET_RESOLVED, "T1", None, 24.0, None),
    ("2026-06-12 08:00", EventKind.SURVEY_RESPONSE, "S1", None, None, None),
    ("2026-06-15 12:00", EventKind.DEAL_WON, "D1", 1000.0, None, None),
    ("2026-06-20 08:00", EventKind.DEAL_CREATED, "D2", 500.0, None, None),
    ("2026-06-20 09:00", EventKind.INTERACTION, "I2", None, None, None),
    ("2026-06-20 12:00", EventKind.TICKET_OPENED, "T3", None, None, 8.0),
    ("2026-06-21 12:00", EventKind.FIRST_RESPONSE, "T3", None, 24.0, 8.0),  # answered on resolution
    ("2026-06-21 12:00", EventKind.TICKET_RESOLVED, "T3", None, 24.0, None),
    ("2026-06-25 09:00", EventKind.TICKET_OPENED, "T4", None, None, 8.0),
    ("2026-06-25 09:30", EventKind.FIRST_RESPONSE, "T4", None, 0.5, 8.0),
    ("2026-06-25 10:00", EventKind.STAGE_CHANGE, "D2", None, None, None),
    ("2026-06-26 14:00", EventKind.INTERACTION, "I3", None, None, None),
    ("2026-06-29 10:00", EventKind.TICKET_OPENED, "T2", None, None, 1.0),
    ("2026-06-29 16:00", EventKind.INTERACTION, "I5", None, None, None),
    ("2026-06-30 23:59:59", EventKind.ORDER, "O2", 50.0, None, None),
]


def test_timeline_worked_out_by_hand(frames):
    timeline = customer_timeline(view(frames), "C1", AS_OF)
    assert timeline.schema == pl.Schema(TIMELINE_SCHEMA)
    got = [(r["at"], r["kind"], r["ref"], r["amount"], r["hours"], r["target_hours"]) for r in timeline.iter_rows(named=True)]
    assert got == [(at(t), k.value, ref, amount, hours, target) for t, k, ref, amount, hours, target in EXPECTED]


def summaries(timeline: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["ref"]): r["summary"] for r in timeline.iter_rows(named=True)}


def test_timeline_summaries_are_plain_words(frames):
    summary = summaries(customer_timeline(view(frames), "C1", AS_OF))
    assert summary[("order", "O1")] == "Order O1 via web"
    assert summary[("deal_created", "D1")] == "Deal D1 created: Analytics Pro, owner Elena Rossi, Team Cirrus"
    assert summary[("stage_change", "D1")] == "Deal D1 moved to qualified (from lead)"
    assert summary[("stage_change", "D2")] == "Deal D2 moved to proposal (from lead)"
    assert summary[("deal_won", "D1")] == "Deal D1 won (Analytics Pro)"
    assert summary[("ticket_opened", "T1")] == "Ticket T1 opened: billing, high priority, Analytics Pro, by email"
    assert summary[("first_response", "T1")] == "Ticket T1 answered by Wen Li after 6 h: 2 h over its 4 h target"
    assert summary[("first_response", "T3")] == ("Ticket T3 first answered on resolution by Wen Li after 24 h: "
                                                 "16 h over its 8 h target")
    assert summary[("first_response", "T4")] == "Ticket T4 answered by Wen Li after 0.5 h: within its 8 h target"
    assert summary[("ticket_resolved", "T1")] == "Ticket T1 resolved after 24 h"
    assert summary[("survey_response", "S1")] == "NPS 9 (promoter) on ticket T1: “Great help”"
    assert summary[("interaction", "I1")] == "Call by Elena Rossi about deal D1; follow-up due 2026-06-05, done 2026-06-04"
    assert summary[("interaction", "I2")] == "Email by Elena Rossi about deal D2; follow-up due 2026-06-28, overdue"
    assert summary[("interaction", "I5")] == "Chat by Elena Rossi; follow-up due 2026-07-05"


def test_a_lost_deal_and_a_csat_response_read_in_words():
    rows = base_rows()
    rows["opportunities"][2]["closed_at"] = at("2026-06-05 10:00")  # D3 lost before the end now
    rows["survey_responses"][1]["responded_at"] = at("2026-06-30 08:00")
    timeline = customer_timeline(view(frames_from_rows(rows)), "C1", AS_OF)
    summary = summaries(timeline)
    assert summary[("deal_lost", "D3")] == "Deal D3 lost (Analytics Pro): Price"
    assert summary[("survey_response", "S2")] == "CSAT 2 of 5 (not satisfied)"
    lost = timeline.filter(pl.col("kind") == "deal_lost")
    assert lost["amount"].to_list() == [200.0] and lost["at"].to_list() == [at("2026-06-05 10:00")]


def test_nothing_after_the_day_appears_and_later_rows_change_nothing(frames):
    ds = view(frames)
    timeline = customer_timeline(ds, "C1", AS_OF)
    assert timeline["at"].max() < datetime(2026, 7, 1)
    assert not set(timeline["ref"]) & {"O3", "S2", "I4"}
    # more rows stamped at or after midnight 1 Jul: the view as of 30 Jun does not move
    later = base_rows()
    later["orders"].append({"order_id": "O5", "customer_id": "C1", "ordered_at": at("2026-07-01 00:00"), "amount": 9.0})
    later["opportunity_stages"].append({"opportunity_id": "D2", "stage": "won", "entered_at": at("2026-07-01 00:00")})
    later["tickets"][1]["first_response_at"] = at("2026-07-01 00:00")
    later["tickets"][1]["resolved_at"] = at("2026-07-01 01:00")
    later["interactions"][1]["completed_at"] = at("2026-07-01 00:00")
    later["survey_responses"].append({"response_id": "S3", "customer_id": "C1", "kind": "nps", "score": 0.0,
                                      "responded_at": at("2026-07-01 00:00")})
    moved = view(frames_from_rows(later))
    assert_frame_equal(customer_timeline(moved, "C1", AS_OF), timeline)
    before, after = open_items(ds, "C1", AS_OF), open_items(moved, "C1", AS_OF)
    for part in ("deals", "tickets", "follow_ups"):
        assert_frame_equal(getattr(after, part), getattr(before, part))
    assert customer_header(moved, "C1", AS_OF) == customer_header(ds, "C1", AS_OF)


def test_timeline_of_an_unknown_or_out_of_scope_customer(frames):
    assert customer_timeline(view(frames), "C404", AS_OF).is_empty()
    assert customer_timeline(view(frames, BEN), "C1", AS_OF).is_empty()
    with pytest.raises(CustomerNotFound, match="no customer 'C1' in your view"):
        timeline_for(frames, BEN, "C1")
    assert timeline_for(frames, FILTERS, "C1").height == len(EXPECTED)


def test_the_view_is_as_of_the_period_end_and_ignores_dimension_filters(frames):
    narrowed = Filters.create(Period(date(2026, 4, 1), date(2026, 6, 12)), regions=["North America"], scope=Scope())
    assert has_view_filters(narrowed) and not has_view_filters(FILTERS)
    assert view_filters(narrowed) == Filters.create(Period(date(2026, 6, 12), date(2026, 6, 12)), scope=Scope())
    timeline = timeline_for(frames, narrowed, "C1")  # C1 is in Europe: the region filter does not hide them
    assert timeline["ref"].to_list()[-1] == "S1" and timeline["at"].max() < datetime(2026, 6, 13)


# --- open items ------------------------------------------------------------------------------------------------


def test_open_items_worked_out_by_hand(frames):
    items = open_items(view(frames), "C1", AS_OF)
    assert items.deals.select("opportunity_id", "stage", "amount", "days_open").rows() == [
        ("D3", "lead", 200.0, 30), ("D2", "proposal", 500.0, 10)]
    assert items.tickets.select("ticket_id", "priority", "answered", "waited_hours", "target_hours", "breached").rows() == [
        ("T4", "normal", True, 135.0, 8.0, False), ("T2", "urgent", False, 38.0, 1.0, True)]
    assert items.follow_ups.select("interaction_id", "kind", "days_overdue").rows() == [("I2", "email", 2), ("I3", "meeting", 0)]
    assert not items.is_empty()


def test_no_open_items(frames):
    items = open_items(view(frames), "C3", AS_OF)
    assert items.is_empty()
    assert items.deals.columns == ["opportunity_id", "product", "stage", "amount", "owner", "created_at",
                                   "expected_close_date", "days_open"]


def test_next_products_come_from_the_periods_rules_with_the_rule_behind_each():
    # baskets Apr–Jun: O1 {A, B}, O2 {A, B} (C1), O4 {A} (C2), O6 {C} (C3): N = 4; A → B has confidence 2/3 and
    # lift (2/3) / (2/4) = 4/3 > 1: C2 bought A and never B, so B is their next product, from A
    rows = base_rows()
    rows["orders"].append({"order_id": "O6", "customer_id": "C3", "ordered_at": at("2026-06-03 12:00"), "amount": 10.0})
    rows["order_items"] = [{"order_id": o, "product": p, "quantity": 1, "amount": 1.0}
                           for o, p in (("O1", "A"), ("O1", "B"), ("O2", "A"), ("O2", "B"), ("O4", "A"), ("O6", "C"))]
    frames = frames_from_rows(rows)
    found = customer_view(frames, FILTERS, "C2")
    assert found is not None
    assert found.next_products.rows() == [("B", "A", pytest.approx(2 / 3), pytest.approx(4 / 3))]
    c1 = customer_view(frames, FILTERS, "C1")
    assert c1 is not None and c1.next_products.is_empty()  # C1 bought both


def test_tables_as_a_person_reads_them(frames):
    found = customer_view(frames, FILTERS, "C1")
    assert found is not None
    table = timeline_table(found.timeline)
    assert table.columns == ["at", "what", "summary", "amount", "time"]
    first = table.row(0, named=True)  # newest first
    assert (first["what"], first["summary"], first["amount"], first["time"]) == ("Order", "Order O2 via sales", "$50.00", "")
    rows = {(r["what"], r["summary"][:9]): r for r in table.iter_rows(named=True)}
    assert (rows[("First response", "Ticket T1")]["time"], rows[("First response", "Ticket T1")]["amount"]) == (
        "6.0 h of 4.0 h", "")
    assert rows[("Ticket resolved", "Ticket T1")]["time"] == "24.0 h"
    assert rows[("Ticket opened", "Ticket T1")]["time"] == ""  # a target alone is no time taken
    deals, tickets, follow_ups = open_items_tables(found.open_items)
    assert deals.select("opportunity_id", "amount", "expected_close").rows() == [("D3", "$200.00", ""),
                                                                                ("D2", "$500.00", "2026-07-31")]
    assert tickets.select("ticket_id", "waited", "target", "sla").rows() == [
        ("T4", "5.6 d", "8.0 h", "answered in time"), ("T2", "38.0 h", "1.0 h", "breached")]
    assert follow_ups.select("interaction_id", "due", "days_overdue").rows() == [
        ("I2", "2026-06-28 09:00", 2), ("I3", "2026-06-30 12:00", 0)]
    assert not any(None in row for t in (table, deals, tickets, follow_ups) for row in t.rows())
