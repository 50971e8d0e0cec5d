"""Next product glue: the thresholds (kept in the URL), the rules table, the product matrix, and for one rule the
customers to offer its second product, as an exportable grid linking to the Customer 360 page."""

from __future__ import annotations

import polars as pl
import streamlit as st

from crm.charts import build_product_matrix
from crm.cross_sell import CONFIDENCE_CHOICES, LIFT_CHOICES, PAGE_CONFIDENCE, PAGE_SUPPORT, SUPPORT_CHOICES
from crm.format import plain
from crm.ui import customer as customer_links
from crm.ui import loaders
from crm.ui.columns import percent_column
from crm.ui.frame import PageContext, page_choice, view_key
from crm.ui.grid import explorer_grid, export_grid_view

GRID_ROWS = 5_000
ARROW = " → "
TARGET_DEFINITIONS = {
    "revenue": "Order value in the period.",
    "lifetime_revenue": "Order value up to the period's end.",
}
"""What the target list's money columns mean (the export's manifest)."""


def _percent(text: str) -> str:
    return f"{100 * float(text):g}%"


def thresholds() -> tuple[float, float, bool]:
    """The least support and confidence (shares 0–1) and whether only rules with lift above 1 show (all three kept
    in the URL, so a link opens the same rules)."""
    left, right = st.columns(2)
    with left:
        support = page_choice(
            "support", "Least support", SUPPORT_CHOICES, PAGE_SUPPORT, "xs_support",
            {choice: _percent(choice) for choice in SUPPORT_CHOICES},
            help="Support of A → B = baskets holding both ÷ all baskets of the period. Higher keeps only pairs "
                 "bought together often.")
    with right:
        confidence = page_choice(
            "confidence", "Least confidence", CONFIDENCE_CHOICES, PAGE_CONFIDENCE, "xs_confidence",
            {choice: _percent(choice) for choice in CONFIDENCE_CHOICES},
            help="Confidence of A → B = baskets holding both ÷ baskets holding A: how often a basket with A also "
                 "holds B.")
    lift = page_choice(
        "lift", "Lift", LIFT_CHOICES, LIFT_CHOICES[0], "xs_lift",
        {"above_1": "Above 1: the first product makes the second more likely", "any": "Any"},
        help="Lift = confidence ÷ the share of all baskets holding B. Below 1, B comes with A less often than in "
             "baskets in general.")
    return float(support), float(confidence), lift == "above_1"


def kept_rules(rules: pl.DataFrame, support: float, confidence: float, lifted: bool) -> pl.DataFrame:
    """The rules meeting the thresholds, strongest lift first (the order association_rules gives)."""
    kept = rules.filter((pl.col("support") >= support) & (pl.col("confidence") >= confidence))
    return kept.filter(pl.col("lift") > 1) if lifted else kept


def rules_table(rules: pl.DataFrame) -> None:
    """The rules as a table with headers in words."""
    st.dataframe(
        rules.select("antecedent", "consequent", "support", "confidence", "lift", "customers_missing", "both_baskets"),
        hide_index=True, key="xs_rules", column_config={
            "antecedent": st.column_config.TextColumn("If a basket holds"),
            "consequent": st.column_config.TextColumn("it also holds"),
            "support": percent_column("Support"),
            "confidence": percent_column("Confidence"),
            "lift": st.column_config.NumberColumn("Lift", format="%.2f"),
            "customers_missing": st.column_config.NumberColumn(
                "Customers to offer it", format="localized",
                help="Customers who bought the first product by the period's end and never the second."),
            "both_baskets": st.column_config.NumberColumn("Baskets with both", format="localized"),
        })


def product_matrix(rules: pl.DataFrame) -> None:
    """Every pair of products bought together, as a matrix of lift or confidence (the choice kept in the URL)."""
    measure = page_choice("measure", "Colour the matrix by", ("lift", "confidence"), "lift", "xs_matrix")
    products = sorted(set(rules["antecedent"].to_list()) | set(rules["consequent"].to_list()))
    st.plotly_chart(build_product_matrix(rules, measure, products), key=f"xs_matrix_chart_{measure}")
    st.caption("Every pair bought together in the period, whatever the thresholds; a blank cell is a pair never "
               "bought together (or a product with itself).")


def chosen_rule(rules: pl.DataFrame) -> tuple[str, str] | None:
    """A picker of one rule (default the strongest); None when there is none."""
    if rules.is_empty():
        return None
    labels = [f"{a}{ARROW}{c}" for a, c in rules.select("antecedent", "consequent").iter_rows()]
    picked = st.selectbox("Rule", labels, key="xs_rule", help="The customers who bought its first product and never "
                                                              "its second, most valuable first.")
    a, c = rules.row(labels.index(picked or labels[0]))[:2]
    return str(a), str(c)


def target_list(ctx: PageContext, antecedent: str, consequent: str) -> None:
    """The customers to offer ``consequent``: bought ``antecedent`` by the period end, never ``consequent``."""
    targets = loaders.cross_sell_targets(ctx.url, ctx.version, ctx.filters, antecedent, consequent)
    end = f"{ctx.filters.period.end:%d %b %Y}"
    if targets.is_empty():
        st.info(f"Every customer in this view who bought {plain(antecedent)} by {end} has bought "
                f"{plain(consequent)} too.", icon=":material/check_circle:")
        return
    st.caption(f"{targets.height:,} customers bought {plain(antecedent)} by {end} and never {plain(consequent)}, "
               "by their order value in the period, then over their lifetime.")
    view = explorer_grid(targets, key=view_key("xs_targets", antecedent, consequent, ctx.filters, ctx.version),
                         limit=GRID_ROWS, first=("name", "revenue", "lifetime_revenue"), last=("customer_id",),
                         links=customer_links.grid_links("name"))
    customer_links.ticked_links(view.ticked, "name")
    export_grid_view(view, None, targets.height, f"bought {antecedent} by {end}, never {consequent}",
                     base="next_product", title=f"Customers to offer {consequent}", filters=ctx.filters,
                     data_version=ctx.version, key="xs_export", formats=("csv", "xlsx"), definitions=TARGET_DEFINITIONS)


__all__ = ["chosen_rule", "kept_rules", "product_matrix", "rules_table", "target_list", "thresholds"]
