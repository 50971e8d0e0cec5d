"""Churn risk: who of today's active customers will not be active 90 days from now, and why.

Label (DESIGN.md): a customer active on day t (crm.customer_facts ``active``, on the store's churn basis)
churned within the horizon when they are not active on t + 90; on the activity basis that is "no order
dated t + 1 … t + 90", on the subscription basis "a cancellation (churned_at) dated t + 1 … t + 90".
Features are the customer's facts as of t (crm.customer_facts), nothing later.

Time split, no leakage. Everything is "as of" a day D the data is known through: a training row is a
customer active on an as-of date t with t + 90 <= D (its whole label window lies before D's end); the
dates are t = D − 90, D − 90 − 30, … (``history`` of them, ``step_days`` apart). ``evaluate`` holds
back the latest labelled date, E = D − 90: it trains on dates whose windows end on or before E
(t = E − 90, E − 120, …) and reports on the customers active on E, labelled by D. ``train`` then fits
the same kind of model on the dates ending at D and scores the customers active on D.

Models: a shallow decision tree (depth <= 5, class-weighted, every leaf at least 1% of the training
rows) by default, because its rules can be read; a histogram gradient-boosted model is fitted beside
it and kept only when its held-back ROC AUC is at least ``CLEARLY_BETTER_AUC`` higher. The tree's risk
for a customer is the churn share of the training rows in its leaf (unweighted: a calibrated
frequency, not the class-weighted probability). Fixed random states: same data, same model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from crm.customer_facts import customer_facts
from crm.dataset import Dataset
from crm.settings import ChurnBasis

HORIZON_DAYS = 90
HISTORY_DATES = 6
STEP_DAYS = 30
MAX_DEPTH = 5
MIN_LEAF_SHARE = 0.01
CLEARLY_BETTER_AUC = 0.02
"""The boosted model is kept only when its held-back AUC beats the tree's by at least this much."""
TOP_SHARE = 0.10
NAIVE_RECENCY_DAYS = 60
"""The naive rule the models are compared with: churn predicted when the last order is more than 60 days old."""
RANDOM_STATE = 0
OPENMP_THREADS = 1
"""The boosted model fits and predicts on one OpenMP thread: with two threads on a busy machine (a server
drawing pages, other jobs) its threads wait for each other's core and a fit took 5-30 times as long as on
one (bench/bench_customer_facts.py); one thread also leaves a core to the pages."""

ModelKind = Literal["tree", "boosted"]
FeatureKind = Literal["count", "money", "share", "score", "flag"]
Split = tuple[int, bool, float, bool]
"""One step of a path down the tree: feature index, went right (value > threshold), threshold, and whether
a missing value goes this way too."""


@dataclass(frozen=True)
class Feature:
    """A model input: a column of crm.customer_facts (``flag``: 1.0 where ``column`` equals ``value``)."""

    key: str
    label: str
    kind: FeatureKind
    column: str = ""
    value: str = ""


NUMERIC_FEATURES: tuple[Feature, ...] = (
    Feature("recency_days", "days since the last order", "count"),
    Feature("frequency", "orders in the last 365 days", "count"),
    Feature("monetary", "order value in the last 365 days", "money"),
    Feature("tenure_days", "days as a customer", "count"),
    Feature("orders_90d", "orders in the last 90 days", "count"),
    Feature("order_value_90d", "order value in the last 90 days", "money"),
    Feature("order_value_prev_90d", "order value in the 90 days before", "money"),
    Feature("order_value_change_share", "change of order value against the 90 days before", "share"),
    Feature("tickets_90d", "tickets in the last 90 days", "count"),
    Feature("sla_breaches_90d", "SLA breaches in the last 90 days", "count"),
    Feature("interactions_90d", "interactions in the last 90 days", "count"),
    Feature("last_nps", "last NPS score", "score"),
    Feature("last_csat", "last CSAT score", "score"),
    Feature("open_deals", "open deals", "count"),
    Feature("open_deal_amount", "open deal amount", "money"),
)
"""The facts the models read, with the words a rule uses for them; the customer's segment joins them as
one flag per segment seen in training."""


# --- labels and training rows --------------------------------------------------------------------


