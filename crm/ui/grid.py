"""The grid wrapper (streamlit-aggrid) and the export buttons beneath a grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import streamlit as st
from st_aggrid import AgGrid, JsCode

from crm.auth import audit
from crm.export import FORMATS, MIME, build_manifest, export_bytes, export_filename
from crm.filters import Filters
from crm.format import plain
from crm.grid import GridFilterError, apply_grid_state, build_grid_options, describe_grid_state, display_frame
from crm.masking import mask_contacts, masking_note
from crm.ui import loaders
from crm.ui.access import actor_name, actor_role


def _with_links(options: dict[str, Any], links: Mapping[str, str] | None) -> dict[str, Any]:
    """``options`` with the columns named in ``links`` drawn by their renderer (crm.grid.link_renderer)."""
    for column in options["columnDefs"]:
        if links and column["field"] in links:
            column["cellRenderer"] = JsCode(links[column["field"]])
    return options


def data_grid(frame: pl.DataFrame, key: str, height: int = 420, selectable: bool = True,
              first: tuple[str, ...] = (), last: tuple[str, ...] = (),
              links: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Show ``frame`` in AG Grid, the columns in ``first`` leading and those in ``last`` at the end
    (crm.grid.column_order; ``links``: column → a cell renderer drawing it as a link, crm.grid.link_renderer);
    returns the rows the user ticked (empty frame when none). Contact columns are masked for a role that may
    not see them (crm.masking)."""
    frame = mask_contacts(frame, actor_role())
    if frame.is_empty():
        return frame
    display = display_frame(frame)
    response = AgGrid(
        display,
        gridOptions=_with_links(build_grid_options(display, selectable=selectable, first=first, last=last), links),
        height=height,
        key=key,
        update_on=["selectionChanged"],
        show_download_button=False,
        theme="streamlit",
        allow_unsafe_jscode=bool(links),  # our own renderers only (crm.grid.link_renderer), never data
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
    columns: tuple[str, ...] = (),
) -> None:
    """Downloads of exactly ``frame`` (CSV, XLSX, optionally Parquet), named after the filters, with a
    manifest. Each file is built only when its button is pressed; ``frame`` may be a function that
    builds the rows then (with ``rows``, their count, and ``columns``, their columns), so a large export
    costs nothing until asked for. Customer email and phone are masked for a role that may not see them
    (crm.masking; the manifest says so).

    Each file built writes a ``data.exported`` audit row before it is sent (no row, no file). Written as
    the file is built rather than by the button's ``on_click`` callback: a callback reruns the page, which
    renews every download button's file, and a second download clicked during that rerun asks for a file
    that is gone (seen in the browser tests); building runs only when the person downloads, and knows the
    exact row count of a deferred export."""
    role, actor = actor_role(), actor_name()  # now: the file is built outside this run, without the session
    count = frame.height if isinstance(frame, pl.DataFrame) else rows
    note = masking_note(frame.columns if isinstance(frame, pl.DataFrame) else list(columns), role)
    manifest = build_manifest(title, filters, count or 0, data_version, selection_rule, metric_keys,
                              definitions=definitions, masking=note)
    label = "" if count is None else f" ({count:,} rows)"

    def payload(fmt: str, file_name: str) -> bytes:
        exported = mask_contacts(frame if isinstance(frame, pl.DataFrame) else frame(), role)
        masking = masking_note(exported.columns, role)
        exact = build_manifest(title, filters, exported.height, data_version, selection_rule, metric_keys,
                               definitions=definitions, masking=masking)
        data = export_bytes(exported, fmt, exact)  # type: ignore[arg-type]
        record_export(actor, {
            "via": "app", "grid": base, "title": title, "format": fmt, "file": file_name, "rows": exported.height,
            "filters": filters.describe(), "selection": selection_rule or "all rows matching the filters",
            "masking": masking or None, "data_version": data_version})
        return data

    row = st.container(horizontal=True, key=f"{key}_buttons")  # wraps where the labels do not fit side by side
    for fmt in formats:
        file_name = export_filename(base, filters, fmt)
        with row:
            st.download_button(
                f"Download {fmt.upper() if fmt != 'parquet' else 'Parquet'}{label}",
                data=lambda fmt=fmt, file_name=file_name: payload(fmt, file_name),  # type: ignore[misc]
                file_name=file_name,
                mime=MIME[fmt],
                key=f"{key}_{fmt}",
                icon=":material/download:",
                disabled=count == 0,  # None: counted when built
                on_click="ignore",
                wrap=True,
            )
    with row:
        st.download_button(
            "Download manifest (JSON)", data=manifest.to_json(), file_name=export_filename(base, filters, "manifest.json"),
            mime=MIME["json"], key=f"{key}_manifest", icon=":material/description:", on_click="ignore", wrap=True,
        )


def record_export(actor: str | None, detail: dict[str, Any]) -> None:
    """Append a ``data.exported`` row for ``actor`` (the signed-in person's name). Runs where the file is built,
    outside the page's run: a store that refuses the row raises, and the download fails with it."""
    audit(loaders.get_store(loaders.database_url()), actor, "data.exported", detail)


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


def explorer_grid(frame: pl.DataFrame, key: str, limit: int = 5_000, height: int = 460,
                  first: tuple[str, ...] = (), last: tuple[str, ...] = (),
                  links: Mapping[str, str] | None = None) -> GridView:
    """``frame``'s first ``limit`` rows in AG Grid with column filters, sorting and ticking (columns
    ordered as in ``data_grid``; ``links``: column → a cell renderer drawing it as a link, crm.grid.link_renderer); the
    grid's filter and sort state is applied to the whole frame on the server, so an export holds
    what the user sees (and, past ``limit``, the rows the browser was not sent, filtered alike).
    Contact columns are masked for a role that may not see them (crm.masking), so ``rows`` are too."""
    frame = mask_contacts(frame, actor_role())
    if frame.is_empty():
        return GridView(frame, frame)
    shown = display_frame(frame.head(limit))  # dates as text: text filters, as apply_grid_state reads them
    options = _with_links(build_grid_options(shown, selectable=True, first=first, last=last), links)
    response = AgGrid(
        shown,
        gridOptions=options,
        height=height,
        key=key,
        update_on=["selectionChanged", "filterChanged", "sortChanged"],
        show_download_button=False,
        theme="streamlit",
        allow_unsafe_jscode=bool(links),  # our own renderers only (crm.grid.link_renderer), never data
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
        role = actor_role()  # now: the file may be built outside this run, where the session is not at hand

        def rows() -> pl.DataFrame:  # masked first: the grid's filters were typed on what the person saw
            return apply_grid_state(mask_contacts(all_rows(), role), view.state)
        count, what = (None if grid else total), "what the grid shows"  # filtered rows are counted when built
    st.caption(f"Export: {what}" + (f" ({plain(grid)})" if grid else "") + ", with a manifest of the filters and selection.")
    export_buttons(rows, selection_rule=selection_rule + (f"; grid: {grid}" if grid else ""), rows=count,
                   columns=tuple(view.rows.columns), **export)


__all__ = ["FORMATS", "GridView", "data_grid", "explorer_grid", "export_buttons", "export_grid_view", "record_export"]
