"""AG Grid options for a frame: column types, formats, filters and selection, built as plain data.

The Streamlit wrapper (crm.ui.grid) passes these to streamlit-aggrid; tests
check them here, since AppTest cannot run the component's JavaScript.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from crm.format import CURRENCY_SYMBOL

MONEY_COLUMNS = ("amount", "revenue", "revenue_won", "amount_lost", "weighted_amount", "monetary")


def column_definition(name: str, dtype: pl.DataType) -> dict[str, Any]:
    """One columnDef: header, filter kind and number format by dtype and name."""
    col: dict[str, Any] = {"field": name, "headerName": name.replace("_", " ").capitalize(), "sortable": True,
                           "resizable": True, "filter": True, "floatingFilter": True}
    if dtype.is_numeric():
        col["filter"] = "agNumberColumnFilter"
        col["type"] = ["numericColumn"]
        if name in MONEY_COLUMNS:
            col["valueFormatter"] = (
                f"value == null ? '' : '{CURRENCY_SYMBOL}' + Number(value).toLocaleString('en-US', "
                "{maximumFractionDigits: 0})"
            )
        elif dtype.is_float():
            col["valueFormatter"] = "value == null ? '' : Number(value).toLocaleString('en-US', {maximumFractionDigits: 2})"
    elif dtype.is_temporal():
        col["filter"] = "agDateColumnFilter"
    else:
        col["filter"] = "agTextColumnFilter"
    if name in ("history",):
        col["flex"] = 2
        col["minWidth"] = 320
        col["tooltipField"] = name
    return col


def build_grid_options(frame: pl.DataFrame, selectable: bool = True, page_size: int = 50) -> dict[str, Any]:
    """gridOptions for ``frame``: typed, filterable columns, multi-row selection, pagination."""
    options: dict[str, Any] = {
        "columnDefs": [column_definition(name, dtype) for name, dtype in frame.schema.items()],
        "defaultColDef": {"minWidth": 100},
        "pagination": True,
        "paginationPageSize": page_size,
        "animateRows": False,
        "enableCellTextSelection": True,
        "tooltipShowDelay": 300,
    }
    if selectable:
        options["rowSelection"] = {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
                                   "enableClickSelection": False}
    return options
