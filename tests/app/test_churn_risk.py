"""AppTest: the Churn risk page and the cockpit's at-risk revenue tile show what crm.churn_risk computes, the
held-back figures only to people who see every row, and each person only the customers in their scope."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from crm import auth
from crm.churn_risk import at_risk_revenue, fit_churn_models, risk_table, rules_table
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_money
from crm.scope import Scope
from crm.store import Store
from tests.app.conftest import open_page, shown
from tests.conftest import AS_OF

PAGE = "pages/churn_risk.py"
ROLES = {role: scope for _, role, scope, _ in auth.DEMO_USERS}


@pytest.fixture(scope="module")
def fitted(sqlite_store):
    """The store's models as the app fits them (every customer, as of the data's last day), and its frames."""
    frames = load_frames(sqlite_store)
    return frames, fit_churn_models(frames)


def expected_risk(fitted, scope: Scope) -> pl.DataFrame:
    frames, models = fitted
    return risk_table(frames, Filters.create(Period(models.as_of, models.as_of), scope=scope), models)


def table(at, column: str):
    """The first table on the page with ``column`` (a pandas frame, as AppTest gives it)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def rules_said(at) -> list[str]:
    """The rules the page lists, one line each, as a person reads them."""
    body = next(shown(m.value) for m in at.markdown if "churned**" in m.value)
    return [line.removeprefix("1. ").replace("**", "") for line in body.splitlines()]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_page_shows_the_held_back_check_the_rules_and_the_risk_list(app_store, fitted):
    at = open_page(PAGE, {})
    assert not at.exception, at.exception
    _, models = fitted
    evaluation = models.evaluation
    kept = evaluation.metrics.filter(pl.col("model") == evaluation.kept).row(0, named=True)
    naive = evaluation.metrics.filter(pl.col("model") == "naive_rule").row(0, named=True)
    risk = expected_risk(fitted, Scope())
    shown = metrics(at)
    assert shown["ROC AUC"] == f"{kept['auc']:.3f}" and kept["auc"] > 0.7  # the demo's planted signal
    assert shown["Precision, top 10%"] == f"{kept['precision_top10']:.1%}"
    assert shown["Recall, top 10%"] == f"{kept['recall_top10']:.1%}"
    assert shown["Naive rule's ROC AUC"] == f"{naive['auc']:.3f}"
    assert shown["Revenue at risk"] == format_money(at_risk_revenue(risk))
    assert shown["Active customers scored"] == f"{risk.height:,}"
    models_table = table(at, "auc")
    assert list(models_table["auc"]) == pytest.approx(evaluation.metrics["auc"].to_list())
    assert models_table["kept"].sum() == 1
    calibration = table(at, "decile")
    assert list(calibration["customers"]) == evaluation.calibration["customers"].to_list()
    assert sum(calibration["customers"]) == evaluation.evaluation_rows
    expected_rules = rules_table(models).head(8)
    assert rules_said(at) == [f"{r['churn_rate']:.0%} churned ({r['churned']:,} of {r['customers']:,} training cases) "
                              f"· {r['rule']}" for r in expected_rules.iter_rows(named=True)]  # with the company counts


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_a_scoped_person_sees_only_their_customers_and_no_company_figures(app_store, fitted, role):
    at = open_page(PAGE, {}, role=role)
    assert not at.exception, at.exception
    mine = expected_risk(fitted, ROLES[role])
    everyone = expected_risk(fitted, Scope())
    assert 0 < mine.height < everyone.height
    if role == "rep":
        assert set(mine["owner"]) == {auth.DEMO_OWNER}  # the rep's own customers
    else:
        assert set(mine["region"]) == {"Europe"}
    shown = metrics(at)
    assert shown["Active customers scored"] == f"{mine.height:,}"
    assert shown["Revenue at risk"] == format_money(at_risk_revenue(mine))
    assert "ROC AUC" not in shown and "Naive rule's ROC AUC" not in shown
    _, models = fitted
    expected_rules = rules_table(models, counts=False).head(8)
    assert rules_said(at) == [f"{r['churn_rate']:.0%} churned · {r['rule']}"  # the words and the share, no counts
                              for r in expected_rules.iter_rows(named=True)]
    assert any("people who see every row" in c.value for c in at.caption)


def test_the_cockpit_tile_sums_the_revenue_at_risk_of_the_persons_scope(app_store, fitted):
    at = open_page(PAGE, {}, role="manager")  # the page fits the model; the cockpit then has it
    assert not at.exception, at.exception
    at.switch_page("pages/cockpit.py").run()
    assert not at.exception, at.exception
    europe = expected_risk(fitted, ROLES["manager"])
    assert metrics(at)["At-risk revenue"] == format_money(at_risk_revenue(europe))
    assert format_money(at_risk_revenue(europe)) != format_money(at_risk_revenue(expected_risk(fitted, Scope())))
    links = [link for link in at.get("page_link") if link.proto.label == "Explore in Churn risk"]
    assert len(links) == 1


def test_the_cockpit_does_not_wait_for_the_model(app_store):
    at = open_page("pages/cockpit.py", {})
    assert not at.exception, at.exception
    assert metrics(at)["At-risk revenue"] == "computing…"


def test_too_little_history_says_what_to_do(tmp_path, demo_frames, monkeypatch):
    recent = AS_OF - timedelta(days=150)  # nobody active on a training date
    orders = demo_frames["orders"].filter(pl.col("ordered_at").dt.date() > recent)
    short = {**demo_frames, "orders": orders,
             "order_items": demo_frames["order_items"].filter(pl.col("order_id").is_in(orders["order_id"].implode()))}
    store = Store(f"sqlite:///{tmp_path / 'short.db'}")
    store.replace_business_data(short)
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    auth.add_demo_users(store)
    at = open_page(PAGE, {})
    assert not at.exception, at.exception
    said = " ".join(i.value for i in at.info)
    assert "Too little history" in said and "Import older orders" in said
    assert not at.metric and not at.dataframe
