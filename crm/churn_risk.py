"""Churn risk for people: the store's churn models fitted once per data version, and the risk list of a view.

The models (crm.churn_model) learn from every customer of the store: a company-level fit, as of the data's
last day (or a day the caller names), evaluated on the held-back date before it. What a person gets is
narrowed like every read (crm.narrowing): the risk list of the customers their filters and scope let
through, scored from facts computed on those rows. Whether they also see the company-level evaluation
(held-back figures, training counts per rule) is the page's decision, by their scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from crm.churn_model import (
    HISTORY_DATES,
    HORIZON_DAYS,
    STEP_DAYS,
    ChurnEvaluation,
    ChurnModel,
    evaluate_churn_model,
    feature_importance,
    risk_list,
    train_churn_model,
    training_dates,
    tree_rules,
)
from crm.customer_facts import customer_facts
from crm.dataset import Frames
from crm.filters import Filters, Period
from crm.metrics.churn import ACTIVE_WINDOW_DAYS
from crm.narrowing import narrow
from crm.scope import Scope
from crm.settings import ChurnBasis

HISTORY_NEEDED_DAYS = 2 * HORIZON_DAYS + (HISTORY_DATES - 1) * STEP_DAYS
"""How far back the earliest training date lies before the day the models are as of (330 days)."""

Step = Callable[[str], None]
"""Hears what a fit is doing, in words (a progress line)."""

RISK_COLUMNS: tuple[str, ...] = (
    "customer_id", "name", "owner", "segment", "region", "risk", "revenue", "revenue_at_risk", "rule",
    "recency_days", "sla_breaches_90d", "order_value_change_share",
)
"""The columns of a risk list (crm.churn_model.risk_list)."""


@dataclass(frozen=True)
class ChurnModels:
    """The store's churn models as of one day: the held-back evaluation and the model that scores today's
    customers; or, when they could not be fitted, why (``problem``: ``no_data`` or ``history``)."""

    as_of: date | None
    evaluation: ChurnEvaluation | None = None
    model: ChurnModel | None = None
    problem: str | None = None
    detail: str = ""
    seconds: float = 0.0
    """How long the fit took (evaluation and training), wall-clock."""

    @property
    def ready(self) -> bool:
        """True when there is a model to score customers with."""
        return self.model is not None


def fit_churn_models(frames: Frames, as_of: date | None = None, step: Step | None = None) -> ChurnModels:
    """Evaluate on the held-back date and train the kept kind of model on every customer of the store, as of
    ``as_of`` (default: the data's last day); ``step`` hears each stage in words. Too little history (no
    customer active on a date, or no churned and retained customers among the training rows) is reported
    as ``problem="history"`` rather than raised; an empty store as ``no_data``."""
    day = as_of or frames.last_event_date()
    if day is None or frames.orders.is_empty():
        return ChurnModels(day, problem="no_data", detail="the store holds no orders")
    say = step or (lambda _: None)
    started = time.perf_counter()
    evaluation_date = day - timedelta(days=HORIZON_DAYS)
    first = training_dates(evaluation_date)[-1]
    window = pl.col("order_date").is_between(evaluation_date - timedelta(days=ACTIVE_WINDOW_DAYS - 1), evaluation_date)
    if frames.churn_basis is ChurnBasis.ACTIVITY and frames.orders.filter(window).is_empty():
        return ChurnModels(day, problem="history", detail=f"no customer was active on {evaluation_date}")
    ds = narrow(frames, Filters.create(Period(day, day), scope=Scope()))  # a company-level fit: every customer
    try:
        say(f"Checking the models on the held-back date {evaluation_date:%d %b %Y} (trained on {first:%d %b %Y} "
            f"to {training_dates(evaluation_date)[0]:%d %b %Y})…")
        evaluation = evaluate_churn_model(ds, day)
        say(f"Fitting the kept model ({'boosted trees' if evaluation.kept == 'boosted' else 'decision tree'}) on the "
            f"latest dates up to {training_dates(day)[0]:%d %b %Y}…")
        model = train_churn_model(ds, day, evaluation=evaluation)
    except ValueError as exc:
        return ChurnModels(day, problem="history", detail=str(exc), seconds=time.perf_counter() - started)
    return ChurnModels(day, evaluation, model, seconds=time.perf_counter() - started)


def churn_models(frames: Frames, as_of: date | None = None) -> ChurnModels:
    """``fit_churn_models`` once per data version and day (kept with the frames, crm.dataset.Frames.memo); a
    day after the data's last day is that last day (nothing after it is known)."""
    last = frames.last_event_date()
    day = min(as_of, last) if as_of and last else (as_of or last)
    return frames.memo(("crm.churn_risk.models", day), lambda: fit_churn_models(frames, day))


