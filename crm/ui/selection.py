"""The active selections above every page: one line each, in words (crm.selections), with a ✕ to remove it."""

from __future__ import annotations

import streamlit as st

from crm.dataset import Frames
from crm.filters import Filters
from crm.format import plain
from crm.selections import describe_selections


def remove_selection(key: str) -> None:
    """Drop one chart-selection key (all its values) from the filters; the customer set is ``customers``."""
    if key == "customers":
        st.session_state["flt_customers"] = ()
        st.session_state["flt_segment_rule"] = ""
        forget = "seg_applied_"
    else:
        st.session_state["flt_selection"] = tuple(p for p in st.session_state.get("flt_selection", ()) if p[0] != key)
        forget = "sel_applied_"
    # a chart remembers the selection it last applied; forgetting it lets the same selection be made again
    for name in [k for k in st.session_state if str(k).startswith(forget)]:
        del st.session_state[name]


def selection_banner(frames: Frames, filters: Filters) -> None:
    """Say what narrows this view (customer set, chart selections), each removable with its ✕."""
    items = describe_selections(filters, frames)
    if not items:
        return
    with st.container(key="active_selections", horizontal=True, gap="small", vertical_alignment="center"):
        st.markdown(":material/filter_alt: **Selected**", width="content")
        for item in items:
            with st.container(key=f"active_sel_{item.key}", border=True, horizontal=True, width="content",
                              gap=None, vertical_alignment="center"):
                st.markdown(plain(item.text), help=plain(item.detail), width="content")
                st.button("✕", key=f"remove_sel_{item.key}", type="tertiary", on_click=remove_selection,
                          args=(item.key,), help=f"Remove this selection ({item.text.split(':')[0].lower()})")
