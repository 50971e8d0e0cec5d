"""RFM scores, ties, the segment and tier rule precedence, and the summary; worked out by hand.

Period end 30 Jun 2026; the RFM window is 1 Jul 2025 .. 30 Jun 2026.
Scored: A, B (tied on everything), C, D, F; E's only order is before the window.
  recency days: A 0, B 0, C 180, D 121, F 29 -> ranks (most days first) C 1, D 2, F 3, A and B 4.5
                -> R = ceil(5 r / 5): C 1, D 2, F 3, A 5, B 5
  frequency:    A 3, B 3, C 1, D 2, F 1 -> ranks C and F 1.5, D 3, A and B 4.5 -> F: C 2, F 2, D 3, A 5, B 5
  monetary:     A 300, B 300, C 10, D 200, F 50 -> ranks C 1, F 2, D 3, A and B 4.5 -> M: C 1, F 2, D 3, A 5, B 5
"""

from __future__ import annotations

import math
from datetime import date, datetime
from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.metrics import rfm
from crm.narrowing import narrow
from crm.scope import Scope

H1 = Period(date(2026, 1, 1), date(2026, 6, 30))
ORDERS = [
    ("A", "2026-02-01", 100.0), ("A", "2026-04-01", 100.0), ("A", "2026-06-30", 100.0),
    ("B", "2026-03-01", 150.0), ("B", "2026-05-01", 50.0), ("B", "2026-06-30 23:59", 100.0),
    ("C", "2026-01-01", 10.0),
    ("D", "2025-12-01", 120.0), ("D", "2026-03-01", 80.0),
    ("E", "2025-06-30", 999.0),
    ("F", "2026-06-01", 50.0),
]


@pytest.fixture(scope="module")
def scores():
    orders = [{"order_id": str(i), "customer_id": c, "ordered_at": datetime.fromisoformat(d), "amount": a}
              for i, (c, d, a) in enumerate(ORDERS)]
    return rfm.rfm_scores(narrow(frames_from_rows({"orders": orders}), Filters.create(H1, scope=Scope())), H1)


def test_scores_with_ties(scores):
    got = {r["customer_id"]: (r["recency_days"], r["frequency"], r["monetary"], r["r"], r["f"], r["m"])
           for r in scores.iter_rows(named=True)}
    assert got == {
        "A": (0, 3, 300.0, 5, 5, 5), "B": (0, 3, 300.0, 5, 5, 5), "C": (180, 1, 10.0, 1, 2, 1),
        "D": (121, 2, 200.0, 2, 3, 3), "F": (29, 1, 50.0, 3, 2, 2),
    }  # E is not scored: no order in the 365 days


def test_first_matching_rule_names_the_segment_and_the_tier(scores):
    segments = dict(scores.select("customer_id", "segment").rows())
    tiers = dict(scores.select("customer_id", "tier").rows())
    # D (2,3,3) is Loyal before Need Attention; F (3,2,2) is Potential Loyalist before Need Attention / About to Sleep
    assert segments == {"A": "Champions", "B": "Champions", "C": "Lost", "D": "Loyal", "F": "Potential Loyalist"}
    assert tiers == {"A": "High value", "B": "High value", "C": "Churn risk", "D": "Potential", "F": "others"}


def test_rule_order_matters():
    assert [r.name for r in rfm.SEGMENT_RULES][:3] == ["Champions", "Can't Lose Them", "Loyal"]
    need_attention = next(r for r in rfm.SEGMENT_RULES if r.name == "Need Attention")
    loyal = next(r for r in rfm.SEGMENT_RULES if r.name == "Loyal")
    assert rfm.SEGMENT_RULES.index(loyal) < rfm.SEGMENT_RULES.index(need_attention)


def test_segment_and_tier_summaries(scores):
    by_segment = rfm.segment_summary(scores)
    assert by_segment["segment"].to_list() == ["Champions", "Loyal", "Potential Loyalist", "Lost"]  # rule order
    champions = by_segment.row(0, named=True)
    assert (champions["customers"], champions["revenue"]) == (2, 600.0)
    assert champions["revenue_share"] == pytest.approx(600 / 860)
    assert champions["avg_frequency"] == 3.0
    tiers = rfm.segment_summary(scores, by="tier")
    assert tiers["tier"].to_list() == ["High value", "Potential", "Churn risk", "others"]
    assert tiers.filter(tier="Churn risk")["action"][0].startswith("Escalate to a service lead")


