"""AG Grid options for a frame: column types, formats, filters and selection, built as plain data.

The Streamlit wrapper (crm.ui.grid) passes these to streamlit-aggrid; tests
check them here, since AppTest cannot run the component's JavaScript.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from crm.format import CURRENCY_SYMBOL, column_label

MONEY_COLUMNS = ("amount", "revenue", "revenue_won", "amount_lost", "weighted_amount", "monetary", "revenue_at_risk",
                 "lifetime_revenue")
PERCENT_COLUMNS = ("risk", "order_value_change_share")
"""Fractions 0–1 that a grid shows as percentages (the data and its export keep the fraction)."""

DEAL_COLUMNS_FIRST = ("customer_name", "stage", "amount", "owner", "expected_close_date")
"""The deals grid starts with what a sales manager reads ..."""
DEAL_COLUMNS_LAST = ("opportunity_id", "customer_id")
"""... and ends with the ids (in the frame and its export they stay first, for scripts)."""
CUSTOMER_COLUMNS_FIRST = ("name",)
CUSTOMER_COLUMNS_LAST = ("customer_id",)
"""The segment explorer's customers: the name first, the id last."""


def column_definition(name: str, dtype: pl.DataType) -> dict[str, Any]:
    """One columnDef: header, filter kind and number format by dtype and name."""
    col: dict[str, Any] = {"field": name, "headerName": column_label(name), "sortable": True,
                           "resizable": True, "filter": True, "floatingFilter": True}
    if dtype.is_numeric():
        col["filter"] = "agNumberColumnFilter"
        col["type"] = ["numericColumn"]
        if name in MONEY_COLUMNS:
            col["valueFormatter"] = (
                f"value == null ? '' : '{CURRENCY_SYMBOL}' + Number(value).toLocaleString('en-US', "
                "{maximumFractionDigits: 0})"
            )
        elif name in PERCENT_COLUMNS:
            col["valueFormatter"] = "value == null ? '' : (100 * Number(value)).toFixed(0) + '%'"
        elif dtype.is_float():
            col["valueFormatter"] = "value == null ? '' : Number(value).toLocaleString('en-US', {maximumFractionDigits: 2})"
    elif dtype.is_temporal():
        col["filter"] = "agDateColumnFilter"
    else:
        col["filter"] = "agTextColumnFilter"
    if name in ("history", "rule"):
        col["flex"] = 2
        col["minWidth"] = 320
        col["tooltipField"] = name
    return col


def link_renderer(page_path: str, param: str, id_field: str, query: str = "", title: str = "") -> str:
    """A cell renderer (JavaScript source, an AG Grid component class) that draws a cell's text as a link to the
    app's page ``page_path`` (``pages/customer.py`` → ``customer``) with ``query`` (the filters, URL-encoded) and
    ``param`` = the row's ``id_field`` value. The link opens a new tab: a component's frame may not navigate the
    app's own (Streamlit's sandbox has no top navigation); the session cookie signs the tab in. The address is
    built against the app's address (the parent frame), the text set as text (never HTML). A row without an id
    shows the plain text."""
    slug = page_path.rsplit("/", 1)[-1].removesuffix(".py")
    prefix = f"{slug}?{query}&" if query else f"{slug}?"
    return (
        "class PageLink {"
        " init(params) {"
        f" const id = params.data ? params.data[{json.dumps(id_field)}] : null;"
        " const text = params.value === null || params.value === undefined ? '' : String(params.value);"
        " if (id === null || id === undefined || id === '') {"
        " this.eGui = document.createElement('span'); this.eGui.textContent = text; return; }"
        " const link = document.createElement('a');"
        " link.textContent = text || String(id);"
        f" link.title = {json.dumps(title)};"
        " link.target = '_blank'; link.rel = 'noopener';"
        " let base = document.baseURI;"
        " try { base = window.parent.location.href; } catch (error) { base = document.baseURI; }"
        f" link.href = new URL({json.dumps(prefix)} + {json.dumps(param)} + '=' + encodeURIComponent(String(id)), base).href;"
        " this.eGui = link; }"
        " getGui() { return this.eGui; }"
        " refresh() { return false; } }"
    )


