"""Column formats for st.dataframe shared by every page: percentages with one decimal everywhere."""

from __future__ import annotations

import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

PERCENT_STEP = 0.001
"""Streamlit shows a "percent" column with the step's decimals minus two: 0.001 gives one decimal (73.7%)."""


def percent_column(label: str | None = None) -> ColumnConfig:
    """A fraction 0..1 shown as a percentage with one decimal, like the tiles (crm.format.format_value)."""
    return st.column_config.NumberColumn(label, format="percent", step=PERCENT_STEP)



def points_column(label: str | None = None) -> ColumnConfig:
    """A change of a rate in percentage points, signed, one decimal (+2.6 pp), like the tiles' deltas: the
    column must hold points (the change of the fraction × 100)."""
    return st.column_config.NumberColumn(label, format="%+.1f pp", step=0.1)