def test_a_segment_takes_the_action_of_the_tier_most_of_its_customers_are_in(scores):
    by_segment = rfm.segment_summary(scores)
    # Champions: A and B both high value; Loyal: D is potential; Potential Loyalist: F is others; Lost: C at risk
    assert dict(by_segment.select("segment", "main_tier").rows()) == {
        "Champions": "High value", "Loyal": "Potential", "Potential Loyalist": "others", "Lost": "Churn risk"}
    assert by_segment.filter(segment="Lost")["action"][0] == rfm.TIER_ACTIONS["Churn risk"]


def test_a_tie_between_tiers_goes_to_the_tier_listed_first():
    # two "Loyal" customers, one per tier; TIER_RULES go high value, new, potential, at risk, then
    # "others" last, so potential wins
    scores = pl.DataFrame({"customer_id": ["X", "Y"], "recency_days": [10, 20], "frequency": [3, 3],
                           "monetary": [100.0, 100.0], "segment": ["Loyal", "Loyal"], "tier": ["others", "Potential"]})
    assert rfm.segment_summary(scores)["main_tier"].to_list() == ["Potential"]


def test_the_last_order_counts_whatever_order_the_rows_come_in():
    # G's newest order is listed first, H's dates are out of order: recency comes from the latest date
    rows = [("G", "2026-06-20", 10.0), ("G", "2026-01-05", 10.0), ("G", "2026-03-01", 10.0),
            ("H", "2026-04-01", 5.0), ("H", "2026-06-25", 5.0), ("H", "2026-02-01", 5.0)]
    orders = [{"order_id": str(i), "customer_id": c, "ordered_at": datetime.fromisoformat(d), "amount": a}
              for i, (c, d, a) in enumerate(rows)]
    scored = rfm.rfm_scores(narrow(frames_from_rows({"orders": orders}), Filters.create(H1, scope=Scope())), H1)
    assert dict(scored.select("customer_id", "recency_days").rows()) == {"G": 10, "H": 5}


def test_quintile_edges_are_exact():
    # ten different values: ranks 1..10, ⌈5 r / 10⌉ = 1, 1, 2, 2, 3, 3, 4, 4, 5, 5 (r = 2, 4, ... land on an edge)
    assert rfm._quintiles(np.arange(10, 0, -1)).tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # 7 values, three tied at 4 (ranks 3, 4, 5 -> 4) and two at 9 (ranks 6, 7 -> 6.5):
    # ⌈5/7⌉ 1, ⌈10/7⌉ 2, ⌈20/7⌉ 3 (x3), ⌈32.5/7⌉ 5 (x2)
    assert rfm._quintiles(np.array([9, 4, 1, 4, 2, 9, 4])).tolist() == [5, 3, 1, 3, 2, 5, 3]
    assert rfm._quintiles(np.array([], dtype=np.int64)).tolist() == []
    assert rfm._quintiles(np.array([7, 7, 7])).tolist() == [4, 4, 4]  # mean rank 2 of 3: ⌈10/3⌉ = 4


@pytest.mark.parametrize("seed", range(5))
def test_quintiles_agree_with_the_definition_in_fractions(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 12, size=int(rng.integers(1, 60)))
    n = len(values)

    def by_definition(v: int) -> int:
        below, equal = sum(x < v for x in values), sum(x == v for x in values)
        mean_rank = Fraction(2 * below + equal + 1, 2)  # ranks below+1 .. below+equal
        return math.ceil(5 * mean_rank / n)

    assert rfm._quintiles(values).tolist() == [by_definition(v) for v in values]


@pytest.mark.parametrize(("scores", "segment", "tier"), [
    ((5, 5, 5), "Champions", "High value"),
    ((1, 4, 4), "Can't Lose Them", "Potential"),
    ((3, 3, 3), "Loyal", "Potential"),          # Loyal comes before Need Attention
    ((4, 1, 1), "New", "Newcomers"),
    ((3, 1, 1), "Promising", "others"),
    ((5, 3, 2), "Potential Loyalist", "others"),
    ((2, 2, 2), "Need Attention", "Churn risk"),
    ((1, 3, 2), "At Risk", "others"),
    ((2, 1, 1), "About to Sleep", "Churn risk"),
    ((1, 1, 1), "Lost", "Churn risk"),
    ((5, 2, 5), "Others", "Newcomers"),
])
def test_the_lookup_names_each_score_triple_by_the_first_matching_rule(scores, segment, tier):
    r, f, m = scores
    code = (r - 1) * 25 + (f - 1) * 5 + (m - 1)
    assert rfm.SEGMENT_NAMES[rfm._SEGMENT_OF_SCORES[code]] == segment
    assert rfm.TIER_NAMES[rfm._TIER_OF_SCORES[code]] == tier
