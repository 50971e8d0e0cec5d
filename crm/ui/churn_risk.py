"""Churn risk glue: the store's churn models (fitted once per data version, with what the fit is doing on
screen), the held-back evaluation for people who see every row, the rules in words, and the risk list.

The models learn from every customer of the store; a person whose scope is restricted (a manager, a rep)
gets the risk of their own customers and the rules in words, never the company-level counts or figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
import streamlit as st

from crm.charts import build_importance_chart
from crm.format import format_money, plain
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.columns import percent_column
from crm.ui.frame import PageContext, view_key
from crm.ui.grid import explorer_grid, export_grid_view
from crm.ui.layout import tile_grid

if TYPE_CHECKING:
    from crm.churn_risk import ChurnModels

CHURN_PAGE = "pages/churn_risk.py"
GRID_ROWS = 5_000
MODEL_NAMES = {
    "tree": "Decision tree (depth ≤ 5)",
    "boosted": "Boosted trees",
    "naive_rule": "Naive rule: no order for 60+ days",
    "recency": "Days since the last order",
}
"""The models of the held-back comparison, in words."""
RISK_DEFINITIONS = {
    "risk": "The churn model's probability (0–1) that a customer active on the model's day orders nothing in the "
            "90 days after it (on a subscription store: cancels within them).",
    "revenue": "Order value in the 365 days up to the model's day.",
    "revenue_at_risk": "risk × revenue.",
    "rule": "The decision tree's leaf the customer falls in, in words, with the share of its training customers "
            "who churned.",
}
"""What the risk list's columns mean (the export's manifest)."""


def fitted_models(ctx: PageContext) -> ChurnModels:
    """The store's churn models for this data version; while they are being fitted (once per data version, for
    every session), say what the fit is doing and wait for it."""
    models = loaders.churn_models(ctx.url, ctx.version, ctx.frames)
    if models is not None:
        return models
    note = st.empty()

    def show(step: str) -> None:
        note.info(f"Fitting the churn model on every customer of the store (once per data version; about 20 s at "
                  f"1M deals, the other pages meanwhile work as usual). {step}", icon=":material/model_training:")

    show(loaders.churn_step(ctx.url, ctx.version))
    models = loaders.wait_for_churn_models(ctx.url, ctx.version, ctx.frames, show)
    note.empty()
    return models


def problem_notice(models: ChurnModels) -> bool:
    """Say why there is no model and what to do; True when there is none."""
    if models.ready:
        return False
    if models.problem == "no_data":
        st.info("The store holds no orders yet, so no customer is active and there is nothing to learn from. Load "
                "data on the Data page (or `python -m crm init-demo` for the demo).", icon=":material/inbox:")
    elif models.problem == "failed":
        st.error(f"The churn model could not be fitted ({plain(models.detail)}); the server log has the details. The "
                 "other pages are not affected.", icon=":material/error:")
    else:
        from crm.churn_risk import HISTORY_NEEDED_DAYS

        day = f"{models.as_of:%d %b %Y}" if models.as_of else "the data's last day"
        st.info(f"Too little history to learn who churns: the model learns from customers who were active "
                f"{HISTORY_NEEDED_DAYS} to 180 days before {day} and sees whether they ordered in the 90 days after, "
                "and it needs some who churned and some who stayed. Import older orders (the Data page), or come "
                "back when the store holds about a year of them.", icon=":material/history:")
    return True


def risk_section(ctx: PageContext, models: ChurnModels) -> None:
    """Tiles (customers scored, revenue at risk), the risk list in the explorer grid with links to the 360 page,
    and its export."""
    assert models.as_of is not None
    day = f"{models.as_of:%d %b %Y}"
    risk = loaders.churn_risk_list(ctx.url, ctx.version, ctx.filters)
    if risk.is_empty():
        st.info(f"No customer in this view was active on {day} (an order in the 90 days up to it), so there is nobody "
                "to score. Clear a filter in the sidebar, or ask for a wider scope.", icon=":material/person_off:")
        return
    from crm.churn_risk import at_risk_revenue

    high = risk.filter(pl.col("risk") >= 0.5)
    grid = tile_grid("churn_risk")
    with grid, st.container(border=True):
        st.metric("Revenue at risk", format_money(at_risk_revenue(risk)),
                  help="Σ risk × the last 365 days' order value over the customers listed below.")
    with grid, st.container(border=True):
        st.metric("Active customers scored", f"{risk.height:,}", help=f"Customers with an order in the 90 days up to {day}.")
    with grid, st.container(border=True):
        st.metric("Risk 50% or more", f"{high.height:,}",
                  help="Customers the model gives at least an even chance of ordering nothing in the next 90 days.")
        st.caption(f"{format_money(float(high['revenue'].sum()))} of revenue in the last 365 days")
    view = explorer_grid(risk, key=view_key("risk_grid", ctx.filters.without_period(), ctx.version), limit=GRID_ROWS,
                         first=("name", "risk", "revenue_at_risk", "revenue", "rule"), last=("customer_id",),
                         links=customer_links.grid_links("name"))
    customer_links.ticked_links(view.ticked, "name")
    export_grid_view(view, None, risk.height, f"customers active on {day}, by revenue at risk", base="churn_risk",
                     title="Churn risk list", filters=ctx.filters, data_version=ctx.version, key="risk_export",
                     formats=("csv", "xlsx"), definitions=RISK_DEFINITIONS)


def rules_section(models: ChurnModels, unrestricted: bool, top: int = 8) -> None:
    """The tree's ``top`` rules in words, riskiest first (with the training counts for people who see every row),
    and what the tree decides on."""
    from crm.churn_risk import importance_table, rules_table

    rules = rules_table(models, counts=unrestricted)
    lines = []
    for row in rules.head(top).iter_rows(named=True):
        counts = f" ({row['churned']:,} of {row['customers']:,} training cases)" if unrestricted else ""
        lines.append(f"1. **{row['churn_rate']:.0%} churned**{counts} · {plain(row['rule'])}")
    st.markdown("\n".join(lines))
    more = f" The {rules.height - top} other leaves hold lower risks." if rules.height > top else ""
    st.caption("The decision tree's leaves, riskiest first: every active customer falls in exactly one; a share is "
               "how many of its training cases (a customer active on a training date) ordered nothing in the 90 days "
               "after." + more + ("" if unrestricted else " The shares are the whole store's; the counts behind them "
                                  "are for people who see every row."))
    importance = importance_table(models)
    if importance.is_empty():
        st.caption("The tree makes no split: every customer gets the same risk.")
    else:
        st.plotly_chart(build_importance_chart(importance), key="risk_importance")


def evaluation_section(models: ChurnModels) -> None:
    """The held-back check: the kept model's figures as tiles, every model side by side, the calibration table."""
    evaluation = models.evaluation
    assert evaluation is not None
    figures = {r["model"]: r for r in evaluation.metrics.iter_rows(named=True)}
    kept = figures[evaluation.kept]
    held = f"{evaluation.evaluation_date:%d %b %Y}"
    st.caption(f"Trained on the customers active on {len(evaluation.training_dates)} dates from "
               f"{evaluation.training_dates[0]:%d %b %Y} to {evaluation.training_dates[-1]:%d %b %Y} "
               f"({evaluation.training_rows:,} cases, each with its 90 days after it over by {held}); checked on the "
               f"{evaluation.evaluation_rows:,} customers active on {held}, of whom "
               f"{evaluation.evaluation_churn_rate:.1%} ordered nothing in the 90 days after. Nothing from after a "
               "date is used to predict it.")
    grid = tile_grid("churn_eval")

    def tile(label: str, value: float | None, help_text: str, percent: bool = False) -> None:
        shown = "—" if value is None else (f"{value:.1%}" if percent else f"{value:.3f}")
        with grid, st.container(border=True):
            st.metric(label, shown, help=help_text)

    tile("ROC AUC", kept["auc"], "The chance that a churner gets a higher risk than a customer who stays "
         "(0.5: no better than chance; 1: perfect).")
    tile("Precision, top 10%", kept["precision_top10"], "Of the 10% of customers with the highest risk, the share "
         "who churned.", percent=True)
    tile("Recall, top 10%", kept["recall_top10"], "Of the customers who churned, the share among the 10% with the "
         "highest risk.", percent=True)
    tile("Naive rule's ROC AUC", figures["naive_rule"]["auc"], "The rule “no order for 60+ days” as a yes/no score.")
    better = "boosted" if evaluation.kept == "boosted" else "tree"
    st.markdown(f"**Kept: {MODEL_NAMES[better].lower()}.** " + (
        "Its held-back ROC AUC beats the decision tree's by 0.02 or more, so it gives the risk; the rules in words "
        "still come from the tree." if better == "boosted" else
        "The boosted model is not clearly better on the held-back date (by 0.02 ROC AUC or more), so the readable "
        "tree gives the risk."))
    table = evaluation.metrics.with_columns(
        model=pl.col("model").replace_strict(MODEL_NAMES, default=pl.col("model")),
        kept=pl.col("model") == evaluation.kept)
    st.dataframe(table.select("model", "auc", "precision_top10", "recall_top10", "kept"), hide_index=True,
                 key="risk_models", column_config={
                     "model": st.column_config.TextColumn("Model", width="medium"),
                     "auc": st.column_config.NumberColumn("ROC AUC", format="%.3f"),
                     "precision_top10": percent_column("Precision, top 10%"),
                     "recall_top10": percent_column("Recall, top 10%"),
                     "kept": st.column_config.CheckboxColumn("Kept"),
                 })
    st.dataframe(evaluation.calibration.select("decile", "customers", "mean_predicted", "observed_rate"),
                 hide_index=True, key="risk_calibration", column_config={
                     "decile": st.column_config.NumberColumn("Risk decile", help="1 = the lowest tenth of risk."),
                     "customers": st.column_config.NumberColumn("Customers", format="localized"),
                     "mean_predicted": percent_column("Predicted churn"),
                     "observed_rate": percent_column("Churned"),
                 })
    st.caption("Calibration: the held-back customers in tenths by the kept model's risk (1: the lowest), the risk it "
               "predicted on average and the share who did churn.")