class ChurnModelUnavailable(ValueError):
    """No churn model could be fitted (an empty store, too little history); ``str()`` says what to do."""


def require_model(models: ChurnModels) -> ChurnModel:
    """The scoring model, or ChurnModelUnavailable with what to do about it."""
    if models.model is not None:
        return models.model
    if models.problem == "no_data":
        raise ChurnModelUnavailable("no churn model: the store holds no orders; load data first (init-demo or import)")
    raise ChurnModelUnavailable(f"no churn model as of {models.as_of}: too little history ({models.detail}); the "
                                f"model learns from customers active {HISTORY_NEEDED_DAYS} to {2 * HORIZON_DAYS} days "
                                "before that day, some of whom churned: import older orders or pick a later day")


def risk_table(frames: Frames, filters: Filters, models: ChurnModels) -> pl.DataFrame:
    """The risk list (crm.churn_model.risk_list) of the customers ``filters`` and their scope let through,
    active on the models' day, scored from facts computed on the narrowed rows; empty (with the columns)
    without a model."""
    if models.model is None:
        return pl.DataFrame(schema=_RISK_SCHEMA)
    facts = customer_facts(narrow(frames, filters), models.model.as_of)
    return risk_list(models.model, facts)


_RISK_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(), "name": pl.String(), "owner": pl.String(), "segment": pl.String(),
    "region": pl.String(), "risk": pl.Float64(), "revenue": pl.Float64(), "revenue_at_risk": pl.Float64(),
    "rule": pl.String(), "recency_days": pl.Int64(), "sla_breaches_90d": pl.Int64(),
    "order_value_change_share": pl.Float64(),
}


def at_risk_revenue(risk: pl.DataFrame) -> float:
    """Σ revenue_at_risk (risk × the last 365 days' order value) over a risk list, in currency units."""
    return float(risk["revenue_at_risk"].sum()) if risk.height else 0.0


def importance_table(models: ChurnModels) -> pl.DataFrame:
    """The tree's feature importance (feature, label, importance; crm.churn_model.feature_importance), the
    features it uses only (empty without a model)."""
    if models.model is None:
        return pl.DataFrame(schema={"feature": pl.String, "label": pl.String, "importance": pl.Float64})
    return feature_importance(models.model).filter(pl.col("importance") > 0)


def rules_table(models: ChurnModels, counts: bool = True) -> pl.DataFrame:
    """The scoring model's tree leaves in words, riskiest first (crm.churn_model.tree_rules): rule,
    churn_rate (the share of its training rows that churned) and, with ``counts``, customers and churned
    (training rows: a customer counts once per training date). Without ``counts`` only the words and the
    rate: what a person whose scope is restricted reads (the counts are the whole store's)."""
    columns = ["rule", "churn_rate", *(("customers", "churned") if counts else ())]
    if models.model is None:
        return pl.DataFrame(schema={"rule": pl.String, "churn_rate": pl.Float64, "customers": pl.Int64,
                                    "churned": pl.Int64}).select(columns)
    return tree_rules(models.model).select(columns)