def churn_labels(ds: Dataset, as_of: date, horizon_days: int = HORIZON_DAYS,
                 facts: pl.DataFrame | None = None) -> pl.DataFrame:
    """customer_id and ``churned`` (bool) for every customer active on ``as_of`` (crm.customer_facts;
    ``facts``: those facts, when the caller has them): not active on as_of + horizon (see the module
    docstring). Reads rows up to the end of that day."""
    facts = customer_facts(ds, as_of) if facts is None else facts
    active = facts.filter(pl.col("active")).select("customer_id")
    last = as_of + timedelta(days=horizon_days)
    if ds.churn_basis is ChurnBasis.SUBSCRIPTION:
        cancelled = ds.customers.filter(pl.col("churned_at").dt.date().is_between(as_of + timedelta(days=1), last))
        gone = cancelled.select("customer_id").collect()["customer_id"]
        return active.with_columns(churned=pl.col("customer_id").is_in(gone.implode()))
    ordered = (
        ds.orders.filter(pl.col("order_date").is_between(as_of + timedelta(days=1), last))
        .select("customer_id").unique().collect()["customer_id"]
    )
    return active.with_columns(churned=~pl.col("customer_id").is_in(ordered.implode()))


def training_dates(as_of: date, history: int = HISTORY_DATES, step_days: int = STEP_DAYS,
                   horizon_days: int = HORIZON_DAYS) -> list[date]:
    """The ``history`` as-of dates whose label windows end on or before ``as_of``, latest first:
    as_of − horizon − k × step for k = 0 … history − 1."""
    if history < 1 or step_days < 1:
        raise ValueError("history and step_days must be at least 1")
    return [as_of - timedelta(days=horizon_days + k * step_days) for k in range(history)]


def labelled_facts(ds: Dataset, dates: Sequence[date], horizon_days: int = HORIZON_DAYS) -> pl.DataFrame:
    """The facts of the customers active on each date, with ``as_of`` and ``churned``, stacked."""
    parts = []
    for day in dates:
        facts = customer_facts(ds, day)
        parts.append(facts.join(churn_labels(ds, day, horizon_days, facts), on="customer_id", how="inner")
                     .with_columns(as_of=pl.lit(day, dtype=pl.Date)))
    return pl.concat(parts) if parts else pl.DataFrame()


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnModel:
    """A fitted churn model: the tree (always, for its rules) and the boosted model when it was kept."""

    kind: ModelKind
    """Which model gives the risk: "tree" or "boosted"."""
    as_of: date
    """The day the data was known through; every training label window ends on or before it."""
    trained_on: tuple[date, ...]
    horizon_days: int
    features: tuple[Feature, ...]
    tree: DecisionTreeClassifier
    boosted: HistGradientBoostingClassifier | None
    leaf_customers: dict[int, int]
    """Training rows per tree leaf (node id)."""
    leaf_churned: dict[int, int]
    """Churned training rows per tree leaf."""
    leaf_rules: dict[int, str]
    """The path to each tree leaf in words (``rule_text``)."""
    training_rows: int = 0
    training_churn_rate: float = 0.0

    def risk(self, facts: pl.DataFrame) -> np.ndarray:
        """Churn risk 0–1 for each row of ``facts`` (crm.customer_facts rows): the kept model's."""
        x = feature_matrix(facts, self.features)
        if self.kind == "boosted" and self.boosted is not None:
            return self.boosted_risk(x)
        return self.tree_risk(x)

    def boosted_risk(self, x: np.ndarray) -> np.ndarray:
        """The boosted model's churn probability for each row of ``x`` (0–1)."""
        assert self.boosted is not None
        with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
            return np.asarray(self.boosted.predict_proba(x)[:, 1], dtype=np.float64)

    def tree_risk(self, x: np.ndarray) -> np.ndarray:
        """The churn share of the training rows in the tree leaf each row of ``x`` falls in."""
        leaves = self.tree.apply(x)
        return np.array([self.leaf_churned.get(int(n), 0) / max(self.leaf_customers.get(int(n), 0), 1) for n in leaves])


def feature_list(training: pl.DataFrame) -> tuple[Feature, ...]:
    """The ``NUMERIC_FEATURES`` with a value in some row of ``training`` (a fact never known cannot
    split anything), and a flag per customer segment present in it (sorted)."""
    known = tuple(f for f in NUMERIC_FEATURES if training[f.key].null_count() < training.height)
    segments = sorted(training["segment"].drop_nulls().unique().to_list()) if training.height else []
    flags = tuple(Feature(f"segment={s}", f"segment {s}", "flag", "segment", s) for s in segments)
    return known + flags


