"""Browser: the Churn risk page shows the held-back ROC AUC and the revenue at risk crm.churn_risk computes, and
its risk list links to the Customer 360 page; the Next product page shows the rules and the target list
crm.cross_sell computes."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

import polars as pl
import pytest

from crm.churn_risk import at_risk_revenue, fit_churn_models, risk_table
from crm.cross_sell import association_rules, rule_targets
from crm.filters import Filters, Period
from crm.format import format_money
from crm.narrowing import narrow
from crm.scope import Scope
from tests.e2e.harness import wait_until_idle
from tests.e2e.screen import GRID_FRAME, assert_no_errors, expect

pytestmark = pytest.mark.browser

H1 = Period(date(2026, 1, 1), date(2026, 6, 30))


def metric(page, label: str):
    """The value of the tile labelled ``label`` (a locator, for ``expect``)."""
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def test_the_churn_risk_page_shows_crms_figures_and_links_the_list_to_the_customer(page, server, frames):
    models = fit_churn_models(frames)
    assert models.evaluation is not None and models.as_of is not None
    kept = models.evaluation.metrics.filter(pl.col("model") == models.evaluation.kept)["auc"][0]
    risk = risk_table(frames, Filters.create(Period(models.as_of, models.as_of), scope=Scope()), models)

    page.goto(f"{server.url}/churn_risk")
    expect(page.get_by_role("heading", name="How well the model predicts", exact=True)).to_be_visible()
    expect(metric(page, "ROC AUC").first).to_have_text(f"{kept:.3f}")
    expect(metric(page, "Revenue at risk")).to_have_text(format_money(at_risk_revenue(risk)))
    wait_until_idle(page)
    assert_no_errors(page)

    grid = page.frame_locator(GRID_FRAME)
    first = grid.locator('.ag-center-cols-container .ag-row[row-index="0"]')
    link = first.locator('[col-id="name"] a')
    expect(link).to_have_text(str(risk["name"][0]))  # the customer with the most revenue at risk
    assert urlsplit(link.get_attribute("href") or "").path == "/customer"
    expect(first.locator('[col-id="risk"]')).to_have_text(f"{100 * risk['risk'][0]:.0f}%")


def test_the_next_product_page_shows_crms_rules_and_the_customers_to_offer(page, server, frames):
    ds = narrow(frames, Filters.create(H1, scope=Scope()))
    rules = association_rules(ds, frames, H1, 0.02, 0.2).filter(pl.col("lift") > 1)
    a, c = rules.row(0)[:2]
    targets = rule_targets(ds, frames, H1, a, c)

    page.goto(f"{server.url}/cross_sell?from=2026-01-01&to=2026-06-30")
    expect(page.get_by_role("heading", name=f"Rules · {rules.height:,}", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{targets.height:,} customers bought {a} by 30 Jun 2026 and never {c}")).to_be_visible()
    wait_until_idle(page)
    assert_no_errors(page)
    grid = page.frame_locator(GRID_FRAME)
    expect(grid.locator('.ag-center-cols-container .ag-row[row-index="0"] [col-id="name"] a')).to_have_text(
        str(targets["name"][0]))
