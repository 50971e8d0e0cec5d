"""CRM Cockpit: the domain package (store, metrics, filters, demo data, CLI).

Nothing in this package imports streamlit except the thin glue in ``crm.ui``.
"""

__version__ = "0.1.0"
