"""The grid wrapper (streamlit-aggrid) and the export buttons beneath a grid."""

from __future__ import annotations

import polars as pl
import streamlit as st
from st_aggrid import AgGrid

from crm.export import MIME, build_manifest, export_bytes, export_filename
from crm.filters import Filters
from crm.grid import build_grid_options


def data_grid(frame: pl.DataFrame, key: str, height: int = 420, selectable: bool = True) -> pl.DataFrame:
    """Show ``frame`` in AG Grid; returns the rows the user ticked (empty frame when none)."""
    if frame.is_empty():
        return frame
    display = frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d %H:%M") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in frame.schema.items() if isinstance(t, pl.Date)]
    )
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
    frame: pl.DataFrame,
    base: str,
    title: str,
    filters: Filters,
    data_version: int,
    key: str,
    selection_rule: str = "",
    metric_keys: tuple[str, ...] = (),
) -> None:
    """CSV and XLSX downloads of exactly ``frame``, named after the filters, with a manifest."""
    manifest = build_manifest(title, filters, frame.height, data_version, selection_rule, metric_keys)
    columns = st.columns(3)
    for column, fmt in zip(columns, ("csv", "xlsx"), strict=False):
        with column:
            st.download_button(
                f"Download {fmt.upper()} ({frame.height:,} rows)",
                data=lambda fmt=fmt: export_bytes(frame, fmt, manifest),  # type: ignore[misc]
                file_name=export_filename(base, filters, fmt),
                mime=MIME[fmt],
                key=f"{key}_{fmt}",
                icon=":material/download:",
                disabled=frame.is_empty(),
                on_click="ignore",
            )
    with columns[2]:
        st.download_button(
            "Download manifest (JSON)", data=manifest.to_json(), file_name=export_filename(base, filters, "manifest.json"),
            mime=MIME["json"], key=f"{key}_manifest", icon=":material/description:", on_click="ignore",
        )
