"""The active selections in words, and the checks of a link's selection; worked out by hand.

Customers A (Europe), B (Europe), C (Asia). Orders: A 1 Jun 2026, B 1 Jun 2025, C 10 Jun 2026.
RFM as of 30 Jun 2026 looks at 1 Jul 2025 .. 30 Jun 2026, so in Europe only A is scored (B's order is
before the window); alone, A ranks first on R, F and M: scores 5/5/5, segment Champions.
Deals: D1 owner Ann, D2 owner Bob, D3 no owner. Funnel steps (demo stages): 1 lead, 2 qualified,
3 proposal, 4 negotiation, 5 won.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.scope import Scope
from crm.segments import SegmentRule
from crm.selections import (
    check_selection,
    describe_selections,
    rule_words,
    selectable_values,
    step_names,
    tile_notes,
)

JUNE = Period(date(2026, 6, 1), date(2026, 6, 30))
JUN30 = date(2026, 6, 30)


@pytest.fixture(scope="module")
def frames():
    return frames_from_rows({
        "customers": [{"customer_id": "A", "region": "Europe"}, {"customer_id": "B", "region": "Europe"},
                      {"customer_id": "C", "region": "Asia"}],
        "orders": [{"order_id": "O1", "customer_id": "A", "ordered_at": datetime(2026, 6, 1, 10), "amount": 100.0},
                   {"order_id": "O2", "customer_id": "B", "ordered_at": datetime(2025, 6, 1, 10), "amount": 100.0},
                   {"order_id": "O3", "customer_id": "C", "ordered_at": datetime(2026, 6, 10, 10), "amount": 100.0}],
        "opportunities": [
            {"opportunity_id": f"D{i}", "customer_id": "A", "owner": owner, "amount": 1.0, "status": "open",
             "created_at": datetime(2026, 6, 2, 9)}
            for i, owner in ((1, "Ann"), (2, "Bob"), (3, None))
        ],
    })


def test_a_segment_rule_reads_as_who_it_selects_and_how_many():
    assert rule_words(SegmentRule.create(segments=["At Risk"], scope={"region": ["Europe"]})) == "At Risk in Europe"
    assert rule_words(SegmentRule.create(segments=["At Risk", "Lost"])) == "At Risk or Lost"
    assert rule_words(SegmentRule.create(tiers=["Potential"], scope={"region": ["Asia"], "owner": ["Ann"]})) == \
        "tier Potential in Asia, owner Ann"
    assert rule_words(SegmentRule.create(segments=["Loyal"], moved_from=["Champions"], since=date(2026, 3, 31))) == \
        "Loyal who were Champions on 2026-03-31"
    assert rule_words(SegmentRule.create(x="r", y="f", box=[1, 2, 3, 4])) == "in a box on r score × f score"
    assert rule_words(SegmentRule.create()) == "every customer with an order in the last 365 days"


def test_the_customer_selection_is_described_with_its_count(frames):
    rule = SegmentRule.create(as_of=JUN30, segments=["Champions"], scope={"region": ["Europe"]})
    items = describe_selections(Filters.create(JUNE, segment_rule=rule.to_json(), scope=Scope()), frames)
    assert [(i.kind, i.key, i.text) for i in items] == [("customers", "customers", "Customers: Champions in Europe · 1 customer")]
    everyone = SegmentRule.create(as_of=JUN30, scope={"region": ["Europe"]})
    items = describe_selections(Filters.create(JUNE, segment_rule=everyone.to_json(), scope=Scope()), frames)
    assert items[0].text == "Customers: every customer with an order in the last 365 days in Europe · 1 customer"
    items = describe_selections(Filters.create(JUNE, customers=["A", "C"], scope=Scope()), frames)
    assert items[0].text == "Customers: 2 picked customers"


def test_chart_selections_read_with_stage_names_one_line_per_key(frames):
    filters = Filters.create(JUNE, selection=[("owner", "Ann"), ("step", "3"), ("step", "5"), ("owner", "(none)")], scope=Scope())
    items = describe_selections(filters, frames)
    assert [(i.kind, i.key, i.text) for i in items] == [
        ("chart", "step", "Funnel stage: proposal or won"),
        ("chart", "owner", "Deal owner: — no owner or Ann"),
    ]
    assert describe_selections(Filters.create(JUNE, scope=Scope()), frames) == []


def test_nothing_selected_is_an_empty_list_and_no_tile_notes(frames):
    assert describe_selections(Filters.create(JUNE, scope=Scope()), frames) == []
    assert tile_notes(Filters.create(JUNE, selection=[("step", "2")], scope=Scope())) == {}


def test_active_customers_and_churn_say_they_count_the_chosen_customers_only():
    rule = SegmentRule.create(as_of=JUN30, segments=["At Risk"], scope={"region": ["Europe"]})
    notes = tile_notes(Filters.create(JUNE, segment_rule=rule.to_json(), scope=Scope()))
    assert set(notes) == {"active_customers", "churn_rate"}
    assert notes["churn_rate"] == ("Counts only the selected customers (At Risk in Europe, as of 2026-06-30): "
                                   "it shows how that set was chosen, not the whole business.")
    assert set(tile_notes(Filters.create(JUNE, customers=["A"], scope=Scope()))) == {"active_customers", "churn_rate"}


def test_a_links_selection_that_matches_nothing_is_dropped_with_a_reason(frames):
    allowed = selectable_values(frames)
    assert allowed["step"] == ["1", "2", "3", "4", "5"]
    assert allowed["owner"] == ["Ann", "Bob", "(none)"]
    names = step_names(frames)
    assert names == ("lead", "qualified", "proposal", "negotiation", "won")
    kept, notices = check_selection([("step", "99"), ("step", "2"), ("owner", "Zed"), ("owner", "(none)"),
                                     ("colour", "red")], allowed, names)
    assert kept == (("step", "2"), ("owner", "(none)"))
    assert notices == [
        "Ignored the selection step:99 from the link: the funnel has no such stage "
        "(steps: 1 lead, 2 qualified, 3 proposal, 4 negotiation, 5 won).",
        "Ignored the selection owner:Zed from the link: no deal has that deal owner.",
        "Ignored the selection colour:red from the link: 'colour' cannot be selected; "
        "one of step, owner, team, region, product, source.",
    ]

