"""Segment rules, the customers they select, the movement between segments and saved segments; by hand.

Period June 2026 (1 Jun .. 30 Jun, 30 days); the previous period is 2 May .. 31 May, so its end is 31 May.
RFM windows: as of 30 Jun, 1 Jul 2025 .. 30 Jun 2026; as of 31 May, 1 Jun 2025 .. 31 May 2026.

Orders (amounts):
  A  1 Sep, 1 Dec 2025, 1 Mar, 31 May, 30 Jun 2026, 100 each
  B  1 Jul, 10 Jul, 20 Jul, 1 Aug 2025, 105 each (1 Jul 2025 is the first day of the 30 Jun window)
  C  1 Oct 2025, 10 Jan, 30 Apr 2026, 100 each
  D  1 Jan 2024 1000 (before both windows), 1 Nov 2025 100, 15 Jan 2026 100
  G  15 Jun 2025 50 (in the 31 May window only)
  H  20 Jun 2026 10 (after 31 May)
  E  no order

As of 30 Jun: scored A, B, C, D, H (n = 5; every rank distinct, so each score equals its rank)
  recency days: A 0, H 10, C 61 (30 Apr -> 30 Jun = 31 + 30), D 166 (15 Jan -> 30 Jun = 16+28+31+30+31+30),
                B 333 (1 Aug 2025 -> 1 Jun 2026 = 304, + 29)            -> R: B 1, D 2, C 3, H 4, A 5
  frequency:    H 1, D 2, C 3, B 4, A 5                                   -> F: H 1, D 2, C 3, B 4, A 5
  monetary:     H 10, D 200, C 300, B 420, A 500                          -> M: H 1, D 2, C 3, B 4, A 5
  A 555 Champions / High value; B 144 Can't Lose Them / Potential; C 333 Loyal / Potential;
  D 222 Need Attention (not Loyal: F 2) / Churn risk; H 411 New / Newcomers.
As of 31 May: scored A, B, C, D, G (n = 5)
  recency days: A 0, C 31, D 136, B 303, G 350 (15 Jun 2025 -> 15 Jun 2026 = 365, − 15)
                                                                          -> R: G 1, B 2, D 3, C 4, A 5
  frequency:    G 1, D 2, C 3, A 4, B 4 -> A and B share rank 4.5 -> ⌈4.5⌉ = 5
                                                                          -> F: G 1, D 2, C 3, A 5, B 5
  monetary:     G 50, D 200, C 300, A 400, B 420                          -> M: G 1, D 2, C 3, A 4, B 5
  A 554 Champions / High value; B 255 Loyal / Potential; C 433 Loyal / others (Potential needs R ≤ 3);
  D 322 Potential Loyalist / others; G 111 Lost / Churn risk.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
import pytest

from crm import segments as seg
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.narrowing import narrow
from crm.scope import Scope
from crm.segment_rules import rule_expr
from crm.segments import NOT_SCORED, SavedSegmentError, SegmentRule, SegmentRuleError
from crm.store import Store

JUNE = Period(date(2026, 6, 1), date(2026, 6, 30))
MAY = Period(date(2026, 5, 1), date(2026, 5, 31))
JUN30, MAY31 = date(2026, 6, 30), date(2026, 5, 31)

ORDERS = [
    ("A", "2025-09-01", 100.0), ("A", "2025-12-01", 100.0), ("A", "2026-03-01", 100.0), ("A", "2026-05-31", 100.0),
    ("A", "2026-06-30", 100.0),
    ("B", "2025-07-01", 105.0), ("B", "2025-07-10", 105.0), ("B", "2025-07-20", 105.0), ("B", "2025-08-01", 105.0),
    ("C", "2025-10-01", 100.0), ("C", "2026-01-10", 100.0), ("C", "2026-04-30", 100.0),
    ("D", "2024-01-01", 1000.0), ("D", "2025-11-01", 100.0), ("D", "2026-01-15", 100.0),
    ("G", "2025-06-15", 50.0),
    ("H", "2026-06-20", 10.0),
]
CUSTOMERS = [
    {"customer_id": c, "name": n, "region": r}
    for c, n, r in (("A", "Alpha", "Europe"), ("B", "Bravo", "Europe"), ("C", "Charlie", "Asia"),
                    ("D", "Delta", "Asia"), ("E", "Echo", "Europe"), ("G", "Golf", "Asia"), ("H", "Hotel", "Europe"))
]
TICKETS = [
    # (id, customer, created, resolved)
    ("T1", "A", "2026-06-10 08:00", "2026-07-01 00:00"),  # resolved exactly at midnight after 30 Jun: open then
    ("T2", "A", "2026-06-01 08:00", "2026-06-30 23:59"),  # resolved on 30 Jun
    ("T3", "A", "2026-06-20 08:00", None),
    ("T4", "B", "2026-07-01 00:00", None),                # created after 30 Jun
    ("T5", "C", "2026-05-01 08:00", None),
]
SURVEYS = [
    # (id, customer, kind, score, responded)
    ("S1", "A", "nps", 9.0, "2026-06-01 10:00"),
    ("S2", "A", "csat", 2.0, "2026-06-20 10:00"),  # later, but CSAT
    ("S3", "A", "nps", 3.0, "2026-07-01 00:00"),   # after 30 Jun
    ("S4", "B", "nps", 4.0, "2026-03-01 10:00"),
    ("S5", "B", "nps", 10.0, "2026-05-01 10:00"),
]
DEALS = [
    {"opportunity_id": "O1", "customer_id": "A", "amount": 1000.0, "created_at": datetime(2026, 6, 2),
     "status": "open", "stage": "lead"},
    {"opportunity_id": "O2", "customer_id": "C", "amount": 2000.0, "created_at": datetime(2026, 6, 3),
     "status": "open", "stage": "lead"},
]
HISTORY = [{"opportunity_id": o, "stage": "lead", "entered_at": datetime(2026, 6, d)} for o, d in (("O1", 2), ("O2", 3))]


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def build_frames(last_day: str = "9999-12-31"):
    """The hand-made store; ``last_day`` leaves out orders dated after it (an earlier data version)."""
    orders = [{"order_id": str(i), "customer_id": c, "ordered_at": _at(d), "amount": a}
              for i, (c, d, a) in enumerate(ORDERS) if d <= last_day]
    tickets = [{"ticket_id": t, "customer_id": c, "created_at": _at(cr), "resolved_at": _at(rs), "priority": "normal"}
               for t, c, cr, rs in TICKETS]
    surveys = [{"response_id": s, "customer_id": c, "kind": k, "score": v, "responded_at": _at(at)}
               for s, c, k, v, at in SURVEYS]
    return frames_from_rows({"customers": CUSTOMERS, "orders": orders, "tickets": tickets,
                             "survey_responses": surveys, "opportunities": DEALS, "opportunity_stages": HISTORY})


@pytest.fixture(scope="module")
def frames():
    return build_frames()


@pytest.fixture()
def store(tmp_path):
    return Store("sqlite:///" + str(tmp_path / "crm.db"))


def ids(frame: pl.DataFrame) -> list[str]:
    return frame["customer_id"].to_list()


def selected(frames, period=JUNE, **conditions) -> list[str]:
    return ids(seg.evaluate(frames, SegmentRule.create(**conditions), period, scope=Scope()))


# --- the rule: building, normalising, text forms ---------------------------------------------------


def test_create_sorts_and_dedupes_names_and_drops_empty_scope_values():
    rule = SegmentRule.create(scope={"region": ["Europe", "Asia", "Europe"], "team": []},
                              segments=["Loyal", "Champions", "Loyal"], tiers=["Potential", "Newcomers"])
    assert rule.scope == (("region", ("Asia", "Europe")),)
    assert rule.segments == ("Champions", "Loyal")
    assert rule.tiers == ("Newcomers", "Potential")


def test_create_orders_the_box_corners_and_rounds_to_six_significant_digits():
    rule = SegmentRule.create(x="monetary", y="frequency", box=[1234567.891, 0.1234567, 9, 2])
    # x0, x1 = 1234567.891 -> 1.23457e6, 0.1234567 -> 0.123457, swapped so x0 <= x1; y0, y1 = 9, 2 swapped
    assert rule.box == (0.123457, 1234570.0, 2.0, 9.0)


def test_create_drops_since_without_a_move_and_axes_without_a_shape():
    rule = SegmentRule.create(segments=["Lost"], since=MAY31, x="r", y="f")
    assert (rule.since, rule.x, rule.y) == (None, "", "")


def test_to_json_is_canonical_compact_and_leaves_out_empty_parts():
    a = SegmentRule.create(as_of=JUN30, scope={"region": ["Europe", "Asia"]}, segments=["Loyal", "Champions"],
                           tiers=["Potential"], moved_from=["Lost"], since=MAY31, x="recency_days", y="monetary",
                           box=[61, 0, 300, 10])
    b = SegmentRule.create(as_of=JUN30, scope={"region": ["Asia", "Europe", "Asia"], "owner": []},
                           segments=["Champions", "Loyal"], tiers=["Potential", "Potential"], moved_from=["Lost"],
                           since=MAY31, x="recency_days", y="monetary", box=[0, 61, 10, 300])
    expected = ('{"as_of":"2026-06-30","box":[0.0,61.0,10.0,300.0],"from":["Lost"],"scope":{"region":["Asia","Europe"]},'
                '"segments":["Champions","Loyal"],"since":"2026-05-31","tiers":["Potential"],"x":"recency_days",'
                '"y":"monetary"}')
    assert a.to_json() == b.to_json() == expected
    assert SegmentRule.create(tiers=["Churn risk"]).to_json() == '{"tiers":["Churn risk"]}'
    assert SegmentRule().to_json() == "{}"


def test_json_round_trip_gives_the_same_rule():
    rules = [
        SegmentRule.create(as_of=JUN30, scope={"region": ["Europe"], "owner": ["Zoë O'Neil"]},
                           segments=["Can't Lose Them"], moved_from=["Loyal", NOT_SCORED], since=MAY31),
        SegmentRule.create(x="r", y="f", lasso=[(0, 0), (10, 0), (5, 8.5)], tiers=["Newcomers"]),
        SegmentRule.create(as_of=MAY31, x="recency_days", y="monetary", box=[0, 61, 10, 300]),
        SegmentRule(),
    ]
    for rule in rules:
        text = rule.to_json()
        assert SegmentRule.from_json(text) == rule
        assert SegmentRule.from_json(text).to_json() == text


def test_from_json_reads_a_hand_written_rule():
    rule = SegmentRule.from_json('{"segments": "Lost", "x": "r", "y": "f", "lasso": [[1, 1], [5, 1], [3, 4]]}')
    assert rule.segments == ("Lost",)  # a single name is a list of one
    assert rule.lasso == ((1.0, 1.0), (5.0, 1.0), (3.0, 4.0))


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "a segment rule is a JSON object"),
    ("[1, 2]", "a segment rule is a JSON object"),
    ("null", "a segment rule is a JSON object"),
    ('{"colour": "red", "tiers": []}', "unknown rule key\\(s\\) colour"),
    ('{"segments": ["Heroes"]}', "unknown RFM segment\\(s\\) 'Heroes'"),
    ('{"from": ["Sleepy"], "since": "2026-05-31"}', "unknown RFM segment\\(s\\) 'Sleepy'"),
    ('{"tiers": ["vip"]}', "unknown tier\\(s\\) 'vip'"),
    ('{"segments": [1]}', "segments must be a list of names"),
    ('{"scope": {"colour": ["red"]}}', "unknown scope dimension\\(s\\) colour"),
    ('{"scope": {"region": "Europe"}}', "scope must map a dimension to a list"),
    ('{"as_of": "30/06/2026"}', "as_of must be a date YYYY-MM-DD"),
    ('{"x": "r", "y": "f", "box": [0, 1, 2]}', "box must be \\[x0, x1, y0, y1\\]"),
    ('{"x": "r", "y": "f", "box": ["a", 1, 2, 3]}', "box must be \\[x0, x1, y0, y1\\]"),
    ('{"x": "r", "y": "f", "box": [0, 1, 2, Infinity]}', "a box is four finite numbers"),
    ('{"box": [0, 1, 2, 3]}', "a box or lasso needs axes x and y"),
    ('{"x": "r", "y": "height", "box": [0, 1, 2, 3]}', "a box or lasso needs axes x and y"),
    ('{"x": "r", "y": "f", "lasso": [[0, 0], [1, 1]]}', "a lasso is a polygon of at least three"),
    ('{"x": "r", "y": "f", "lasso": [[0, 0], [1], [2, 2]]}', "lasso a list of \\[x, y\\] points"),
])
def test_from_json_says_what_is_wrong(text, message):
    with pytest.raises(SegmentRuleError, match=message):
        SegmentRule.from_json(text)


def test_undated_drops_the_day_and_dated_sets_the_period_end():
    rule = SegmentRule.create(as_of=MAY31, scope={"region": ["Asia"]}, tiers=["Churn risk"])
    undated = rule.undated()
    assert undated.as_of is None and undated.scope == rule.scope and undated.tiers == ("Churn risk",)
    assert "as_of" not in undated.to_dict()
    assert undated.dated(JUNE).as_of == JUN30
    assert rule.dated(JUNE).as_of == MAY31  # a day it has is kept


def test_dated_keeps_the_since_day_of_a_move():
    rule = SegmentRule.create(moved_from=["Lost"], since=date(2026, 1, 31))
    assert rule.dated(JUNE).since == date(2026, 1, 31)


def test_undated_keeps_a_move_and_dated_measures_it_from_the_previous_period_end():
    rule = SegmentRule.create(as_of=JUN30, moved_from=["Lost"], since=MAY31)
    undated = rule.undated()
    assert (undated.as_of, undated.since, undated.moved_from) == (None, None, ("Lost",))
    # JUNE's previous period is 2 May .. 31 May
    assert undated.dated(JUNE).since == MAY31


def test_with_conditions_builds_a_transition_cell_measured_from_the_previous_period_end(frames):
    base = SegmentRule.create(as_of=JUN30)
    cell = base.with_conditions(moved_from=["Loyal"], segments=["Can't Lose Them"])
    # Loyal on 31 May: B and C; Can't Lose Them on 30 Jun: B
    assert ids(seg.evaluate(frames, cell, JUNE, scope=Scope())) == ["B"]


def test_describe_says_what_is_selected():
    assert SegmentRule().describe() == "RFM as of the period end · every scored customer"
    rule = SegmentRule.create(as_of=JUN30, scope={"region": ["Europe", "Asia"]}, segments=["Loyal", "Champions"],
                              tiers=["Potential"], moved_from=["Lost"], since=MAY31)
    assert rule.describe() == ("RFM as of 2026-06-30 · region Asia or Europe · segment Champions or Loyal · "
                               "tier Potential · was Lost on 2026-05-31")


def test_describe_a_box_in_axis_units_and_a_lasso_by_its_corners():
    box = SegmentRule.create(x="recency_days", y="monetary", box=[0, 61, 10, 45_600])
    # monetary as money: $10 and 45,600 -> $45.6k
    assert box.describe() == "RFM as of the period end · box days since the last order 0–61, revenue in 365 days $10–$45.6k"
    lasso = SegmentRule.create(x="r", y="f", lasso=[(1, 1), (5, 1), (3, 5), (2, 4)])
    assert lasso.describe() == "RFM as of the period end · lasso on r score × f score (4 corners)"


# --- rule_expr on hand-made scores -------------------------------------------------------------------

SCORES_30_JUN = pl.DataFrame({
    "customer_id": ["A", "B", "C", "D", "H"],
    "recency_days": [0, 333, 61, 166, 10],
    "monetary": [500.0, 420.0, 300.0, 200.0, 10.0],
    "segment": ["Champions", "Can't Lose Them", "Loyal", "Need Attention", "New"],
    "tier": ["High value", "Potential", "Potential", "Churn risk", "Newcomers"],
})


def rows_of(frame: pl.DataFrame, rule: SegmentRule) -> list[str]:
    return frame.filter(rule_expr(rule))["customer_id"].to_list()


def test_rule_expr_segments_and_tiers_are_any_of_each_and_all_together():
    assert rows_of(SCORES_30_JUN, SegmentRule.create(segments=["Loyal", "New"])) == ["C", "H"]
    assert rows_of(SCORES_30_JUN, SegmentRule.create(tiers=["Potential"])) == ["B", "C"]
    # segment Loyal or New and tier Potential: only C is both
    assert rows_of(SCORES_30_JUN, SegmentRule.create(segments=["Loyal", "New"], tiers=["Potential"])) == ["C"]
    assert rows_of(SCORES_30_JUN, SegmentRule()) == ["A", "B", "C", "D", "H"]


def test_rule_expr_box_includes_its_edges():
    # (recency, monetary): A (0, 500), B (333, 420), C (61, 300), D (166, 200), H (10, 10)
    on_edges = SegmentRule.create(x="recency_days", y="monetary", box=[0, 61, 10, 300])
    assert rows_of(SCORES_30_JUN, on_edges) == ["C", "H"]  # C on the corner (61, 300), H on the bottom edge y = 10
    just_inside = SegmentRule.create(x="recency_days", y="monetary", box=[0, 60.9, 10.1, 300])
    assert rows_of(SCORES_30_JUN, just_inside) == []  # C's x 61 > 60.9, H's y 10 < 10.1


# A concave U: the notch between the arms is x 3..7 above y = 3.
#   (0,10)  (3,10)   (7,10)  (10,10)
#     |       |        |       |
#     |     (3,3)----(7,3)     |
#   (0,0)--------------------(10,0)
U_SHAPE = [(0, 0), (10, 0), (10, 10), (7, 10), (7, 3), (3, 3), (3, 10), (0, 10)]
POINTS = pl.DataFrame({
    "customer_id": ["left_arm", "notch", "bottom", "right_arm", "below_notch", "above_notch", "inside_right",
                    "outside_right", "far_right", "above_top"],
    "frequency": [1.0, 5.0, 5.0, 8.5, 5.0, 5.0, 9.999, 10.001, 11.0, 1.0],
    "monetary": [5.0, 5.0, 1.0, 9.0, 2.999, 3.001, 5.0, 5.0, 5.0, 10.001],
})


def test_rule_expr_lasso_is_point_in_a_concave_polygon():
    rule = SegmentRule.create(x="frequency", y="monetary", lasso=U_SHAPE)
    # the notch (5, 5) and just above its floor (5, 3.001) are inside the bounding box but outside the U;
    # (5, 2.999) is just below the floor, in the U's base; (9.999, 5) is just inside the right side
    assert rows_of(POINTS, rule) == ["left_arm", "bottom", "right_arm", "below_notch", "inside_right"]


def test_rule_expr_lasso_on_a_triangle():
    # triangle (0,0), (4,0), (0,4): inside when x, y >= 0 and x + y < 4
    points = pl.DataFrame({"customer_id": ["p", "q", "r", "s"], "r": [1, 1, 3, 2], "f": [1, 2, 2, 1]})
    rule = SegmentRule.create(x="r", y="f", lasso=[(0, 0), (4, 0), (0, 4)])
    # p 1+1 = 2 in; q 1+2 = 3 in; r 3+2 = 5 out; s 2+1 = 3 in
    assert rows_of(points, rule) == ["p", "q", "s"]


def test_a_lasso_drawn_on_a_log_revenue_axis_has_straight_edges_in_log10():
    # triangle (0, 10), (100, 10), (0, 10,000) in (recency, revenue). Its long edge from (100, 10) to
    # (0, 10,000): straight in log10 revenue (1 -> 4) it is at x = 100 - (log10(y) - 1) x 100 / 3, i.e.
    # x = 43.4 at y = 500 (log10 2.699); straight in revenue it is at x = 100 - (y - 10) / 9,990 x 100 = 95.1.
    points = pl.DataFrame({"customer_id": ["near", "far", "zero"], "recency_days": [40, 80, 5],
                           "monetary": [500.0, 500.0, 0.0]})
    corners = [(0, 10), (100, 10), (0, 10_000)]
    on_log = SegmentRule.create(x="recency_days", y="monetary", lasso=corners, log=["monetary"])
    on_linear = SegmentRule.create(x="recency_days", y="monetary", lasso=corners)
    assert rows_of(points, on_log) == ["near"]  # 80 > 43.4: outside; revenue 0 has no place on a log axis
    assert rows_of(points, on_linear) == ["near", "far"]  # 40 and 80 < 95.1; 0 is below the triangle's base 10
    assert SegmentRule.from_json(on_log.to_json()) == on_log and '"log":["monetary"]' in on_log.to_json()
    with pytest.raises(SegmentRuleError, match="corners above 0"):
        SegmentRule.create(x="recency_days", y="monetary", lasso=[(0, 0), (1, 5), (2, 5)], log=["monetary"])


# --- evaluate and transitions on the hand-made store -------------------------------------------------


def test_evaluate_as_of_the_period_end_when_the_rule_has_no_day(frames):
    assert selected(frames, segments=["Loyal"]) == ["C"]
    assert selected(frames, tiers=["Potential"]) == ["B", "C"]
    assert selected(frames, segments=["Champions", "New"]) == ["A", "H"]
    assert selected(frames, MAY, segments=["Loyal"]) == ["B", "C"]


def test_evaluate_uses_the_rules_own_day_over_the_period(frames):
    assert selected(frames, JUNE, as_of=MAY31, segments=["Loyal"]) == ["B", "C"]


def test_evaluate_returns_every_scored_customer_with_scores_for_an_empty_rule(frames):
    table = seg.evaluate(frames, SegmentRule(), JUNE, scope=Scope())
    got = {r["customer_id"]: (r["recency_days"], r["frequency"], r["monetary"], r["r"], r["f"], r["m"])
           for r in table.iter_rows(named=True)}
    assert got == {"A": (0, 5, 500.0, 5, 5, 5), "B": (333, 4, 420.0, 1, 4, 4), "C": (61, 3, 300.0, 3, 3, 3),
                   "D": (166, 2, 200.0, 2, 2, 2), "H": (10, 1, 10.0, 4, 1, 1)}  # E never ordered; G too long ago


def test_evaluate_scores_within_the_rules_scope(frames):
    # Europe only, 30 Jun: A, B, H scored (n = 3), score = ⌈5 r / 3⌉
    #   recency A 0, H 10, B 333 -> ranks B 1, H 2, A 3 -> R: B 2, H 4, A 5
    #   frequency H 1, B 4, A 5 -> F: H 2, B 4, A 5; monetary H 10, B 420, A 500 -> M: H 2, B 4, A 5
    #   B 244 is Loyal here (Can't Lose Them needs R 1); H 422 is Potential Loyalist
    assert selected(frames, as_of=JUN30, scope={"region": ["Europe"]}, segments=["Loyal"]) == ["B"]
    assert selected(frames, as_of=JUN30, scope={"region": ["Europe"]}, segments=["Potential Loyalist"]) == ["H"]
    assert selected(frames, as_of=JUN30, segments=["Loyal"]) == ["C"]


def test_evaluate_a_move_since_an_earlier_day(frames):
    table = seg.evaluate(frames, SegmentRule.create(as_of=JUN30, moved_from=["Loyal"], since=MAY31), JUNE, scope=Scope())
    # Loyal on 31 May: B (now Can't Lose Them) and C (still Loyal)
    assert table.select("customer_id", "previous_segment", "segment").rows() == [
        ("B", "Loyal", "Can't Lose Them"), ("C", "Loyal", "Loyal")]


def test_evaluate_a_move_to_and_from_not_scored(frames):
    # G: Lost on 31 May, no order in the 365 days to 30 Jun; H: no order by 31 May, New on 30 Jun
    left = seg.evaluate(frames, SegmentRule.create(moved_from=["Lost"], since=MAY31, segments=[NOT_SCORED]), JUNE, scope=Scope())
    assert left.select("customer_id", "previous_segment", "segment").rows() == [("G", "Lost", NOT_SCORED)]
    arrived = seg.evaluate(frames, SegmentRule.create(moved_from=[NOT_SCORED], since=MAY31), JUNE, scope=Scope())
    assert arrived.select("customer_id", "previous_segment", "segment").rows() == [("H", NOT_SCORED, "New")]


def test_evaluate_a_box_on_the_stores_scores(frames):
    # (recency, monetary) on 30 Jun: A (0, 500), B (333, 420), C (61, 300), D (166, 200), H (10, 10)
    assert selected(frames, x="recency_days", y="monetary", box=[0, 166, 200, 500]) == ["A", "C", "D"]


def test_transitions_from_the_previous_period_end_to_this_one(frames):
    moves = seg.transitions(frames, Filters.create(JUNE, scope=Scope()))
    assert moves.rows() == [
        ("Champions", "Champions", 1, 1.0),               # A
        ("Loyal", "Can't Lose Them", 1, 0.5),             # B: one of the two Loyal on 31 May
        ("Loyal", "Loyal", 1, 0.5),                       # C
        ("Potential Loyalist", "Need Attention", 1, 1.0),  # D
        ("Lost", NOT_SCORED, 1, 1.0),                     # G: no order since 15 Jun 2025
        (NOT_SCORED, "New", 1, 1.0),                      # H: first order 20 Jun 2026
    ]
    assert moves.columns == ["from_segment", "to_segment", "customers", "share_of_from"]


def test_transitions_score_within_the_filters_dimensions(frames):
    # Europe, 31 May: A and B scored (n = 2), score = ⌈5 r / 2⌉
    #   recency A 0, B 303 -> R: B 3 (rank 1), A 5; frequency A 4, B 4 tie at 1.5 -> F 4 both;
    #   monetary A 400, B 420 -> M: A 3, B 5. A 543 and B 345 are both Loyal.
    # Europe, 30 Jun (see test_evaluate_scores_within_the_rules_scope): A Champions, B Loyal, H Potential Loyalist
    moves = seg.transitions(frames, Filters.create(JUNE, regions=["Europe"], scope=Scope()))
    assert moves.rows() == [
        ("Loyal", "Champions", 1, 0.5), ("Loyal", "Loyal", 1, 0.5), (NOT_SCORED, "Potential Loyalist", 1, 1.0)]


# --- the customers behind a selection -----------------------------------------------------------------


def test_customer_table_as_of_the_period_end(frames):
    table = seg.customer_table(frames, seg.evaluate(frames, SegmentRule(), JUNE, scope=Scope()), JUN30)
    assert table.columns == list(seg.GRID_COLUMNS)
    got = table.select("customer_id", "name", "rfm_segment", "tier", "rfm", "monetary", "lifetime_revenue",
                       "last_order", "open_tickets", "last_nps", "last_nps_at").rows()
    assert got == [  # highest 365-day revenue first
        # A: T1 (resolved at midnight after 30 Jun) and T3 open, T2 closed on 30 Jun; S3 is after 30 Jun,
        # S2 is a CSAT: the last NPS is S1
        ("A", "Alpha", "Champions", "High value", "555", 500.0, 500.0, JUN30, 2, 9.0, datetime(2026, 6, 1, 10)),
        # B: T4 opened after 30 Jun; the last of two NPS answers
        ("B", "Bravo", "Can't Lose Them", "Potential", "144", 420.0, 420.0, date(2025, 8, 1), 0, 10.0,
         datetime(2026, 5, 1, 10)),
        ("C", "Charlie", "Loyal", "Potential", "333", 300.0, 300.0, date(2026, 4, 30), 1, None, None),
        # D: lifetime 1000 + 100 + 100, of which the 2024 order is outside the 365 days
        ("D", "Delta", "Need Attention", "Churn risk", "222", 200.0, 1200.0, date(2026, 1, 15), 0, None, None),
        ("H", "Hotel", "New", "Newcomers", "411", 10.0, 10.0, date(2026, 6, 20), 0, None, None),
    ]


def test_customer_table_as_of_an_earlier_day_ignores_later_events(frames):
    chosen = seg.evaluate(frames, SegmentRule.create(as_of=MAY31, segments=["Champions", "Loyal"]), JUNE, scope=Scope())
    table = seg.customer_table(frames, chosen, MAY31)
    got = table.select("customer_id", "rfm", "lifetime_revenue", "last_order", "open_tickets", "last_nps").rows()
    assert got == [
        ("B", "255", 420.0, date(2025, 8, 1), 0, 10.0),
        # A on 31 May: four orders (400), no ticket yet (T1..T3 are June's), S1 came on 1 June
        ("A", "554", 400.0, MAY31, 0, None),
        ("C", "433", 300.0, date(2026, 4, 30), 1, None),  # T5 open since 1 May
    ]


def test_customer_table_limited_to_the_highest_revenue(frames):
    everyone = seg.evaluate(frames, SegmentRule(), JUNE, scope=Scope())
    assert seg.customer_table(frames, everyone, JUN30, limit=2)["customer_id"].to_list() == ["A", "B"]


def test_customer_table_ties_on_revenue_go_by_id():
    rows = [("Z", "2026-06-01", 50.0), ("Y", "2026-06-02", 50.0), ("X", "2026-06-03", 80.0), ("W", "2026-06-04", 50.0)]
    tied = frames_from_rows({"orders": [
        {"order_id": str(i), "customer_id": c, "ordered_at": datetime.fromisoformat(d), "amount": a}
        for i, (c, d, a) in enumerate(rows)]})
    scored = seg.evaluate(tied, SegmentRule(), JUNE, scope=Scope())
    assert seg.customer_table(tied, scored, JUN30, limit=3)["customer_id"].to_list() == ["X", "W", "Y"]
    assert seg.customer_table(tied, scored, JUN30)["customer_id"].to_list() == ["X", "W", "Y", "Z"]


def test_customer_table_of_nobody_is_empty(frames):
    nobody = seg.evaluate(frames, SegmentRule.create(segments=["Hibernating"]), JUNE, scope=Scope())
    table = seg.customer_table(frames, nobody, JUN30)
    assert table.height == 0 and table.columns == list(seg.GRID_COLUMNS)


# --- scatter data -------------------------------------------------------------------------------------


def test_density_counts_customers_per_cell():
    scored = pl.DataFrame({"x": [0.0, 4.0, 5.0, 10.0, 10.0], "y": [0.0, 10.0, 0.0, 10.0, 2.0]})
    # 2 bins from 0 to 10: width 5; cell = ⌊v / 5⌋, the maximum 10 kept in the last cell (1)
    # x cells 0, 0, 1, 1, 1; y cells 0, 1, 0, 1, 0 (2 / 5 = 0.4) -> (0,0) 1, (0,1) 1, (1,0) 2, (1,1) 1
    cells = seg.density(scored, "x", "y", bins=2)
    assert cells.rows() == [(2.5, 2.5, 1), (2.5, 7.5, 1), (7.5, 2.5, 2), (7.5, 7.5, 1)]


def test_density_of_a_constant_axis_uses_a_unit_width():
    cells = seg.density(pl.DataFrame({"x": [3, 3, 3], "y": [1, 2, 3]}), "x", "y", bins=2)
    # x: no spread -> width 1, every point in cell 0 at 3 + 0.5; y: 1..3, width 1: cells 0, 1, 1 (3 clipped)
    assert cells.rows() == [(3.5, 1.5, 1), (3.5, 2.5, 2)]


def test_density_of_nobody_is_an_empty_typed_frame():
    cells = seg.density(pl.DataFrame(schema={"x": pl.Int64, "y": pl.Float64}), "x", "y")
    assert cells.height == 0
    assert cells.schema == pl.Schema({"x_mid": pl.Float64, "y_mid": pl.Float64, "customers": pl.Int64})


def test_scatter_points_keeps_every_customer_up_to_the_limit():
    scored = pl.DataFrame({"customer_id": [f"c{i:02d}" for i in range(10)], "r": list(range(10))})
    assert seg.scatter_points(scored, limit=10).equals(scored)
    assert seg.scatter_points(scored).height == 10  # the default limit is far above 10


def test_scatter_points_samples_the_limit_deterministically():
    scored = pl.DataFrame({"customer_id": [f"c{i:02d}" for i in range(10)], "r": list(range(10))})
    sample = seg.scatter_points(scored, limit=4, seed=7)
    assert sample.height == 4
    chosen = sample["customer_id"].to_list()
    assert chosen == sorted(set(chosen)) and set(chosen) <= set(scored["customer_id"])
    assert seg.scatter_points(scored, limit=4, seed=7).equals(sample)
    # each sampled row is the customer's own row
    assert all(r["r"] == int(r["customer_id"][1:]) for r in sample.iter_rows(named=True))


# --- chart selections -----------------------------------------------------------------------------------


def test_shape_rule_of_a_box_keeps_the_day_and_scope_and_orders_the_corners():
    base = SegmentRule.create(as_of=JUN30, scope={"region": ["Europe"]}, segments=["Loyal"])
    selection = {"box": [{"xref": "x", "yref": "y", "x": [120.0, 10.0], "y": [900.0, 50.0]}], "lasso": [], "points": []}
    rule = seg.shape_rule(selection, base, "recency_days", "monetary")
    assert rule == SegmentRule(as_of=JUN30, scope=(("region", ("Europe",)),), x="recency_days", y="monetary",
                               box=(10.0, 120.0, 50.0, 900.0))  # the base's segments give way to the shape


def test_shape_rule_of_a_lasso_takes_its_corners_in_order():
    selection = {"box": [], "lasso": [{"x": [1, 5, 3], "y": [1, 1, 4]}], "points": [{"x": 2, "y": 2}]}
    rule = seg.shape_rule(selection, SegmentRule(), "r", "f")
    assert (rule.x, rule.y, rule.lasso, rule.box) == ("r", "f", ((1.0, 1.0), (5.0, 1.0), (3.0, 4.0)), None)


def test_shape_rule_takes_the_last_box_and_prefers_a_lasso():
    two_boxes = {"box": [{"x": [0, 1], "y": [0, 1]}, {"x": [2, 3], "y": [4, 5]}]}
    assert seg.shape_rule(two_boxes, SegmentRule(), "r", "f").box == (2.0, 3.0, 4.0, 5.0)
    both = {**two_boxes, "lasso": [{"x": [1, 5, 3], "y": [1, 1, 4]}]}
    rule = seg.shape_rule(both, SegmentRule(), "r", "f")
    assert rule.box is None and len(rule.lasso) == 3


def test_shape_rule_without_a_usable_shape_is_none():
    assert seg.shape_rule({}, SegmentRule(), "r", "f") is None
    assert seg.shape_rule({"box": [], "lasso": [], "points": [{"x": 1, "y": 1}]}, SegmentRule(), "r", "f") is None
    unfinished = {"box": [{"x": [1], "y": [1, 2]}], "lasso": [{"x": [1, 2], "y": [1, 2]}]}
    assert seg.shape_rule(unfinished, SegmentRule(), "r", "f") is None


# --- the global filter: seg= in the URL narrows every table -------------------------------------------


def test_a_segment_rule_in_the_filters_narrows_every_table(frames):
    rule = SegmentRule.create(as_of=JUN30, segments=["Loyal", "New"])  # C and H
    ds = narrow(frames, Filters.create(JUNE, segment_rule=rule.to_json(), scope=Scope()))
    assert sorted(ds.orders.collect()["customer_id"].to_list()) == ["C", "C", "C", "H"]
    assert ds.tickets.collect()["ticket_id"].to_list() == ["T5"]
    assert ds.surveys.collect().height == 0  # only A and B answered surveys
    assert sorted(ds.customers.collect()["customer_id"].to_list()) == ["C", "H"]
    assert ds.opportunities.collect()["opportunity_id"].to_list() == ["O2"]
    assert ds.stages.collect()["opportunity_id"].to_list() == ["O2"]


def test_a_segment_rule_and_a_dimension_both_narrow(frames):
    rule = SegmentRule.create(as_of=JUN30, segments=["Loyal", "New"])  # C (Asia) and H (Europe)
    ds = narrow(frames, Filters.create(JUNE, regions=["Europe"], segment_rule=rule.to_json(), scope=Scope()))
    assert ds.orders.collect()["customer_id"].to_list() == ["H"]


def test_a_segment_rule_in_the_filters_needs_its_day(frames):
    with pytest.raises(SegmentRuleError, match="needs its as_of day"):
        narrow(frames, Filters.create(JUNE, segment_rule=SegmentRule.create(segments=["Loyal"]).to_json(), scope=Scope()))


def test_seg_round_trips_through_the_query_string():
    text = SegmentRule.create(as_of=JUN30, scope={"region": ["Europe"]}, segments=["Can't Lose Them"],
                              x="r", y="f", box=[1, 2, 3, 4]).to_json()
    filters = Filters.create(JUNE, segment_rule=text)  # as a link gives it: no scope
    params = filters.to_query_params()
    assert params["seg"] == [text]
    back, notices = Filters.from_query_params(params, anchor=JUN30)
    assert notices == []
    assert back == filters and SegmentRule.from_json(back.segment_rule).segments == ("Can't Lose Them",)
    assert "seg" not in Filters.create(JUNE, scope=Scope()).to_query_params()


# --- saved segments -----------------------------------------------------------------------------------


def test_save_list_and_load_keep_the_rule_without_its_day(store):
    rule = SegmentRule.create(as_of=MAY31, scope={"region": ["Asia"]}, tiers=["Churn risk"])
    name = seg.save_segment(store, "  Asia   at risk ", rule, user="ann", now=datetime(2026, 6, 1, 9, 0, 0, 123))
    assert name == "Asia at risk"  # runs of spaces collapsed, ends trimmed
    saved = seg.list_saved(store)
    row = saved.row(0, named=True)
    assert saved.height == 1
    assert (row["name"], row["created_by"], row["created_at"], row["updated_at"]) == (
        "Asia at risk", "ann", datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 9))
    assert json.loads(row["rule"]) == {"scope": {"region": ["Asia"]}, "tiers": ["Churn risk"]}  # no as_of
    assert row["description"] == "RFM as of the period end · region Asia · tier Churn risk"
    loaded = seg.load_saved(store, "Asia at risk")
    assert loaded.as_of is None and loaded == rule.undated()


def test_list_saved_is_sorted_by_name_and_empty_at_first(store):
    assert seg.list_saved(store).height == 0
    for name in ("b", "C", "a"):
        seg.save_segment(store, name, SegmentRule.create(tiers=["Newcomers"]))
    assert seg.list_saved(store)["name"].to_list() == ["C", "a", "b"]  # the database's binary order


def test_a_saved_rule_is_evaluated_on_the_data_of_the_day_it_is_opened(store, frames):
    rule = SegmentRule.create(as_of=MAY31, segments=["Loyal"])
    assert ids(seg.evaluate(frames, rule, MAY, scope=Scope())) == ["B", "C"]
    seg.save_segment(store, "Loyal", rule)
    loaded = seg.load_saved(store, "Loyal")
    # the store as it was on 31 May (no June order), scored on 30 Jun: A, B, C, D (n = 4), score = ⌈5 r / 4⌉
    #   recency A 30, C 61, D 166, B 333 -> R: B 2 (rank 1), D 3, C 4, A 5
    #   frequency D 2, C 3, A 4, B 4 -> F: D 2, C 3, A and B 5 (rank 3.5); monetary D 200, C 300, A 400, B 420
    #   -> M: D 2, C 3, A 4, B 5. B 255 and C 433 are Loyal.
    assert ids(seg.evaluate(build_frames(last_day="2026-05-31"), loaded, JUNE, scope=Scope())) == ["B", "C"]
    # with June's orders (A on 30 Jun, H new), B's R falls to 1: Can't Lose Them
    assert ids(seg.evaluate(frames, loaded, JUNE, scope=Scope())) == ["C"]


def test_saving_needs_a_name_and_a_selection(store):
    with pytest.raises(SavedSegmentError, match="give the segment a name"):
        seg.save_segment(store, "   ", SegmentRule.create(tiers=["Newcomers"]))
    with pytest.raises(SavedSegmentError, match="at most 200 characters"):
        seg.save_segment(store, "x" * 201, SegmentRule.create(tiers=["Newcomers"]))
    with pytest.raises(SavedSegmentError, match="nothing is selected"):
        seg.save_segment(store, "All", SegmentRule.create(as_of=JUN30, scope={"region": ["Europe"]}))
    assert seg.list_saved(store).height == 0


def test_a_taken_name_is_an_error_unless_replacing(store):
    seg.save_segment(store, "Big", SegmentRule.create(tiers=["High value"]), user="ann", now=datetime(2026, 6, 1))
    with pytest.raises(SavedSegmentError, match="a segment named 'Big' exists; choose another name or replace it"):
        seg.save_segment(store, "Big", SegmentRule.create(tiers=["Newcomers"]))
    assert seg.load_saved(store, "Big").tiers == ("High value",)
    seg.save_segment(store, "Big", SegmentRule.create(tiers=["Newcomers"]), user="bob", replace=True,
                     now=datetime(2026, 6, 2))
    assert seg.load_saved(store, "Big").tiers == ("Newcomers",)
    row = seg.list_saved(store).row(0, named=True)
    assert (row["created_by"], row["created_at"], row["updated_at"]) == ("ann", datetime(2026, 6, 1),
                                                                         datetime(2026, 6, 2))


def test_rename_a_saved_segment(store):
    seg.save_segment(store, "Old", SegmentRule.create(tiers=["Newcomers"]), now=datetime(2026, 6, 1))
    seg.save_segment(store, "Other", SegmentRule.create(tiers=["Churn risk"]), now=datetime(2026, 6, 1))
    assert seg.rename_segment(store, "Old", "  New  name ", now=datetime(2026, 6, 3)) == "New name"
    assert seg.list_saved(store)["name"].to_list() == ["New name", "Other"]
    assert seg.load_saved(store, "New name").tiers == ("Newcomers",)
    assert seg.list_saved(store).row(0, named=True)["updated_at"] == datetime(2026, 6, 3)
    assert seg.rename_segment(store, "Other", "Other") == "Other"  # to its own name: nothing to clash with


def test_rename_errors(store):
    seg.save_segment(store, "A", SegmentRule.create(tiers=["Newcomers"]))
    seg.save_segment(store, "B", SegmentRule.create(tiers=["Churn risk"]))
    with pytest.raises(SavedSegmentError, match="a segment named 'B' exists already"):
        seg.rename_segment(store, "A", "B")
    with pytest.raises(SavedSegmentError, match="no saved segment named 'Z'"):
        seg.rename_segment(store, "Z", "Y")
    with pytest.raises(SavedSegmentError, match="give the segment a name"):
        seg.rename_segment(store, "A", " ")
    assert seg.list_saved(store)["name"].to_list() == ["A", "B"]


def test_delete_a_saved_segment(store):
    seg.save_segment(store, "A", SegmentRule.create(tiers=["Newcomers"]))
    seg.save_segment(store, "B", SegmentRule.create(tiers=["Churn risk"]))
    seg.delete_segment(store, "A")
    assert seg.list_saved(store)["name"].to_list() == ["B"]
    with pytest.raises(SavedSegmentError, match="no saved segment named 'A'"):
        seg.delete_segment(store, "A")
    with pytest.raises(SavedSegmentError, match="no saved segment named 'A'"):
        seg.load_saved(store, "A")


def test_a_saved_movement_is_measured_from_the_previous_period_end_when_opened(store, frames):
    rule = SegmentRule.create(as_of=JUN30, moved_from=["Loyal"], since=MAY31, segments=["Can't Lose Them"])
    seg.save_segment(store, "Slipping loyal", rule)
    loaded = seg.load_saved(store, "Slipping loyal")
    assert (loaded.as_of, loaded.since) == (None, None)
    # opened in June: Loyal on 31 May (B, C) and Can't Lose Them on 30 Jun (B)
    assert ids(seg.evaluate(frames, loaded, JUNE, scope=Scope())) == ["B"]


def test_links_and_saved_segments_with_the_former_tier_names_still_open():
    old = SegmentRule.from_json('{"tiers": ["at risk", "new", "high value", "potential"]}')
    assert old.tiers == ("Churn risk", "High value", "Newcomers", "Potential")
    assert old.to_json() == '{"tiers":["Churn risk","High value","Newcomers","Potential"]}'
