"""Next product: which products are bought together (association rules over the period's baskets), and for one
rule the customers who bought its first product and never its second, to offer it to."""

import streamlit as st

from crm.ui import cross_sell as xs
from crm.ui import loaders
from crm.ui.frame import page_frame

ctx = page_frame("Next product")
st.title("Next product")
period = ctx.filters.period
with st.spinner("Counting the products bought together…"):
    every_rule = loaders.cross_sell_rules(ctx.url, ctx.version, ctx.filters)
if every_rule.is_empty():
    st.info(f"No order in this view from {period.start:%d %b %Y} to {period.end:%d %b %Y} holds two products, so "
            "nothing is bought together yet: widen the period or clear a filter in the sidebar.",
            icon=":material/remove_shopping_cart:")
    st.stop()
baskets = int(every_rule["baskets"][0])
st.caption(f"A basket is an order of the period ({period.start:%d %b %Y} to {period.end:%d %b %Y}) with its products; "
           f"{baskets:,} baskets in this view. A rule “if A then B” reads: of the baskets holding A, the share holding "
           "B too (confidence), against the share of all baskets holding B (lift = confidence ÷ that share).")
support, confidence, lifted = xs.thresholds()
rules = xs.kept_rules(every_rule, support, confidence, lifted)

st.subheader(f"Rules · {rules.height:,}", anchor=False)
if rules.is_empty():
    st.info("No rule meets these thresholds: lower the least support or confidence"
            + (", or set Lift to Any." if lifted else "."), icon=":material/tune:")
else:
    xs.rules_table(rules)

st.subheader("Products bought together", anchor=False)
xs.product_matrix(every_rule)

st.subheader("Customers to offer the next product", anchor=False)
rule = xs.chosen_rule(rules)
if rule is None:
    st.caption("Pick thresholds that keep a rule to see its customers.")
else:
    xs.target_list(ctx, *rule)
