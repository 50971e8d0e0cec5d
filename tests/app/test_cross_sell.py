"""AppTest: the Next product page shows the rules crm.cross_sell computes under the thresholds in the link, the
product matrix of every pair, and a rule's customers; each person over the baskets of their own scope."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from crm import auth
from crm.cross_sell import association_rules, rule_targets
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.narrowing import narrow
from crm.scope import Scope
from tests.app.conftest import open_page

PAGE = "pages/cross_sell.py"
H1 = {"from": "2026-01-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 1, 1), date(2026, 6, 30))
ROLES = {role: scope for _, role, scope, _ in auth.DEMO_USERS}


def expected_rules(store, scope: Scope, support: float, confidence: float) -> pl.DataFrame:
    frames = load_frames(store)
    rules = association_rules(narrow(frames, Filters.create(PERIOD, scope=scope)), frames, PERIOD, support, confidence)
    return rules.filter(pl.col("lift") > 1)


def rules_shown(at):
    return next(d.value for d in at.dataframe if "antecedent" in d.value.columns)


def test_the_default_thresholds_show_the_demo_rules_and_their_figures(app_store):
    at = open_page(PAGE, H1)
    assert not at.exception, at.exception
    expected = expected_rules(app_store, Scope(), 0.02, 0.2)
    assert expected.height >= 2  # the demo's products bought together
    shown = rules_shown(at)
    assert list(zip(shown["antecedent"], shown["consequent"], strict=True)) == expected.select(
        "antecedent", "consequent").rows()
    assert list(shown["lift"]) == pytest.approx(expected["lift"].to_list())
    assert list(shown["customers_missing"]) == expected["customers_missing"].to_list()
    assert any(h.value == f"Rules · {expected.height:,}" for h in at.subheader)
    assert len(at.get("plotly_chart")) == 1  # the product matrix
    # the first rule's customers: bought its antecedent, never its consequent
    a, c = expected.row(0)[:2]
    assert at.selectbox(key="xs_rule").value == f"{a} → {c}"
    frames = load_frames(app_store)
    targets = rule_targets(narrow(frames, Filters.create(PERIOD, scope=Scope())), frames, PERIOD, a, c)
    assert any(f"{targets.height:,} customers bought {a}" in cap.value for cap in at.caption)


def test_thresholds_and_every_rule(app_store):
    at = open_page(PAGE, H1)
    at.button_group(key="xs_support").set_value("0.1").run()
    at.button_group(key="xs_confidence").set_value("0.5").run()
    at.button_group(key="xs_lift").set_value("any").run()
    assert not at.exception, at.exception
    frames = load_frames(app_store)
    every = association_rules(narrow(frames, Filters.create(PERIOD, scope=Scope())), frames, PERIOD, 0.1, 0.5)
    shown = rules_shown(at)
    assert list(zip(shown["antecedent"], shown["consequent"], strict=True)) == every.select(
        "antecedent", "consequent").rows()
    assert (shown["lift"] < 1).any()  # with lift "any" the rules below 1 show too
    assert (at.query_params["support"], at.query_params["confidence"], at.query_params["lift"]) == ("0.1", "0.5", "any")
    at.button_group(key="xs_matrix").set_value("confidence").run()
    assert not at.exception, at.exception
    assert at.query_params["measure"] == "confidence"  # the matrix's measure is in the link


def test_a_rep_gets_the_rules_of_their_own_customers_baskets(app_store):
    at = open_page(PAGE, H1, role="rep")
    assert not at.exception, at.exception
    mine = expected_rules(app_store, ROLES["rep"], 0.02, 0.2)
    shown = rules_shown(at)
    assert list(shown["customers_missing"]) == mine["customers_missing"].to_list()
    everyone = expected_rules(app_store, Scope(), 0.02, 0.2)
    assert mine["customers_missing"].sum() < everyone["customers_missing"].sum()


def test_a_period_without_baskets_says_what_to_do(app_store):
    at = open_page(PAGE, {"from": "2020-01-01", "to": "2020-01-31"})
    assert not at.exception, at.exception
    assert any("nothing is bought together yet: widen the period" in i.value for i in at.info)
    assert not at.dataframe and not at.get("plotly_chart")


def test_a_link_opens_the_same_thresholds_and_a_bad_one_falls_back_with_a_notice(app_store):
    at = open_page(PAGE, {**H1, "support": "0.05", "confidence": "0.3", "lift": "any"})
    assert not at.exception, at.exception
    assert (at.button_group(key="xs_support").value, at.button_group(key="xs_confidence").value,
            at.button_group(key="xs_lift").value) == ("0.05", "0.3", "any")
    frames = load_frames(app_store)
    every = association_rules(narrow(frames, Filters.create(PERIOD, scope=Scope())), frames, PERIOD, 0.05, 0.3)
    shown = rules_shown(at)
    assert list(zip(shown["antecedent"], shown["consequent"], strict=True)) == every.select(
        "antecedent", "consequent").rows()

    at = open_page(PAGE, {**H1, "support": "5", "lift": "maybe"})
    assert not at.exception, at.exception
    assert at.button_group(key="xs_support").value == "0.02" and at.button_group(key="xs_lift").value == "above_1"
    notices = " ".join(w.value for w in at.warning)
    assert "support" in notices and "lift" in notices
