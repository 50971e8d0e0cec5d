"""Churn risk: who of the active customers may stop ordering, why (the tree's rules), how well the model did on
a held-back date, and the risk list to act on."""

import streamlit as st

from crm.format import plain
from crm.ui import churn_risk as churn
from crm.ui.frame import page_frame

ctx = page_frame("Churn risk")
st.title("Churn risk")
if ctx.frames.is_empty():
    st.info("The store holds no data yet. Load demo data with `python -m crm init-demo`, or import your CSV files on "
            "the Data page.", icon=":material/inbox:")
    st.stop()
models = churn.fitted_models(ctx)
if churn.problem_notice(models):
    st.stop()
assert models.as_of is not None
unrestricted = ctx.filters.scope is not None and ctx.filters.scope.unrestricted
st.caption(f"As of {models.as_of:%d %b %Y}, the data's last day (the period in the sidebar does not move it; its "
           "region, segment, product, team and owner filters narrow the list). Churned: active that day (an order "
           "in the 90 days up to it) and no order in the 90 days after"
           + (", on a subscription store cancelled within them." if ctx.frames.churn_basis.value == "subscription"
              else ".")
           + ("" if unrestricted else f" You see the customers in your scope ({plain(ctx.filters.scope.in_words())})."
              if ctx.filters.scope else ""))

st.subheader("Customers at risk, by revenue at risk", anchor=False)
churn.risk_section(ctx, models)

st.subheader("What puts customers at risk", anchor=False)
churn.rules_section(models, unrestricted)

st.subheader("How well the model predicts", anchor=False)
if unrestricted:
    churn.evaluation_section(models)
else:
    st.caption("The held-back check describes every customer of the company, so it is shown to people who see every "
               "row (executives, analysts, admins).")
