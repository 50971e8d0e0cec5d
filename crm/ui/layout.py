"""Layout that fits narrow windows (1024 px with the sidebar open), in one place: tile grids that reflow and
the few CSS rules the app adds to Streamlit's.

Streamlit clips text that does not fit (an ellipsis on metric values, labels, buttons) instead of wrapping it,
so everything that sits side by side either takes as many columns as the width allows or wraps.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

TILE_MIN_WIDTH_PX = 200
"""A KPI tile is never narrower: "$12.34M" and "Explore in Satisfaction" fit on one line; three tiles side by
side at 1024 px with the sidebar open."""

TILE_GRID_KEY = "tilegrid"

_CSS = f"""
<style>
/* Below 1280 px the main area keeps less padding: room for one more column of tiles. */
@media (max-width: 1279px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 2rem !important; padding-right: 2rem !important; }}
}}
/* Tiles: as many columns of at least {TILE_MIN_WIDTH_PX}px as fit, each row filled (a CSS grid, not st.columns). */
[class*="st-key-{TILE_GRID_KEY}_"] {{
  display: grid !important;
  grid-template-columns: repeat(auto-fill, minmax(min({TILE_MIN_WIDTH_PX}px, 100%), 1fr));
  align-items: stretch;
}}
[class*="st-key-{TILE_GRID_KEY}_"] > * {{ width: auto !important; min-width: 0; }}
/* A label, value, note or link that still does not fit wraps instead of ending in an ellipsis. */
[class*="st-key-{TILE_GRID_KEY}_"] [data-testid="stMetric"] .stMarkdownEllipsis,
[class*="st-key-{TILE_GRID_KEY}_"] [data-testid="stMetric"] .stMarkdownEllipsis p,
[class*="st-key-{TILE_GRID_KEY}_"] [data-testid="stPageLink-NavLink"] span,
[class*="st-key-{TILE_GRID_KEY}_"] [data-testid="stPageLink-NavLink"] p {{
  white-space: normal !important;
  overflow-wrap: anywhere;
}}
</style>
"""


def apply_layout() -> None:
    """Add the app's CSS to the page (``page_frame`` calls it on every page)."""
    st.html(_CSS)


def tile_grid(key: str) -> DeltaGenerator:
    """A container whose children (tiles) flow into rows of as many columns as fit the width: four at
    1440 px and 1280 px, three at 1024 px with the sidebar open. ``key`` names the grid on its page."""
    return st.container(horizontal=True, key=f"{TILE_GRID_KEY}_{key}", gap="small")