def feature_matrix(facts: pl.DataFrame, features: Sequence[Feature]) -> np.ndarray:
    """The rows of ``facts`` as a float matrix, one column per feature; a missing fact is NaN (the models
    send it down one side of a split, which the rule then names: "or none")."""
    if not features:
        return np.zeros((facts.height, 0))
    columns = [
        (pl.col(f.column) == f.value).fill_null(False).cast(pl.Float64) if f.kind == "flag"
        else pl.col(f.key).cast(pl.Float64).fill_null(float("nan"))
        for f in features
    ]
    return facts.select(*(c.alias(f"_{i}") for i, c in enumerate(columns))).to_numpy().astype(np.float64)


def fit_models(training: pl.DataFrame, as_of: date, horizon_days: int = HORIZON_DAYS,
               keep_boosted: bool = False) -> ChurnModel:
    """Fit the tree (and the boosted model) on labelled facts (``labelled_facts`` rows); ``keep_boosted``
    makes the boosted model give the risk."""
    if training.height == 0 or training["churned"].n_unique() < 2:
        raise ValueError("the training rows need churned and retained customers; use more history or a later date")
    features = feature_list(training)
    x, y = feature_matrix(training, features), training["churned"].to_numpy().astype(np.int64)
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, class_weight="balanced", min_samples_leaf=MIN_LEAF_SHARE,
                                  random_state=RANDOM_STATE).fit(x, y)
    with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
        boosted = HistGradientBoostingClassifier(random_state=RANDOM_STATE).fit(x, y)
    leaves = tree.apply(x)
    customers = np.bincount(leaves, minlength=tree.tree_.node_count)
    churned = np.bincount(leaves, weights=y, minlength=tree.tree_.node_count)
    paths = _paths(tree, x)
    return ChurnModel(
        kind="boosted" if keep_boosted else "tree", as_of=as_of,
        trained_on=tuple(sorted(training["as_of"].unique().to_list())), horizon_days=horizon_days,
        features=features, tree=tree, boosted=boosted,
        leaf_customers={int(n): int(customers[n]) for n in np.flatnonzero(customers)},
        leaf_churned={int(n): int(churned[n]) for n in np.flatnonzero(customers)},
        leaf_rules={int(n): rule_text(features, paths[int(n)]) for n in np.flatnonzero(customers)},
        training_rows=training.height, training_churn_rate=float(y.mean()),
    )