def column_order(columns: list[str], first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> list[str]:
    """``columns`` as a grid shows them: those named in ``first`` in that order, then the others as they
    come, then those named in ``last`` (names the frame does not have are skipped). A narrow window
    scrolls the columns at the end out of view, so what a person reads goes first and ids last."""
    head = [c for c in first if c in columns]
    tail = [c for c in last if c in columns and c not in head]
    return head + [c for c in columns if c not in head and c not in tail] + tail


def build_grid_options(frame: pl.DataFrame, selectable: bool = True, page_size: int = 50,
                       first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> dict[str, Any]:
    """gridOptions for ``frame``: typed, filterable columns (ordered by ``column_order``), multi-row
    selection, pagination."""
    schema = frame.schema
    options: dict[str, Any] = {
        "columnDefs": [column_definition(name, schema[name]) for name in column_order(frame.columns, first, last)],
        "defaultColDef": {"minWidth": 100},
        # columns as wide as their contents (not 200 px each): more of them fit a narrow window
        "autoSizeStrategy": {"type": "fitCellContents"},
        # every column drawn (a grid has tens of columns, not thousands): sizing to contents reaches the
        # columns out of view, and the ids kept last are in the page for find-in-page and tests
        "suppressColumnVirtualisation": True,
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


# --- what the grid shows, applied on the server (so an export is what the user sees) ----------------


class GridFilterError(ValueError):
    """A grid filter this module cannot apply the way AG Grid does (the export would differ)."""


def display_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as the grid gets it: dates and timestamps as text (``YYYY-MM-DD`` / ``… HH:MM``)."""
    return frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d %H:%M") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if isinstance(t, pl.Date)]
    )


_NUMBER_OPS = {
    "equals": lambda c, v, _: c == v, "notEqual": lambda c, v, _: c != v,
    "lessThan": lambda c, v, _: c < v, "lessThanOrEqual": lambda c, v, _: c <= v,
    "greaterThan": lambda c, v, _: c > v, "greaterThanOrEqual": lambda c, v, _: c >= v,
    "inRange": lambda c, v, to: (c > v) & (c < to),  # AG Grid's default: both ends excluded
}


def _condition(column: str, dtype: pl.DataType, model: dict[str, Any]) -> pl.Expr:
    kind, op = model.get("filterType"), model.get("type")
    col = pl.col(column)
    # AG Grid: a text cell of spaces only is blank (it trims), a NaN number is blank
    blank = (col.is_null() | (col.cast(pl.String).str.strip_chars() == "")) if kind == "text" else (
        col.is_null() | (col.cast(pl.Float64).is_nan() if dtype.is_numeric() else pl.lit(False)))
    if op == "blank":
        return blank.fill_null(True)
    if op == "notBlank":
        return ~blank.fill_null(True)
    if kind == "number" and op in _NUMBER_OPS:
        value, to = model.get("filter"), model.get("filterTo")
        if value is None or (op == "inRange" and to is None):
            return pl.lit(True)  # AG Grid ignores a condition without its number
        # a blank (or NaN) cell matches no number condition (AG Grid's includeBlanksIn* options default to false)
        number = col.cast(pl.Float64)
        return (number.is_not_null() & number.is_not_nan()
                & _NUMBER_OPS[op](number, float(value), None if to is None else float(to))).fill_null(False)
    if kind == "text" and op in ("equals", "notEqual", "contains", "notContains", "startsWith", "endsWith"):
        needle = str(model.get("filter") or "").lower()
        if not needle:
            return pl.lit(True)
        text = col.cast(pl.String).str.to_lowercase()
        match = {
            "equals": text == needle, "notEqual": text != needle,
            "contains": text.str.contains(needle, literal=True), "notContains": ~text.str.contains(needle, literal=True),
            "startsWith": text.str.starts_with(needle), "endsWith": text.str.ends_with(needle),
        }[op]
        # AG Grid's text filter: a blank cell passes "not equal" and "does not contain", fails the others
        return match.fill_null(op in ("notEqual", "notContains"))
    raise GridFilterError(f"the grid filter {kind} {op!r} on {column} cannot be applied to the export")


def _column_filter(column: str, dtype: pl.DataType, model: dict[str, Any]) -> pl.Expr:
    if "conditions" in model:
        parts = [_condition(column, dtype, c) for c in model["conditions"]]
        if not parts:
            return pl.lit(True)
        joined = parts[0]
        for part in parts[1:]:
            joined = (joined | part) if str(model.get("operator", "AND")).upper() == "OR" else (joined & part)
        return joined
    return _condition(column, dtype, model)


def apply_grid_state(frame: pl.DataFrame, state: dict[str, Any] | None) -> pl.DataFrame:
    """The rows of ``frame`` the grid shows under its filter and sort state (AG Grid's ``gridState``),
    in the grid's order: the filters are evaluated on the grid's text forms of dates, as AG Grid does."""
    state = state or {}
    filter_model = (state.get("filter") or {}).get("filterModel") or {}
    sort_model = (state.get("sort") or {}).get("sortModel") or []
    if not filter_model and not sort_model:
        return frame
    shown = display_frame(frame).with_row_index("_row")
    for column, model in filter_model.items():
        if column not in frame.columns:
            raise GridFilterError(f"the grid filters a column the data does not have: {column}")
        shown = shown.filter(_column_filter(column, shown.schema[column], model))
    sorts = [s for s in sort_model if s.get("colId") in frame.columns and s.get("sort") in ("asc", "desc")]
    if sorts:
        # AG Grid puts blanks first when ascending and last when descending; ties keep the input order
        shown = shown.sort([pl.col(s["colId"]) for s in sorts], descending=[s["sort"] == "desc" for s in sorts],
                           nulls_last=[s["sort"] == "desc" for s in sorts], maintain_order=True)
    return frame[shown["_row"]]


def describe_grid_state(state: dict[str, Any] | None) -> str:
    """The grid's filters and sort in words (``monetary greaterThan 1000; sorted by name asc``), "" if none."""
    state = state or {}
    parts = []
    for column, model in ((state.get("filter") or {}).get("filterModel") or {}).items():
        conditions = model.get("conditions") or [model]
        joiner = f" {str(model.get('operator', 'AND')).lower()} "
        parts.append(f"{column} " + joiner.join(
            f"{c.get('type')}" + ("" if c.get("filter") is None else f" {c.get('filter')}")
            + ("" if c.get("filterTo") is None else f"–{c.get('filterTo')}") for c in conditions))
    sorts = [f"{s.get('colId')} {s.get('sort')}" for s in (state.get("sort") or {}).get("sortModel") or []]
    if sorts:
        parts.append("sorted by " + ", ".join(sorts))
    return "; ".join(parts)
