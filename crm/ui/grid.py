"""The grid wrapper (streamlit-aggrid) and the export buttons beneath a grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import streamlit as st
from st_aggrid import AgGrid

from crm.export import FORMATS, MIME, build_manifest, export_bytes, export_filename
from crm.filters import Filters
from crm.format import plain
from crm.grid import GridFilterError, apply_grid_state, build_grid_options, describe_grid_state, display_frame


def data_grid(frame: pl.DataFrame, key: str, height: int = 420, selectable: bool = True) -> pl.DataFrame:
    """Show ``frame`` in AG Grid; returns the rows the user ticked (empty frame when none)."""
    if frame.is_empty():
        return frame
    display = display_frame(frame)
    response = AgGrid(
        display,
        gridOptions=build_grid_options(display, selectable=selectable),
        height=height,
        key=key,
        update_on=["selectionChanged"],
        show_download_button=False,
        theme="streamlit",
    )
    chosen = response.selected_data if response is not None else None
    if chosen is None or len(chosen) == 0:
        return frame.head(0)
    ids = pl.from_pandas(chosen).get_column(frame.columns[0]).cast(pl.String).to_list()
    return frame.filter(pl.col(frame.columns[0]).cast(pl.String).is_in(ids))


def export_buttons(
    frame: pl.DataFrame | Callable[[], pl.DataFrame],
    base: str,
    title: str,
    filters: Filters,
    data_version: int,
    key: str,
    selection_rule: str = "",
    metric_keys: tuple[str, ...] = (),
    formats: tuple[str, ...] = ("csv", "xlsx"),
    rows: int | None = None,
    definitions: dict[str, str] | None = None,
) -> None:
    """Downloads of exactly ``frame`` (CSV, XLSX, optionally Parquet), named after the filters, with a
    manifest. Each file is built only when its button is pressed; ``frame`` may be a function that
    builds the rows then (with ``rows``, their count), so a large export costs nothing until asked for."""
    count = frame.height if isinstance(frame, pl.DataFrame) else rows
    manifest = build_manifest(title, filters, count or 0, data_version, selection_rule, metric_keys,
                              definitions=definitions)
    label = "" if count is None else f" ({count:,} rows)"

    def payload(fmt: str) -> bytes:
        rows_now = frame if isinstance(frame, pl.DataFrame) else frame()
        exact = build_manifest(title, filters, rows_now.height, data_version, selection_rule, metric_keys,
                               definitions=definitions)
        return export_bytes(rows_now, fmt, exact)  # type: ignore[arg-type]

    columns = st.columns(len(formats) + 1)
    for column, fmt in zip(columns, formats, strict=False):
        with column:
            st.download_button(
                f"Download {fmt.upper() if fmt != 'parquet' else 'Parquet'}{label}",
                data=lambda fmt=fmt: payload(fmt),  # type: ignore[misc]
                file_name=export_filename(base, filters, fmt),
                mime=MIME[fmt],
                key=f"{key}_{fmt}",
                icon=":material/download:",
                disabled=count == 0,  # None: counted when built
                on_click="ignore",
            )
    with columns[-1]:
        st.download_button(
            "Download manifest (JSON)", data=manifest.to_json(), file_name=export_filename(base, filters, "manifest.json"),
            mime=MIME["json"], key=f"{key}_manifest", icon=":material/description:", on_click="ignore",
        )


@dataclass(frozen=True)
class GridView:
    """What an explorer grid shows: ``rows`` = every row under the grid's filters and sort (not only
    the ones sent to the browser), ``ticked`` = the rows ticked, ``problem`` = why the grid's
    filters could not be applied (then ``rows`` is unfiltered and must not be exported)."""

    rows: pl.DataFrame
    ticked: pl.DataFrame
    problem: str = ""
    state: dict = field(default_factory=dict)
    """The grid's filter and sort state (AG Grid gridState), to apply to other rows alike."""

    def describe(self) -> str:
        """The grid's filters and sort in words, for a manifest ("" when none)."""
        return describe_grid_state(self.state)


def explorer_grid(frame: pl.DataFrame, key: str, limit: int = 5_000, height: int = 460) -> GridView:
    """``frame``'s first ``limit`` rows in AG Grid with column filters, sorting and ticking; the
    grid's filter and sort state is applied to the whole frame on the server, so an export holds
    what the user sees (and, past ``limit``, the rows the browser was not sent, filtered alike)."""
    if frame.is_empty():
        return GridView(frame, frame)
    shown = display_frame(frame.head(limit))  # dates as text: text filters, as apply_grid_state reads them
    response = AgGrid(
        shown,
        gridOptions=build_grid_options(shown, selectable=True),
        height=height,
        key=key,
        update_on=["selectionChanged", "filterChanged", "sortChanged"],
        show_download_button=False,
        theme="streamlit",
    )
    state = (response.grid_state if response is not None else None) or {}
    try:
        rows = apply_grid_state(frame, state)
        problem = ""
    except GridFilterError as exc:
        rows, problem = frame, str(exc)
    state = {k: v for k, v in state.items() if k in ("filter", "sort")}
    chosen = response.selected_data if response is not None else None
    ticked = frame.head(0)
    if chosen is not None and len(chosen) > 0:
        ids = pl.from_pandas(chosen).get_column(frame.columns[0]).cast(pl.String).to_list()
        ticked = rows.filter(pl.col(frame.columns[0]).cast(pl.String).is_in(ids))
    return GridView(rows, ticked, problem, state)


def export_grid_view(
    view: GridView,
    all_rows: Callable[[], pl.DataFrame] | None,
    total: int,
    selection_rule: str,
    **export: Any,
) -> None:
    """Export what an explorer grid shows: the ticked rows if any, else every row under the grid's
    filters and sort. ``all_rows`` builds the ``total`` rows when the grid was sent fewer (None: it
    holds them all); ``export`` goes to ``export_buttons`` (base, title, filters, data_version, key, ...)."""
    if view.problem:
        st.warning(f"Export unavailable: {plain(view.problem)}. Clear that grid filter to export.", icon=":material/warning:")
        return
    grid = view.describe()
    rows: pl.DataFrame | Callable[[], pl.DataFrame]
    count: int | None
    if not view.ticked.is_empty():
        rows, count, what = view.ticked, view.ticked.height, f"the {view.ticked.height:,} ticked rows"
        selection_rule += "; ticked rows"
    elif all_rows is None:
        rows, count, what = view.rows, view.rows.height, "what the grid shows"
    else:
        def rows() -> pl.DataFrame:
            return apply_grid_state(all_rows(), view.state)
        count, what = (None if grid else total), "what the grid shows"  # filtered rows are counted when built
    st.caption(f"Export: {what}" + (f" ({grid})" if grid else "") + ", with a manifest of the filters and selection.")
    export_buttons(rows, selection_rule=selection_rule + (f"; grid: {grid}" if grid else ""), rows=count, **export)


__all__ = ["FORMATS", "GridView", "data_grid", "explorer_grid", "export_buttons", "export_grid_view"]
