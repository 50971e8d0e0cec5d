"""The Data page's choice of churn basis (a store setting: what "active customer" means)."""

from __future__ import annotations

import streamlit as st

from crm.format import plain
from crm.metrics.registry import CHURN_BASIS_TEXT
from crm.roles import NotPermitted
from crm.settings import ChurnBasis, save_churn_basis
from crm.store import Store, StoreError
from crm.ui import loaders
from crm.ui.access import actor_name, actor_role, allowed, only_for

LABELS: dict[ChurnBasis, str] = {ChurnBasis.ACTIVITY: "Activity (orders)", ChurnBasis.SUBSCRIPTION: "Subscription"}


def churn_basis_form(store: Store, current: ChurnBasis) -> None:
    """Choose and save the churn basis; a saved change bumps the data version, so every page recomputes. A
    role that may not change it (crm.roles ``churn_basis``) is told the current basis and who may."""
    if not allowed("churn_basis"):
        st.markdown(f"**{LABELS[current]}**: {CHURN_BASIS_TEXT[current]}.")
        only_for("churn_basis", "change what counts as churn")
        return
    with st.form("data_churn_basis", border=False):
        choice = st.radio("Churn basis", list(ChurnBasis), index=list(ChurnBasis).index(current), horizontal=True,
                          format_func=LABELS.__getitem__, key="data_churn_basis_choice")
        st.caption(" ".join(f"**{LABELS[b]}**: {CHURN_BASIS_TEXT[b]}." for b in ChurnBasis)
                   + " Active customers, the churn rate, its monthly trend and churn by attribute follow the basis "
                     "on every page and in the CLI; cohort retention is about orders on both.")
        saved = st.form_submit_button("Save churn basis", icon=":material/save:")
    if not saved or choice is None:
        return
    try:
        version = save_churn_basis(store, choice, actor=actor_name(), role=actor_role())
        loaders.changed_here()
    except (StoreError, NotPermitted) as exc:
        st.error(f"Not saved: {plain(exc)}", icon=":material/error:")
        return
    st.toast(f"Saved; churn is now counted on the {choice.value} basis (data version {version}).",
             icon=":material/check:")
    st.rerun()
