"""Churn risk: labels, the metrics (recomputed here independently), the time split, a planted rule the tree
must find, and that nothing after the as-of date reaches the model."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import churn_model as cm
from crm.customer_facts import customer_facts
from crm.dataset import COLUMNS, Dataset, Frames, enrich, frames_from_rows
from crm.filters import Filters, Period
from crm.settings import ChurnBasis
from tests.conftest import AS_OF

PERIOD = Period(AS_OF, AS_OF)


def dataset(frames: Frames) -> Dataset:
    """Every row of the frames as a Dataset, through the narrowing entry point the code base has."""
    try:
        from crm.narrowing import narrow
        from crm.scope import Scope

        return narrow(frames, Filters.create(PERIOD, scope=Scope()))
    except ImportError:
        return frames.narrow(Filters.create(PERIOD))


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


# --- labels ------------------------------------------------------------------------------------

T = date(2026, 3, 31)


def test_activity_label_is_no_order_in_the_next_90_days():
    orders = [
        # all active on T (an order within T - 89 .. T)
        ("kept", T - timedelta(days=10)), ("kept", T + timedelta(days=90)),        # orders on T + 90: still active
        ("gone", T - timedelta(days=89)), ("gone", T + timedelta(days=91)),        # next order too late: churned
        ("quiet", T),                                                              # nothing after: churned
        ("lapsed", T - timedelta(days=90)), ("lapsed", T + timedelta(days=5)),     # not active on T: no label
    ]
    rows = [{"order_id": f"o{i}", "customer_id": c, "ordered_at": at(d), "amount": 10.0} for i, (c, d) in enumerate(orders)]
    customers = [{"customer_id": c, "created_at": datetime(2025, 1, 1)} for c in ("kept", "gone", "quiet", "lapsed")]
    labels = cm.churn_labels(dataset(frames_from_rows({"orders": rows, "customers": customers})), T)
    assert dict(labels.sort("customer_id").rows()) == {"gone": True, "kept": False, "quiet": True}


def test_subscription_label_is_a_cancellation_in_the_next_90_days():
    customers = [
        {"customer_id": "in_window", "created_at": datetime(2025, 1, 1), "churned_at": at(T + timedelta(days=90), 23)},
        {"customer_id": "later", "created_at": datetime(2025, 1, 1), "churned_at": at(T + timedelta(days=91), 0)},
        {"customer_id": "never", "created_at": datetime(2025, 1, 1)},
        {"customer_id": "already", "created_at": datetime(2025, 1, 1), "churned_at": at(T, 9)},  # not active on T
    ]
    frames = frames_from_rows({"customers": customers}, churn_basis=ChurnBasis.SUBSCRIPTION)
    labels = cm.churn_labels(dataset(frames), T)
    assert dict(labels.sort("customer_id").rows()) == {"in_window": True, "later": False, "never": False}


def test_training_dates_end_their_windows_by_the_as_of_date():
    assert cm.training_dates(date(2026, 6, 30), history=3, step_days=30) == [
        date(2026, 4, 1), date(2026, 3, 2), date(2026, 1, 31)]


# --- metrics -----------------------------------------------------------------------------------


def test_top_share_counts_ties_at_the_cut_in_proportion():
    # n = 20 -> k = 2. One score above the cut (a churner), three tied at the cut (one churner): the second
    # place is shared, worth 1/3 of a churner. Churners in all: 3.
    scores = np.array([0.9, 0.5, 0.5, 0.5] + [0.1] * 16)
    labels = np.array([1, 1, 0, 0] + [1] + [0] * 15)
    precision, recall = cm.top_share(scores, labels)
    assert precision == pytest.approx((1 + 1 / 3) / 2)
    assert recall == pytest.approx((1 + 1 / 3) / 3)


def test_calibration_table_by_deciles():
    scores = np.arange(20) / 20
    labels = np.array([0] * 10 + [1] * 10)
    table = cm.calibration_table(scores, labels, [f"c{i:02d}" for i in range(20)])
    assert table["customers"].to_list() == [2] * 10
    assert table["mean_predicted"].to_list() == pytest.approx([(2 * d + 0.5) / 20 for d in range(10)])
    assert table["observed_rate"].to_list() == [0.0] * 5 + [1.0] * 5


# --- a planted rule ----------------------------------------------------------------------------


def planted(n: int = 60) -> Frames:
    """2n customers active on T (an order 10 days before), each with two high-priority tickets in the 90 days
    before T. For the first n both tickets breach (answered after 6 h) and they never order again; the
    others are answered in 1 h and order again 30 days after T. Nothing else tells them apart."""
    customers, orders, tickets = [], [], []
    for i in range(2 * n):
        cid, breaching = f"C{i:03d}", i < n
        customers.append({"customer_id": cid, "created_at": datetime(2025, 1, 1), "segment": "SMB"})
        orders.append({"order_id": f"{cid}-1", "customer_id": cid, "ordered_at": at(T - timedelta(days=10)), "amount": 100.0})
        if not breaching:
            orders.append({"order_id": f"{cid}-2", "customer_id": cid, "ordered_at": at(T + timedelta(days=30)), "amount": 100.0})
        for k in (1, 2):
            created = at(T - timedelta(days=20 * k))
            tickets.append({"ticket_id": f"{cid}-t{k}", "customer_id": cid, "created_at": created, "priority": "high",
                            "first_response_at": created + timedelta(hours=6 if breaching else 1)})
    return frames_from_rows({"customers": customers, "orders": orders, "tickets": tickets})


def test_the_tree_finds_a_planted_rule_and_the_risk_list_names_it():
    ds = dataset(planted())
    model = cm.fit_models(cm.labelled_facts(ds, [T]), T)
    rules = cm.tree_rules(model)
    assert rules.select("rule", "customers", "churned", "churn_rate").rows() == [
        ("2+ SLA breaches in the last 90 days", 60, 60, 1.0),
        ("at most 1 SLA breaches in the last 90 days", 60, 0, 0.0),  # the tree splits halfway, at 1.0
    ]
    importance = cm.feature_importance(model)
    assert importance.row(0) == ("sla_breaches_90d", "SLA breaches in the last 90 days", 1.0)
    risks = cm.risk_list(model, customer_facts(ds, T))
    assert risks.height == 120
    top = risks.row(0, named=True)
    assert (top["customer_id"], top["risk"], top["revenue"], top["revenue_at_risk"]) == ("C000", 1.0, 100.0, 100.0)
    assert top["rule"] == "2+ SLA breaches in the last 90 days → 100% churned"
    assert risks["risk"].to_list() == [1.0] * 60 + [0.0] * 60


def test_rules_merge_repeated_splits_and_read_integer_thresholds():
    features = (cm.Feature("recency_days", "days since the last order", "count"),
                cm.Feature("last_nps", "last NPS score", "score"),
                cm.Feature("monetary", "order value in the last 365 days", "money"),
                cm.Feature("segment=SMB", "segment SMB", "flag", "segment", "SMB"))
    path = [(0, True, 60.5, False), (1, False, 6.5, True), (0, False, 89.5, False), (2, True, 1234.4, False),
            (3, False, 0.5, False)]
    assert cm.rule_text(features, path) == (
        "61–89 days since the last order and last NPS score ≤ 6 (or none) and "
        "order value in the last 365 days over 1,234 and not segment SMB")
    assert cm.rule_text(features, []) == "all customers"
    # a split at an infinite threshold parts known values (left) from missing ones (right)
    assert cm.rule_text(features, [(1, True, float("inf"), True)]) == "no last NPS score"
    assert cm.rule_text(features, [(1, False, float("inf"), False)]) == "last NPS score known"
    assert cm.rule_text(features, [(1, False, float("inf"), False), (1, True, 8.5, False)]) == "last NPS score ≥ 9"


# --- on the demo data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_ds(demo_frames) -> Dataset:
    return dataset(enrich({name: demo_frames[name] for name in COLUMNS}))


@pytest.fixture(scope="module")
def evaluation(demo_ds) -> cm.ChurnEvaluation:
    return cm.evaluate_churn_model(demo_ds, AS_OF)


def mann_whitney_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a churner > score of a stayer) + ½ P(equal), over every pair."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def expected_top(scores: np.ndarray, labels: np.ndarray, share: float = 0.1) -> tuple[float, float]:
    """Each row is in the top k with probability (k − rows scoring higher) / rows scoring the same, clipped
    to 0..1 (every order of the ties equally likely)."""
    k = int(np.ceil(share * scores.size))
    higher = (scores[None, :] > scores[:, None]).sum(axis=1)
    same = (scores[None, :] == scores[:, None]).sum(axis=1)
    inside = np.clip((k - higher) / same, 0, 1)
    hits = float((inside * labels).sum())
    return hits / k, hits / labels.sum()


def test_time_split_trains_only_on_windows_closed_by_the_evaluation_date(evaluation):
    assert evaluation.evaluation_date == AS_OF - timedelta(days=90)
    assert len(evaluation.training_dates) == cm.HISTORY_DATES
    for day in evaluation.training_dates:
        assert day < evaluation.evaluation_date
        assert day + timedelta(days=cm.HORIZON_DAYS) <= evaluation.evaluation_date
    assert evaluation.model.as_of == evaluation.evaluation_date


def test_metrics_recomputed_independently(demo_ds, evaluation):
    scores = evaluation.scores
    labels = scores["churned"].cast(pl.Int64).to_numpy()
    assert scores.height == evaluation.evaluation_rows > 100 and 0 < labels.sum() < labels.size
    metrics = {r["model"]: r for r in evaluation.metrics.iter_rows(named=True)}
    assert set(metrics) == {"tree", "boosted", "naive_rule", "recency"}
    for name, row in metrics.items():
        s = scores[name].to_numpy()
        assert row["auc"] == pytest.approx(mann_whitney_auc(s, labels), abs=1e-12), name
        precision, recall = expected_top(s, labels)
        assert row["precision_top10"] == pytest.approx(precision, abs=1e-12), name
        assert row["recall_top10"] == pytest.approx(recall, abs=1e-12), name
    # the naive rule flags recency > 60 days
    recency = customer_facts(demo_ds, evaluation.evaluation_date).join(
        scores.select("customer_id"), on="customer_id", how="semi").sort("customer_id")
    flagged = scores.sort("customer_id")["naive_rule"].to_numpy()
    assert (flagged == (recency["recency_days"].to_numpy() > 60)).all()


def test_kept_model_and_figures(evaluation):
    tree_auc = evaluation.metrics.filter(model="tree")["auc"][0]
    boosted_auc = evaluation.metrics.filter(model="boosted")["auc"][0]
    assert evaluation.kept == ("boosted" if boosted_auc >= tree_auc + cm.CLEARLY_BETTER_AUC else "tree")
    summary = evaluation.summary()
    kept = evaluation.metrics.filter(model=evaluation.kept).row(0, named=True)
    assert (summary["auc"], summary["precision_top10"], summary["recall_top10"]) == (
        kept["auc"], kept["precision_top10"], kept["recall_top10"])
    assert summary["naive_rule"]["auc"] == evaluation.metrics.filter(model="naive_rule")["auc"][0]  # type: ignore[index]
    assert evaluation.model.tree.get_depth() <= cm.MAX_DEPTH
    assert evaluation.model.tree.get_params()["class_weight"] == "balanced"


def test_calibration_and_rules_add_up(evaluation):
    calibration = evaluation.calibration
    assert calibration["decile"].to_list() == list(range(1, 11))
    assert calibration["customers"].sum() == evaluation.evaluation_rows
    assert calibration["churned"].sum() == evaluation.scores["churned"].sum()
    predicted = calibration["mean_predicted"].to_list()
    assert predicted == sorted(predicted)
    rules = evaluation.rules
    assert rules["customers"].sum() == evaluation.training_rows
    assert rules["eval_customers"].sum() == evaluation.evaluation_rows
    assert rules["churn_rate"].to_list() == sorted(rules["churn_rate"].to_list(), reverse=True)
    assert all(rule for rule in rules["rule"].to_list())


def test_deterministic(demo_ds, evaluation):
    again = cm.evaluate_churn_model(demo_ds, AS_OF)
    assert_frame_equal(again.metrics, evaluation.metrics)
    assert_frame_equal(again.scores, evaluation.scores)
    assert_frame_equal(again.rules, evaluation.rules)


def test_rows_after_the_as_of_date_do_not_reach_the_model(demo_frames):
    # the demo's real later rows against none at all plus, for every customer, an order, a ticket and a
    # survey response stamped at midnight after as_of: a label or fact reading one moment too far differs
    as_of = AS_OF - timedelta(days=45)
    end = Period(as_of, as_of).end_ts
    cut = {name: demo_frames[name] for name in COLUMNS}
    ids = cut["customers"]["customer_id"]
    cut["orders"] = pl.concat([
        cut["orders"].filter(pl.col("ordered_at") < end),
        pl.DataFrame({"order_id": "late-" + ids, "customer_id": ids, "ordered_at": [end] * ids.len(),
                      "amount": [1.0] * ids.len()}).cast(dict(cut["orders"].select("order_id", "customer_id", "ordered_at",
                                                                                   "amount").schema)),
    ], how="diagonal")
    cut["tickets"] = pl.concat([
        cut["tickets"].filter(pl.col("created_at") < end),
        pl.DataFrame({"ticket_id": "late-" + ids, "customer_id": ids, "created_at": [end] * ids.len(),
                      "priority": ["urgent"] * ids.len()}).cast(dict(cut["tickets"].select("ticket_id", "customer_id",
                                                                                          "created_at", "priority").schema)),
    ], how="diagonal")
    cut["survey_responses"] = cut["survey_responses"].filter(pl.col("responded_at") < end)
    cut["opportunities"] = cut["opportunities"].filter(pl.col("created_at") < end)
    cut["interactions"] = cut["interactions"].filter(pl.col("occurred_at") < end)
    full_ds, cut_ds = dataset(enrich({name: demo_frames[name] for name in COLUMNS})), dataset(enrich(cut))
    full, trimmed = cm.evaluate_churn_model(full_ds, as_of, history=2), cm.evaluate_churn_model(cut_ds, as_of, history=2)
    assert_frame_equal(full.metrics, trimmed.metrics)
    assert_frame_equal(full.scores, trimmed.scores)
    model_full = cm.train_churn_model(full_ds, as_of, history=2, evaluation=full)
    model_cut = cm.train_churn_model(cut_ds, as_of, history=2, evaluation=trimmed)
    assert_frame_equal(cm.risk_list(model_full, customer_facts(full_ds, as_of)),
                       cm.risk_list(model_cut, customer_facts(cut_ds, as_of)))
    # a day later the planted rows count: every customer is active
    assert customer_facts(cut_ds, as_of + timedelta(days=1))["active"].all()


def test_risk_list_of_the_trained_model(demo_ds, evaluation):
    model = cm.train_churn_model(demo_ds, AS_OF, evaluation=evaluation)
    assert model.as_of == AS_OF and model.kind == evaluation.kept
    assert max(model.trained_on) == AS_OF - timedelta(days=cm.HORIZON_DAYS)
    facts = customer_facts(demo_ds, AS_OF)
    risks = cm.risk_list(model, facts)
    assert risks.height == facts["active"].sum()
    expected = (risks["risk"] * risks["revenue"]).round(2)
    assert risks["revenue_at_risk"].to_list() == expected.to_list()
    assert risks["revenue_at_risk"].to_list() == sorted(risks["revenue_at_risk"].to_list(), reverse=True)
    assert risks["rule"].str.contains(" → ").all()
