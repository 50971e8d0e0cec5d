"""Association rules on hand-made baskets, worked out by hand.

Period: June 2026. Orders and their products:

    in June  O1 X {A, B}   O2 X {A, B, C}   O3 Y {A}   O4 Y {B, C}   O5 Z {A, C, C}   O10 U {D}
             O6 Z (no items) and O7 W (an item without product): no basket
    before   O8 X {D} (May)   O11 T {A} (May)
    after    O9 V {A, B} (1 Jul 00:00, the period's end moment): nothing

N = 6 baskets; baskets holding A 4 (O1 O2 O3 O5), B 3 (O1 O2 O4), C 3 (O2 O4 O5), D 1 (O10);
A and B 2, A and C 2, B and C 2 (C counts once in O5).

    rule   support  confidence       lift
    A → B    2/6    2/4 = 0.5     0.5 / (3/6) = 1
    B → A    2/6    2/3           (2/3) / (4/6) = 1
    A → C    2/6    0.5           1
    C → A    2/6    2/3           1
    B → C    2/6    2/3           (2/3) / (3/6) = 4/3
    C → B    2/6    2/3           4/3

Bought by the end of June: X {A, B, C, D}, Y {A, B, C}, Z {A, C}, U {D}, T {A}. Bought the antecedent,
never the consequent: A → B: Z, T; A → C: T; C → B: Z; the others nobody.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import cross_sell
from crm.dataset import Dataset, Frames, frames_from_rows
from crm.filters import Filters, Period
from crm.narrowing import narrow
from crm.scope import Scope

JUNE = Period(date(2026, 6, 1), date(2026, 6, 30))

ORDERS = [
    ("O1", "X", "2026-06-02 10:00", 100.0, ["A", "B"]),
    ("O2", "X", "2026-06-10 10:00", 50.0, ["A", "B", "C"]),
    ("O3", "Y", "2026-06-01 00:00", 10.0, ["A"]),
    ("O4", "Y", "2026-06-20 10:00", 20.0, ["B", "C"]),
    ("O5", "Z", "2026-06-30 23:59", 30.0, ["A", "C", "C"]),
    ("O6", "Z", "2026-06-15 10:00", 5.0, []),
    ("O7", "W", "2026-06-15 10:00", 7.0, [None]),
    ("O8", "X", "2026-05-01 10:00", 1000.0, ["D"]),
    ("O9", "V", "2026-07-01 00:00", 9.0, ["A", "B"]),
    ("O10", "U", "2026-06-05 10:00", 40.0, ["D"]),
    ("O11", "T", "2026-05-20 10:00", 60.0, ["A"]),
]


def dataset(frames: Frames) -> Dataset:
    """Every row of the frames as a Dataset, through the one narrowing entry point."""
    return narrow(frames, Filters.create(JUNE, scope=Scope()))


def build() -> tuple[Dataset, Frames]:
    orders = [{"order_id": o, "customer_id": c, "ordered_at": datetime.fromisoformat(at), "amount": amount}
              for o, c, at, amount, _ in ORDERS]
    items = [{"order_id": o, "product": p, "quantity": 1, "amount": 1.0} for o, *_, products in ORDERS for p in products]
    customers = [{"customer_id": c, "name": f"Customer {c}", "owner": "Ann", "region": "Europe", "segment": "SMB"}
                 for c in "XYZWVUT"]
    frames = frames_from_rows({"orders": orders, "order_items": items, "customers": customers})
    return dataset(frames), frames


@pytest.fixture(scope="module")
def store() -> tuple[Dataset, Frames]:
    return build()


def rules_by_pair(rules: pl.DataFrame) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    return {(r["antecedent"], r["consequent"]): (r["support"], r["confidence"], r["lift"], r["customers_missing"])
            for r in rules.iter_rows(named=True)}


def test_support_confidence_lift_and_customers_missing(store):
    ds, frames = store
    rules = cross_sell.association_rules(ds, frames, JUNE, min_support=0.0, min_confidence=0.0)
    assert list(rules.columns) == list(cross_sell.RULE_SCHEMA)
    got = rules_by_pair(rules)
    expected = {
        ("A", "B"): (2 / 6, 0.5, 1.0, 2), ("B", "A"): (2 / 6, 2 / 3, 1.0, 0),
        ("A", "C"): (2 / 6, 0.5, 1.0, 1), ("C", "A"): (2 / 6, 2 / 3, 1.0, 0),
        ("B", "C"): (2 / 6, 2 / 3, 4 / 3, 0), ("C", "B"): (2 / 6, 2 / 3, 4 / 3, 1),
    }
    assert set(got) == set(expected)
    for pair, (support, confidence, lift, missing) in expected.items():
        assert got[pair][:3] == pytest.approx((support, confidence, lift)), pair
        assert got[pair][3] == missing, pair
    a_b = rules.filter(antecedent="A", consequent="B").row(0, named=True)
    assert (a_b["baskets"], a_b["antecedent_baskets"], a_b["consequent_baskets"], a_b["both_baskets"]) == (6, 4, 3, 2)


def test_thresholds_and_order(store):
    ds, frames = store
    rules = cross_sell.association_rules(ds, frames, JUNE, min_support=0.3, min_confidence=0.6)
    # strongest lift first, then confidence, then the names
    assert rules.select("antecedent", "consequent").rows() == [("B", "C"), ("C", "B"), ("B", "A"), ("C", "A")]
    assert cross_sell.association_rules(ds, frames, JUNE, min_support=0.34).height == 0
    assert cross_sell.association_rules(ds, frames, JUNE, min_confidence=0.5).height == 6


def test_no_baskets_no_rules(store):
    ds, frames = store
    empty = cross_sell.association_rules(ds, frames, Period(date(2025, 1, 1), date(2025, 1, 31)))
    assert empty.height == 0 and dict(empty.schema) == cross_sell.RULE_SCHEMA


def test_target_list_of_a_rule(store):
    ds, frames = store
    targets = cross_sell.rule_targets(ds, frames, JUNE, "A", "B")
    # Z spent 30 + 5 in June (an order without items is still revenue); T bought A in May only
    assert targets.select("customer_id", "revenue", "lifetime_revenue").rows() == [("Z", 35.0, 35.0), ("T", 0.0, 60.0)]
    assert targets["name"].to_list() == ["Customer Z", "Customer T"]
    assert cross_sell.rule_targets(ds, frames, JUNE, "D", "A")["customer_id"].to_list() == ["U"]


def test_next_products(store):
    ds, frames = store
    rules = cross_sell.association_rules(ds, frames, JUNE, min_support=0.0, min_confidence=0.0)
    # by default only rules with lift above 1 (B → C, C → B): Z, who bought C and never B, is offered B
    nxt = cross_sell.next_products(ds, frames, JUNE, rules)
    assert nxt.rows() == [("Z", 1, "B", "C", pytest.approx(2 / 3), pytest.approx(4 / 3))]
    every = cross_sell.next_products(ds, frames, JUNE, rules, above_lift=0.0)
    # T bought A only: B and C tie on confidence 0.5 and lift 1, so by name; Z's B comes from C (2/3 > 0.5)
    assert every.select("customer_id", "rank", "product", "antecedent").rows() == [
        ("T", 1, "B", "A"), ("T", 2, "C", "A"), ("Z", 1, "B", "C")]
    assert cross_sell.next_products(ds, frames, JUNE, rules, top=1, above_lift=0.0, customers=["T"]).select(
        "customer_id", "product").rows() == [("T", "B")]



def test_orders_joined_on_their_ids_when_two_ids_share_a_hash(monkeypatch):
    usual = build()
    expected = cross_sell.association_rules(*usual, JUNE, 0.0, 0.0)
    assert cross_sell._order_masks(usual[1]).key == "_key"
    monkeypatch.setattr(cross_sell, "_hash_collides", lambda ids: True)
    fallback = build()  # new frames: the masks are computed again
    assert cross_sell._order_masks(fallback[1]).key == "order_id"
    assert_frame_equal(cross_sell.association_rules(*fallback, JUNE, 0.0, 0.0), expected)
    assert_frame_equal(cross_sell.next_products(*fallback, JUNE, expected, above_lift=0.0),
                       cross_sell.next_products(*usual, JUNE, expected, above_lift=0.0))


def test_hash_collision_check():
    assert not cross_sell._hash_collides(pl.Series(["O1", "O2", "O2", None]))
