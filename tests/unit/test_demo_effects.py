"""The demo's planted effects: SLA breaches and falling order value come before churn, some products are
bought together, and the planting leaves every other draw of the generator as it was."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import demo
from crm.churn_model import churn_labels, evaluate_churn_model
from crm.cross_sell import association_rules
from crm.customer_facts import customer_facts
from crm.dataset import enrich
from crm.filters import Filters, Period
from crm.narrowing import narrow
from crm.scope import Scope
from tests.conftest import AS_OF, SEED

SPEC = demo.DemoSpec(seed=SEED, scale=0.25, as_of=AS_OF)


@pytest.fixture(scope="module")
def unplanted(demo_frames):
    """The same spec generated with the three planting steps switched off (after the planted demo_frames)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "_plant_churn", lambda rng, clock, orders, items, tickets: (orders, items))
        patch.setattr(demo, "_plant_fading", lambda rng, clock, orders, items: (orders, items))
        patch.setattr(demo, "_plant_affinity", lambda rng, orders, items: items)
        return demo.generate(SPEC)


@pytest.fixture(scope="module")
def ds(demo_frames):
    frames = enrich(dict(demo_frames))
    return narrow(frames, Filters.create(Period(AS_OF, AS_OF), scope=Scope())), frames


def test_planting_changes_only_orders_and_items_and_only_removes_shrinks_or_splits(demo_frames, unplanted):
    for table in ("opportunities", "opportunity_stages", "tickets", "survey_responses", "interactions"):
        assert_frame_equal(demo_frames[table], unplanted[table])
    # customers differ only where their lapse (from their orders) does
    rest = [c for c in demo_frames["customers"].columns if c not in ("lifecycle_stage", "churned_at")]
    assert_frame_equal(demo_frames["customers"].select(rest), unplanted["customers"].select(rest))
    planted, before = demo_frames["orders"], unplanted["orders"]
    assert 0 < planted.height < before.height  # customers who left placed fewer orders
    both = planted.join(before, on="order_id", how="left", suffix="_before")
    assert both["amount_before"].null_count() == 0  # no order is made up
    assert (both["customer_id"] == both["customer_id_before"]).all()
    assert (both["ordered_at"] == both["ordered_at_before"]).all()
    assert (both["amount"] <= both["amount_before"]).all() and (both["amount"] < both["amount_before"]).any()
    items = demo_frames["order_items"].group_by("order_id").agg(pl.col("amount").sum())
    joined = planted.join(items, on="order_id", suffix="_items")
    assert joined.height == planted.height and (joined["amount"] - joined["amount_items"]).abs().max() < 0.005


def _churn_by(ds, fact: pl.Expr, dates: list[date]) -> tuple[float, float]:
    """Churn rate within 90 days of customers active on ``dates`` with ``fact`` true, and with it false."""
    rows = []
    for day in dates:
        facts = customer_facts(ds, day)
        rows.append(facts.join(churn_labels(ds, day, facts=facts), on="customer_id").select(fact.alias("x"), "churned"))
    labelled = pl.concat(rows)
    rate = labelled.group_by("x").agg(pl.col("churned").mean())
    by = dict(rate.iter_rows())
    return by[True], by[False]


def test_sla_breaches_and_falling_order_value_come_before_churn(ds):
    data, _ = ds
    dates = [AS_OF - timedelta(days=90 + 30 * k) for k in range(8)]
    breached, clean = _churn_by(data, pl.col("sla_breaches_90d") >= 1, dates)
    assert breached > 1.3 * clean
    falling, steady = _churn_by(data, pl.col("order_value_change_share").fill_null(0) <= -0.5, dates)
    assert falling > 1.5 * steady


def test_the_held_back_auc_is_clearly_above_chance_and_the_naive_rule(ds):
    data, _ = ds
    evaluation = evaluate_churn_model(data, AS_OF)
    figures = {r["model"]: r["auc"] for r in evaluation.metrics.iter_rows(named=True)}
    assert figures[evaluation.kept] >= 0.72
    assert figures[evaluation.kept] >= figures["naive_rule"] + 0.1


def test_some_products_are_bought_together(ds):
    data, frames = ds
    rules = association_rules(data, frames, Period(AS_OF - timedelta(days=364), AS_OF), 0.0, 0.0)
    lift = {(a, c): v for a, c, v in rules.select("antecedent", "consequent", "lift").iter_rows()}
    assert lift[("Data Connect", "Analytics Pro")] > 1.3
    assert lift[("Service Desk", "Cockpit Core")] > 1.1
    assert sum(v > 1 for v in lift.values()) == 4  # the two planted pairs, both ways; the rest below 1