# --- validation ----------------------------------------------------------------------------------


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (ties count half); None when only one class is present."""
    if labels.size == 0 or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, scores))


def top_share(scores: np.ndarray, labels: np.ndarray, share: float = TOP_SHARE) -> tuple[float | None, float | None]:
    """Precision and recall among the top ``share`` of rows by score: k = ⌈share × n⌉ rows. Rows tied with
    the k-th score count in proportion (the expected value over every order of the ties), so the figure
    does not depend on how ties are broken. (None, None) for no rows; recall None without churners."""
    n = scores.size
    if n == 0:
        return None, None
    k = math.ceil(share * n)
    cut = np.sort(scores)[::-1][k - 1]
    above, tied = scores > cut, scores == cut
    hits = labels[above].sum() + (k - above.sum()) * labels[tied].mean()
    positives = labels.sum()
    return float(hits / k), (float(hits / positives) if positives else None)


def calibration_table(scores: np.ndarray, labels: np.ndarray, ids: Sequence[str], bins: int = 10) -> pl.DataFrame:
    """Deciles of the predicted risk: rows ordered by score (ties by customer id) and cut into ``bins``
    groups of equal size (±1); per group ``decile`` (1 = lowest risk), customers, mean_predicted,
    churned, observed_rate."""
    frame = pl.DataFrame({"score": scores, "churned": labels.astype(np.int64), "id": list(ids)})
    n = frame.height
    return (
        frame.sort("score", "id")
        .with_columns(decile=(pl.int_range(pl.len()) * bins // max(n, 1) + 1).cast(pl.Int64))
        .group_by("decile")
        .agg(customers=pl.len().cast(pl.Int64), mean_predicted=pl.col("score").mean(),
             churned=pl.col("churned").sum().cast(pl.Int64), observed_rate=pl.col("churned").mean())
        .sort("decile")
    )


@dataclass(frozen=True)
class ChurnEvaluation:
    """How the models did on the held-back date, against the naive rule."""

    as_of: date
    evaluation_date: date
    training_dates: tuple[date, ...]
    horizon_days: int
    training_rows: int
    evaluation_rows: int
    evaluation_churn_rate: float
    kept: ModelKind
    metrics: pl.DataFrame
    """One row per model (tree, boosted, naive_rule: recency > 60 days as 0/1, recency: days since the
    last order as the score): auc, precision_top10, recall_top10."""
    calibration: pl.DataFrame
    """``calibration_table`` of the kept model, with ``model``."""
    scores: pl.DataFrame
    """Per held-back customer: customer_id, churned, tree, boosted, naive_rule, recency (the scores)."""
    rules: pl.DataFrame
    """``tree_rules`` with the held-back customers per leaf: eval_customers, eval_churned, eval_churn_rate."""
    model: ChurnModel

    def summary(self) -> dict[str, object]:
        """The figures as one JSON-ready object: the kept model's auc, precision_top10 and recall_top10
        at the top level, and every model's under ``models``."""
        models = {r["model"]: {k: r[k] for k in ("auc", "precision_top10", "recall_top10")}
                  for r in self.metrics.iter_rows(named=True)}
        return {
            "as_of": self.as_of.isoformat(), "evaluation_date": self.evaluation_date.isoformat(),
            "training_dates": [d.isoformat() for d in self.training_dates], "horizon_days": self.horizon_days,
            "training_rows": self.training_rows, "evaluation_rows": self.evaluation_rows,
            "evaluation_churn_rate": self.evaluation_churn_rate, "model": self.kept, **models[self.kept],
            "naive_rule": models["naive_rule"], "models": models,
        }


def evaluate_churn_model(ds: Dataset, as_of: date, history: int = HISTORY_DATES, step_days: int = STEP_DAYS,
                         horizon_days: int = HORIZON_DAYS) -> ChurnEvaluation:
    """Train on dates whose label windows end by E = as_of − horizon, report on the customers active on E
    (labelled by the data up to ``as_of``): see the module docstring."""
    evaluation_date = as_of - timedelta(days=horizon_days)
    dates = training_dates(evaluation_date, history, step_days, horizon_days)
    model = fit_models(labelled_facts(ds, dates, horizon_days), evaluation_date, horizon_days)
    held = labelled_facts(ds, [evaluation_date], horizon_days)
    if held.height == 0:
        raise ValueError(f"no customer was active on {evaluation_date}")
    x, y = feature_matrix(held, model.features), held["churned"].to_numpy().astype(np.int64)
    recency = held["recency_days"].cast(pl.Float64).fill_null(float("inf")).to_numpy()
    scores = {
        "tree": model.tree_risk(x),
        "boosted": model.boosted_risk(x),
        "naive_rule": (recency > NAIVE_RECENCY_DAYS).astype(np.float64),
        "recency": recency,
    }
    aucs = {name: auc(s, y) for name, s in scores.items()}
    tops = {name: top_share(s, y) for name, s in scores.items()}
    metrics = pl.DataFrame({
        "model": list(scores), "auc": list(aucs.values()),
        "precision_top10": [p for p, _ in tops.values()], "recall_top10": [r for _, r in tops.values()],
    }, schema={"model": pl.String, "auc": pl.Float64, "precision_top10": pl.Float64, "recall_top10": pl.Float64})
    tree_auc, boosted_auc = aucs["tree"], aucs["boosted"]
    better = tree_auc is not None and boosted_auc is not None and boosted_auc >= tree_auc + CLEARLY_BETTER_AUC
    kept: ModelKind = "boosted" if better else "tree"
    ids = held["customer_id"].to_list()
    leaves = model.tree.apply(x)
    held_leaves = pl.DataFrame({"leaf": leaves.astype(np.int64), "churned": y}).group_by("leaf").agg(
        eval_customers=pl.len().cast(pl.Int64), eval_churned=pl.col("churned").sum().cast(pl.Int64))
    rules = tree_rules(model).join(held_leaves, on="leaf", how="left", maintain_order="left").with_columns(
        pl.col("eval_customers", "eval_churned").fill_null(0)
    ).with_columns(eval_churn_rate=pl.when(pl.col("eval_customers") > 0).then(
        pl.col("eval_churned") / pl.col("eval_customers")))
    return ChurnEvaluation(
        as_of=as_of, evaluation_date=evaluation_date, training_dates=model.trained_on, horizon_days=horizon_days,
        training_rows=model.training_rows, evaluation_rows=held.height, evaluation_churn_rate=float(y.mean()),
        kept=kept, metrics=metrics,
        calibration=calibration_table(scores[kept], y, ids).with_columns(model=pl.lit(kept)),
        scores=pl.DataFrame({"customer_id": ids, "churned": y.astype(bool), **scores}),
        rules=rules, model=model,
    )


