"""Thin Streamlit glue: cached loaders, the page frame with the filter bar, KPI tiles.

The only part of ``crm`` that imports streamlit.
"""