def train_churn_model(ds: Dataset, as_of: date, history: int = HISTORY_DATES, step_days: int = STEP_DAYS,
                      horizon_days: int = HORIZON_DAYS, evaluation: ChurnEvaluation | None = None) -> ChurnModel:
    """The model to score the customers active on ``as_of``: the kind ``evaluate_churn_model`` kept
    (run here unless given), fitted on the ``history`` dates whose windows end by ``as_of``."""
    evaluation = evaluation or evaluate_churn_model(ds, as_of, history, step_days, horizon_days)
    dates = training_dates(as_of, history, step_days, horizon_days)
    return fit_models(labelled_facts(ds, dates, horizon_days), as_of, horizon_days, evaluation.kept == "boosted")


# --- reading the tree ----------------------------------------------------------------------------


def tree_rules(model: ChurnModel) -> pl.DataFrame:
    """One row per tree leaf, riskiest first: leaf (node id), rule (the path in words, conditions joined
    by "and"), customers and churned (training rows in the leaf: a customer counts once per training
    date), churn_rate."""
    rows = [
        {"leaf": leaf, "rule": model.leaf_rules[leaf], "customers": n, "churned": model.leaf_churned[leaf],
         "churn_rate": model.leaf_churned[leaf] / n}
        for leaf, n in model.leaf_customers.items()
    ]
    schema = {"leaf": pl.Int64, "rule": pl.String, "customers": pl.Int64, "churned": pl.Int64, "churn_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(["churn_rate", "customers", "leaf"], descending=[True, True, False])


def feature_importance(model: ChurnModel) -> pl.DataFrame:
    """The tree's impurity-based importance per feature (sums to 1 over features), largest first:
    feature, label, importance. Features the tree never splits on have 0."""
    return pl.DataFrame({
        "feature": [f.key for f in model.features], "label": [f.label for f in model.features],
        "importance": model.tree.feature_importances_.astype(np.float64),
    }).sort(["importance", "feature"], descending=[True, False])


def _paths(tree: DecisionTreeClassifier, x: np.ndarray) -> dict[int, list[Split]]:
    """Per leaf (node id), the splits from the root to it. A missing value is said to go a split's way only
    where training rows (``x``) with that value missing reached the split: elsewhere the way is a default."""
    t = tree.tree_
    reached = tree.decision_path(x).tocsc()
    paths: dict[int, list[Split]] = {}
    stack: list[tuple[int, list[Split]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == -1:
            paths[node] = path
            continue
        feature, threshold = int(t.feature[node]), float(t.threshold[node])
        rows = reached.indices[reached.indptr[node]:reached.indptr[node + 1]]
        seen_missing = bool(np.isnan(x[rows, feature]).any())
        missing_left = bool(t.missing_go_to_left[node])
        stack.append((left, [*path, (feature, False, threshold, seen_missing and missing_left)]))
        stack.append((right, [*path, (feature, True, threshold, seen_missing and not missing_left)]))
    return paths


def rule_text(features: Sequence[Feature], path: Sequence[Split]) -> str:
    """A path down the tree in words, one condition per feature (repeated splits on a feature merged into
    one range), in the order the tree first splits on them; "all customers" for a tree with no split.

    A split at an infinite threshold parts the known values (left) from the missing ones (right)."""
    ranges: dict[int, _Range] = {}
    for feature, right, threshold, with_missing in path:
        r = ranges.setdefault(feature, _Range())
        if right and threshold == math.inf:
            r.known = False
        elif right:
            r.low = max(r.low, threshold)
        else:
            r.high = min(r.high, threshold)
        r.missing = r.missing and with_missing
    words = [_condition(features[f], r) for f, r in ranges.items()]
    return " and ".join(w for w in words if w) or "all customers"


@dataclass
class _Range:
    """What a path says about one feature: low < value <= high for a known value (``known``: a known value
    may take the path), and whether a missing one may (``missing``)."""

    low: float = -math.inf
    high: float = math.inf
    known: bool = True
    missing: bool = True


def _condition(feature: Feature, r: _Range) -> str:
    """The range in words ("" when it says nothing)."""
    if feature.kind == "flag":
        return f"{feature.label}" if r.low >= 0.5 else f"not {feature.label}"
    if not r.known:
        return f"no {feature.label}"
    suffix = " (or none)" if r.missing else ""
    if r.low == -math.inf and r.high == math.inf:
        return "" if r.missing else f"{feature.label} known"
    if feature.kind in ("count", "score"):
        # integers: value > 2.5 is value >= 3; value <= 2.5 is value <= 2
        lo = math.floor(r.low) + 1 if r.low > -math.inf else None
        hi = math.floor(r.high) if r.high < math.inf else None
        if feature.kind == "count":
            if hi is not None and hi <= 0:
                return f"no {feature.label}{suffix}"
            if lo is not None and hi is not None:
                return f"{lo:,}–{hi:,} {feature.label}{suffix}"
            if lo is not None:
                return f"{lo:,}+ {feature.label}{suffix}"
            return f"at most {hi:,} {feature.label}{suffix}"
        if lo is not None and hi is not None:
            return f"{feature.label} {lo}–{hi}{suffix}"
        return f"{feature.label} ≥ {lo}{suffix}" if lo is not None else f"{feature.label} ≤ {hi}{suffix}"

    def shown(v: float) -> str:
        return f"{v:+.0%}" if feature.kind == "share" else f"{v:,.0f}"

    if r.low > -math.inf and r.high < math.inf:
        return f"{feature.label} over {shown(r.low)} and at most {shown(r.high)}{suffix}"
    if r.low > -math.inf:
        return f"{feature.label} over {shown(r.low)}{suffix}"
    return f"{feature.label} at most {shown(r.high)}{suffix}"


# --- scoring -------------------------------------------------------------------------------------


def risk_list(model: ChurnModel, facts: pl.DataFrame) -> pl.DataFrame:
    """The customers active in ``facts`` (crm.customer_facts as of ``model.as_of``) ranked by
    revenue_at_risk = risk × revenue, largest first (ties: higher risk, then customer_id). Columns:
    customer_id, name, owner, segment, region, risk (0–1, the kept model's), revenue (order value in the
    last 365 days, ``monetary``; 0 without orders), revenue_at_risk, rule (the tree leaf the customer
    falls in, in words, with that leaf's training churn share), recency_days, sla_breaches_90d,
    order_value_change_share."""
    active = facts.filter(pl.col("active"))
    x = feature_matrix(active, model.features)
    risk = model.risk(active) if active.height else np.zeros(0)  # scikit-learn refuses an empty matrix
    leaves = model.tree.apply(x) if active.height else np.zeros(0, dtype=np.int64)
    rules = [
        f"{model.leaf_rules[int(n)]} → {model.leaf_churned[int(n)] / model.leaf_customers[int(n)]:.0%} churned" for n in leaves
    ]
    return (
        active.select("customer_id", "name", "owner", "segment", "region",
                      "recency_days", "sla_breaches_90d", "order_value_change_share",
                      revenue=pl.col("monetary").fill_null(0.0))
        .with_columns(risk=pl.Series(risk, dtype=pl.Float64), rule=pl.Series(rules, dtype=pl.String))
        .with_columns(revenue_at_risk=(pl.col("risk") * pl.col("revenue")).round(2))
        .sort(["revenue_at_risk", "risk", "customer_id"], descending=[True, True, False])
        .select("customer_id", "name", "owner", "segment", "region", "risk", "revenue", "revenue_at_risk", "rule",
                "recency_days", "sla_breaches_90d", "order_value_change_share")
    )
