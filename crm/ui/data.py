"""The Data page's Streamlit glue: upload, reading options, the mapping form, preview / validate / import,
a mapping file run as it is, and the import history with undo.

The work is done by ``crm.mapping_form`` (form choices -> mapping, the tables shown) and ``crm.ingest``
(plan, import, history, undo). Every text that comes from a file or the store is shown as text: in
tables, or escaped (``crm.format.plain``) where Streamlit reads Markdown. An import or an undo bumps
the data version; every cached loader is keyed by it, so the next run of any page reads the new data
and nothing needs clearing here.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from crm import schema
from crm.format import plain
from crm.ingest import ImportPlan, ImportRejected, Problem, import_history, plan_import, run_import, undo_import
from crm.mapping import ImportMapping, MappingError, Mode, parse_mapping, to_toml
from crm.mapping_form import (
    DELIMITER_CHOICES,
    ENCODINGS,
    MAX_MAPPED_VALUES,
    PREVIEW_ROWS,
    PROBLEMS_SHOWN,
    UPLOAD_SUFFIXES,
    ColumnChoice,
    FormChoices,
    choices_from_suggestion,
    column_kind,
    counts_table,
    describe_import,
    distinct_count,
    draft,
    history_table,
    is_required,
    likeliest_sheet,
    parse_date_formats,
    preview_table,
    problem_rows,
    problems_table,
    rules_table,
    save_upload,
    session_folder,
    sheet_names,
    undoable,
    value_map,
    value_rows,
    vocabulary,
)
from crm.roles import NotPermitted
from crm.sources import ReadOptions, SourceError, describe_delimiter
from crm.store import Store, StoreError
from crm.suggest import Suggestion
from crm.ui import loaders
from crm.ui.access import actor_name, actor_role, allowed, only_for

UPLOAD_ROOT = Path(tempfile.gettempdir()) / "crm-uploads"
NOT_IMPORTED = "— not imported —"
"""The source-column choice that leaves a canonical column out."""
_MODES = (Mode.INSERT, Mode.UPSERT, Mode.REPLACE)
_MODE_HELP = ("insert: new rows only (a key already in the store is a problem); upsert: rows with the same key are "
              "replaced; replace: the file's rows replace every row of the table.")
_OTHERWISE_KEEP = "keep the value as it is"
_OTHERWISE_EMPTY = "leave empty"
_PROBLEM_COLUMNS = {
    "file": st.column_config.TextColumn("File", width=130),
    "row": st.column_config.NumberColumn("Row", format="%d", width=60),
    "column": st.column_config.TextColumn("Column", width=120),
    "value": st.column_config.TextColumn("Value", width=130),
    "rule": st.column_config.TextColumn("Rule", width=640),
}
_ERRORS = (SourceError, MappingError, ImportRejected, StoreError, NotPermitted, pl.exceptions.PolarsError)
"""What a person's file or mapping can cause; shown as a message, never as a traceback."""


def _digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def show_error(what: str, exc: Exception) -> None:
    """A clear error box: ``what`` failed (Markdown: escape file names in it), then the reason as text."""
    first, _, rest = str(exc).partition("\n")
    st.error(f"**{what}** {plain(first)}", icon=":material/error:")
    if isinstance(exc, ImportRejected) and exc.problems:
        problems_frame(exc.problems)
    elif rest.strip() and not isinstance(exc, pl.exceptions.PolarsError):  # Polars adds its query plan: noise here
        st.text(rest)


def problems_frame(problems: list[Problem]) -> None:
    """Problems (file, row, column, value, rule) as a table."""
    st.dataframe(problem_rows(problems), hide_index=True, column_config=_PROBLEM_COLUMNS)


# --- upload ------------------------------------------------------------------------------


def upload_folder() -> Path:
    """This browser session's folder for uploaded files."""
    if "data_session" not in st.session_state:
        st.session_state["data_session"] = uuid.uuid4().hex
    return session_folder(UPLOAD_ROOT, st.session_state["data_session"])


def upload_files(folder: Path) -> list[Path]:
    """The file uploader; the files uploaded now, saved in ``folder`` under their own names."""
    uploaded = st.file_uploader(
        "Export files (CSV, TXT or XLSX)", type=list(UPLOAD_SUFFIXES), accept_multiple_files=True, key="data_upload",
        help="One file is mapped below; upload a second file too when a mapping file needs it (a lookup).")
    return [save_upload(folder, f.name, f.getvalue()) for f in uploaded or []]


def choose_file(files: list[Path]) -> Path:
    """The file to map (a choice only when several are uploaded)."""
    if len(files) == 1:
        return files[0]
    names = [f.name for f in files]
    chosen = st.selectbox("File to map", names, key="data_file")
    return files[names.index(chosen)]


# --- reading and the draft ----------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=16, ttl=3600)
def _draft(path: str, stamp: tuple[int, int], table: str | None, options: ReadOptions) -> Suggestion:
    return draft(Path(path), table, options)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _sheets(path: str, stamp: tuple[int, int]) -> tuple[list[str], str | None]:
    return sheet_names(Path(path)), likeliest_sheet(Path(path))


def read_options(path: Path) -> ReadOptions:
    """How to read the file: automatic by default; encoding, delimiter, header row and sheet can be set
    when the detection got it wrong."""
    key = _digest(path.name, _stamp(path))
    with st.expander("Reading options: encoding, delimiter, header row, sheet", icon=":material/tune:"):
        if path.suffix.lower() == ".xlsx":
            try:
                names, likeliest = _sheets(str(path), _stamp(path))
            except SourceError:  # reading it below says why
                return ReadOptions()
            a, b = st.columns(2)
            sheet = a.selectbox("Sheet", names, index=names.index(likeliest) if likeliest in names else 0,
                                key=f"data_sheet_{key}", help="The sheet with the most cells is chosen first.")
            header = b.checkbox("The first row holds the column names", True, key=f"data_header_{key}")
            return ReadOptions(sheet=sheet, header=header)
        a, b, c = st.columns(3)
        encoding = a.selectbox("Encoding", ENCODINGS, key=f"data_encoding_{key}", accept_new_options=True,
                               help="auto: UTF-8 when the bytes are valid UTF-8, else detected (charset-normalizer). "
                                    "Type any other codec name.")
        delimiter = b.selectbox("Delimiter", DELIMITER_CHOICES, key=f"data_delimiter_{key}",
                                format_func=lambda d: "auto" if d == "auto" else describe_delimiter(d))
        header = c.checkbox("The first line holds the column names", True, key=f"data_header_{key}",
                            help="Without a header the columns are named column_1, column_2, …")
    return ReadOptions(encoding=str(encoding or "auto"), delimiter=delimiter, header=header)


def read_and_suggest(path: Path, options: ReadOptions) -> Suggestion | None:
    """Read the file, show how it was read and its first rows, choose the table; the draft mapping for that
    table (None, with the reason shown, when the file cannot be read)."""
    stamp = _stamp(path)
    try:
        with st.spinner(f"Reading {plain(path.name)}…"):
            suggestion = _draft(str(path), stamp, None, options)
    except _ERRORS as exc:
        show_error(f"{plain(path.name)} cannot be read.", exc)
        st.info("Check the reading options above (encoding, delimiter, sheet), or export the file again as CSV.",
                icon=":material/tune:")
        return None
    st.markdown(f"**{plain(path.name)}**: {plain(suggestion.source.describe())}")
    st.container(key="data_source_head").dataframe(suggestion.source.frame.head(10), hide_index=True, height=250)
    tables = list(schema.BUSINESS_TABLES)
    table = st.selectbox("Import into table", tables, index=tables.index(suggestion.table),
                         key=f"data_table_{_digest(path.name, stamp, options)}",
                         help="Suggested from the file's column names; choose another when it guessed wrong.")
    if table != suggestion.table:
        try:
            suggestion = _draft(str(path), stamp, table, options)
        except _ERRORS as exc:
            show_error(f"{plain(path.name)} cannot be mapped onto {table}.", exc)
            return None
    for note in suggestion.notes:
        st.caption(f":material/info: {plain(note)}")
    return suggestion


# --- the form -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FormResult:
    """What the form says now, and which button sent it (None: no button this run)."""

    choices: FormChoices
    action: str | None
    quarantine: bool
    key: str


def mapping_form(path: Path, suggestion: Suggestion) -> FormResult:
    """Per canonical column: the source column, a constant, a default, and for a column with a fixed
    vocabulary a value map with an 'otherwise'; the date formats, the mode; Preview, Validate, Import."""
    defaults = choices_from_suggestion(suggestion)
    table = defaults.table
    frame = suggestion.source.frame
    key = f"data_{_digest(path.name, _stamp(path), table, defaults.read)}"
    sources = [NOT_IMPORTED, *frame.columns]
    columns: list[tuple[str, ColumnChoice]] = []
    with st.form(f"{key}_form", border=True):
        st.markdown(f"**Map the file's columns onto {table}** (required columns in bold)")
        widths = [3, 3, 2, 2]
        for column, label in zip(st.columns(widths), ("Column", "From the file", "Constant", "Default when empty"),
                                 strict=True):
            column.caption(label)
        for name in schema.data_columns(table):
            choice = defaults.column(name)
            cells = st.columns(widths, vertical_alignment="center")
            shown = f"**{name}**" if is_required(table, name) else name
            cells[0].markdown(f"{shown} :gray[{column_kind(table, name)}]")
            picked = cells[1].selectbox(
                f"{name}: source column", sources, index=sources.index(choice.source) if choice.source in sources else 0,
                key=f"{key}_src_{name}", label_visibility="collapsed")
            source = None if picked == NOT_IMPORTED else picked
            constant = cells[2].text_input(f"{name}: constant", choice.constant, key=f"{key}_const_{name}",
                                           label_visibility="collapsed", placeholder="constant")
            default = cells[3].text_input(f"{name}: default", choice.default, key=f"{key}_default_{name}",
                                          label_visibility="collapsed", placeholder="default")
            same = source == choice.source  # the suggested value map belongs to the suggested source column
            values, otherwise = (choice.values, choice.otherwise) if same else ((), None)
            if vocabulary(table, name) and source is not None:
                values, otherwise = _value_map_editor(frame, table, name, source, choice, key)
            columns.append((name, ColumnChoice(source=source, constant=constant, default=default, values=values,
                                               otherwise=otherwise)))
        a, b = st.columns([3, 2])
        formats = a.text_input(
            "Date formats (strptime patterns, comma-separated)", ", ".join(defaults.date_formats), key=f"{key}_formats",
            help="ISO 8601 (2026-03-31, 2026-03-31 14:05:00, with or without a UTC offset) is always understood; "
                 "add e.g. %d/%m/%Y or %m/%d/%Y %H:%M for other spellings.")
        mode = b.selectbox("Mode", list(_MODES), index=list(_MODES).index(defaults.mode), key=f"{key}_mode",
                           help=_MODE_HELP)
        quarantine = st.checkbox("Set bad rows aside", key=f"{key}_quarantine",
                                 help="Import the valid rows and keep the bad ones (with their reasons) for download; "
                                      "otherwise any bad row stops the whole import.")
        buttons = st.container(horizontal=True)
        preview = buttons.form_submit_button("Preview", icon=":material/visibility:")
        validate = buttons.form_submit_button("Validate", icon=":material/rule:")
        run = buttons.form_submit_button("Import", type="primary", icon=":material/upload:")
    action = "import" if run else "validate" if validate else "preview" if preview else None
    choices = FormChoices(table, tuple(columns), defaults.read, parse_date_formats(formats), Mode(mode))
    return FormResult(choices, action, bool(quarantine), key)


def _value_map_editor(frame: pl.DataFrame, table: str, name: str, source: str, choice: ColumnChoice,
                      key: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """One row per distinct value of ``source`` with the canonical value it maps to, and 'otherwise'."""
    words = vocabulary(table, name)
    rows = value_rows(frame, source, table, name, choice.values if source == choice.source else ())
    _, right = st.columns([2, 7])
    with right:
        edited = st.data_editor(
            rows, key=f"{key}_values_{name}_{_digest(source)}", hide_index=True,
            disabled=["value", "rows", "also_spelled"], column_order=["value", "also_spelled", "rows", "maps_to"],
            column_config={
                "value": st.column_config.TextColumn(f"Value of {source}"),
                "also_spelled": st.column_config.TextColumn("Also spelled", help="Value maps ignore case and spaces."),
                "rows": st.column_config.NumberColumn("Rows", format="%d"),
                "maps_to": st.column_config.SelectboxColumn(f"{name} becomes", options=list(words), required=False),
            })
        total = distinct_count(frame, source)
        if total > MAX_MAPPED_VALUES:
            st.caption(f"The {MAX_MAPPED_VALUES} most frequent of {total:,} values; the others follow 'otherwise'.")
        options: list[str | None] = [None, "", *words]
        current = choice.otherwise if source == choice.source else None
        otherwise = st.selectbox(
            f"Other values of {name}", options, index=options.index(current) if current in options else 0,
            format_func=lambda o: _OTHERWISE_KEEP if o is None else _OTHERWISE_EMPTY if o == "" else o,
            key=f"{key}_otherwise_{name}_{_digest(source)}",
            help=f"For values with no row above: keep them (a problem unless they already are {', '.join(words)}), "
                 "leave the cell empty, or give them one value.")
    records = edited.to_dicts() if isinstance(edited, pl.DataFrame) else edited.to_dict("records")
    return value_map(records), otherwise


def mapping_download(mapping: ImportMapping, path: Path) -> None:
    """The mapping the form means, as a TOML file (the same format as `python -m crm import --mapping`)."""
    text = to_toml(mapping)
    st.download_button("Download mapping (TOML)", text, file_name=f"{path.stem}.mapping.toml", mime="application/toml",
                         icon=":material/download:", on_click="ignore", key="data_download_mapping")
    command = f"python -m crm import --mapping {path.stem}.mapping.toml --dry-run".replace("`", "'")
    st.caption(f"Put it beside {plain(path.name)} and run `{command}`, or upload it again below.")
    with st.expander("The mapping as TOML", icon=":material/code:"):
        st.code(text, language="toml")


# --- preview, validate, import ---------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _plan(url: str, version: int, toml: str, base: str, stamps: tuple[tuple[str, int, int], ...],
          _mapping: ImportMapping) -> ImportPlan:
    """The plan of ``_mapping`` for one data version (keys already in the store count), cached under its TOML
    text, folder and the files' stamps."""
    return plan_import(loaders.get_store(url), _mapping)


def _stamps(mapping: ImportMapping) -> tuple[tuple[str, int, int], ...]:
    files = [b.file for b in mapping.blocks if b.file is not None and b.file.is_file()]
    return tuple((str(f), *_stamp(f)) for f in files)


def plan_for(url: str, version: int, mapping: ImportMapping) -> ImportPlan | None:
    """The mapping planned against the store (cached per data version); None with the reason shown."""
    try:
        with st.spinner("Mapping and checking every row…"):
            return _plan(url, version, to_toml(mapping), str(mapping.base), _stamps(mapping), mapping)
    except _ERRORS as exc:
        show_error("The mapping cannot be checked.", exc)
        return None


def remember_action(form: FormResult) -> str | None:
    """The form's last Preview/Validate, kept across reruns caused by other widgets (an Import runs once)."""
    if form.action in ("preview", "validate"):
        st.session_state["data_shown"] = (form.key, form.action)
    elif form.action == "import":
        st.session_state.pop("data_shown", None)
        return "import"
    shown = st.session_state.get("data_shown")
    return shown[1] if shown and shown[0] == form.key else None


def show_preview(plan: ImportPlan) -> None:
    """The first mapped rows as they would be written, with their problems."""
    st.subheader("Preview")
    block = plan.blocks[0]
    if block.file_problems():
        show_validation(plan, quarantine=False)
        return
    table = preview_table(plan)
    shown = "All" if block.rows.height <= PREVIEW_ROWS else f"The first {PREVIEW_ROWS} of"
    st.caption(f"{shown} {block.rows.height:,} rows as they would be written to {block.block.table}; *line* is the "
               "line in the file, *problems* what stops a row from loading.")
    st.container(key="data_preview").dataframe(table, hide_index=True, column_config={
        "line": st.column_config.NumberColumn("line", format="%d"),
        "problems": st.column_config.TextColumn("problems", width="large"),
    })
    count = plan.problem_count()
    if count:
        st.warning(f"{count:,} problem(s) in the whole file: **Validate** lists them.", icon=":material/rule:")


def show_validation(plan: ImportPlan, quarantine: bool, prefix: str = "data") -> None:
    """What an import would write, the problems by rule and the first problems, and the warnings (the tables' containers
    are keyed ``<prefix>_counts``, ``_rules``, ``_problems``)."""
    st.subheader("Validation")
    counts = counts_table(plan, quarantine)
    count = plan.problem_count()
    a, b, c = st.columns(3)
    writes = int(counts["rows"].sum()) if quarantine or not count else 0
    a.metric("Rows to write", f"{writes:,}", help="What Import would write now: every row when none has a problem; "
             "with 'Set bad rows aside' the valid rows; otherwise none.")
    b.metric("Rows with problems", f"{int(counts['rows_with_problems'].sum()):,}")
    c.metric("Problems", f"{count:,}")
    if counts.height > 1 or counts["skipped"].sum():
        st.container(key=f"{prefix}_counts").dataframe(counts, hide_index=True, column_config={
            "table": st.column_config.TextColumn("Table"), "file": st.column_config.TextColumn("File"),
            "rows": st.column_config.NumberColumn("Rows", format="%d"),
            "rows_with_problems": st.column_config.NumberColumn("Rows with problems", format="%d"),
            "skipped": st.column_config.NumberColumn("Derived rows skipped", format="%d",
                                                     help="A required cell was empty."),
        })
    if count:
        stop = "the valid rows would load, the bad ones set aside" if quarantine else "nothing would be written"
        st.error(f"{count:,} problem(s): {stop}. Fix the mapping (value maps, date formats, defaults) or the file.",
                 icon=":material/rule:")
        st.markdown("**Problems by rule**")
        st.container(key=f"{prefix}_rules").dataframe(rules_table(plan), hide_index=True, column_order=(
            "problems", "table", "rule"), column_config={
            "problems": st.column_config.NumberColumn("Problems", format="%d", width=90),
            "table": st.column_config.TextColumn("Table", width=150),
            "rule": st.column_config.TextColumn("Rule", width=840)})
        shown = min(count, PROBLEMS_SHOWN)
        st.markdown(f"**The first {shown} problems**" if shown < count else "**Every problem**")
        st.container(key=f"{prefix}_problems").dataframe(problems_table(plan), hide_index=True,
                                                         column_config=_PROBLEM_COLUMNS)
    else:
        st.success("No problems: every row can be imported. Nothing is written until you press **Import**.",
                   icon=":material/check_circle:")
    for text in plan.warnings:
        st.warning(plain(text), icon=":material/warning:")


def import_now(store: Store, mapping: ImportMapping, quarantine: Path | None) -> None:
    """Run the import with a progress bar; on success remember what it did and rerun (every page then reads
    the new data version), on failure show why (nothing was written)."""
    bar = st.progress(0.0, text="Starting the import…")

    def progress(fraction: float, text: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=plain(text))

    try:
        _, result = run_import(store, mapping, quarantine=quarantine, mapping_text=to_toml(mapping), progress=progress,
                               actor=actor_name(), role=actor_role())
        loaders.changed_here()
    except _ERRORS as exc:
        bar.empty()
        show_error("Nothing was imported.", exc)
        return
    assert result is not None
    set_aside = sorted(str(p) for p in quarantine.glob("*.csv")) if quarantine is not None and quarantine.is_dir() else []
    st.session_state["data_outcome"] = {
        "batch": result.batch, "per_table": dict(result.per_table), "rejected": result.quarantined,
        "version": result.data_version, "warnings": list(result.warnings), "set_aside": set_aside,
    }
    st.rerun()


def show_outcome() -> None:
    """The result of the last import of this session: rows per table, its id, the new data version."""
    outcome = st.session_state.get("data_outcome")
    if not outcome:
        return
    tables = ", ".join(f"{n:,} rows into {t}" for t, n in outcome["per_table"].items())
    aside = f"; {outcome['rejected']:,} bad rows set aside" if outcome["rejected"] else ""
    st.success(f"**Import {outcome['batch']} done:** {tables}{aside}. Data version {outcome['version']}: every page "
               "now shows the new data.", icon=":material/check_circle:")
    for text in outcome["warnings"]:
        st.warning(plain(text), icon=":material/warning:")
    for name in outcome["set_aside"]:
        path = Path(name)
        if path.is_file():
            st.download_button(f"Download the bad rows of {path.stem} (CSV)", path.read_bytes(),
                               file_name=f"import-{outcome['batch']}-{path.name}", mime="text/csv", on_click="ignore",
                               icon=":material/download:", key=f"data_aside_{path.stem}")
    st.button("Dismiss", key="data_outcome_dismiss", on_click=lambda: st.session_state.pop("data_outcome", None))


def act(ctx_url: str, version: int, store: Store, mapping: ImportMapping, action: str | None, quarantine: Path | None,
        ) -> None:
    """Preview, validate or import ``mapping`` as asked (importing: for the roles that may)."""
    if action == "import":
        if allowed("import"):
            import_now(store, mapping, quarantine)
        else:
            only_for("import", "import data")
        return
    if action is None:
        return
    plan = plan_for(ctx_url, version, mapping)
    if plan is None:
        return
    if action == "preview":
        show_preview(plan)
    else:
        show_validation(plan, quarantine is not None)


def quarantine_folder(folder: Path, wanted: bool) -> Path | None:
    """A new folder for the bad rows of one import, when they are to be set aside."""
    return folder / f"set-aside-{uuid.uuid4().hex[:8]}" if wanted else None


# --- a mapping file as it is -----------------------------------------------------------------------


def mapping_file_panel(url: str, version: int, store: Store, folder: Path) -> None:
    """Run an uploaded mapping file (TOML, e.g. one downloaded above or written for the CLI) against the
    uploaded files: its file names are looked up among them."""
    uploaded = st.file_uploader("Mapping file (TOML)", type=["toml"], key="data_mapping_upload",
                                help="Its `file = ...` names must match files uploaded above.")
    if uploaded is None:
        st.caption("A mapping file can hold several blocks (several tables, derived rows, event logs): "
                   "see *Import mapping contract* in the design document.")
        return
    try:
        mapping = parse_mapping(uploaded.getvalue().decode("utf-8"), folder)
    except UnicodeDecodeError:
        st.error("The mapping file is not UTF-8 text.", icon=":material/error:")
        return
    except MappingError as exc:
        show_error(f"{plain(uploaded.name)} cannot be used.", exc)
        return
    blocks = pl.DataFrame({
        "block": list(range(1, len(mapping.blocks) + 1)),
        "table": [b.table for b in mapping.blocks],
        "file": [b.file.name if b.file else "(rows written in the mapping)" for b in mapping.blocks],
        "uploaded": [b.file is None or b.file.is_file() for b in mapping.blocks],
    })
    st.container(key="data_mapping_blocks").dataframe(blocks, hide_index=True, column_config={
        "block": st.column_config.NumberColumn("Block", format="%d", width="small"),
        "table": st.column_config.TextColumn("Table"), "file": st.column_config.TextColumn("File"),
        "uploaded": st.column_config.CheckboxColumn("Uploaded", width="small")})
    missing = sorted({b.file.name for b in mapping.blocks if b.file is not None and not b.file.is_file()})
    if missing:
        st.warning("Upload " + ", ".join(plain(m) for m in missing) + " above: the mapping reads them.",
                   icon=":material/upload_file:")
        return
    buttons = st.container(horizontal=True)
    validate = buttons.button("Validate mapping", icon=":material/rule:", key="data_mapping_validate")
    run = buttons.button("Import mapping", type="primary", icon=":material/upload:", key="data_mapping_import",
                         disabled=not allowed("import"))
    if run:
        import_now(store, mapping, None)
    elif validate:
        plan = plan_for(url, version, mapping)
        if plan is not None:
            show_validation(plan, quarantine=False, prefix="data_mapping")


# --- history and undo ---------------------------------------------------------------------------------


def history_panel(store: Store) -> None:
    """Every import, newest first, and undo for those whose rows are still in the store."""
    st.subheader("Import history")
    done = st.session_state.pop("data_undone", None)
    if done:
        st.success(done, icon=":material/undo:")
    try:
        history = import_history(store)
    except _ERRORS as exc:
        show_error("The import history cannot be read.", exc)
        return
    if history.is_empty():
        st.info("No imports yet. Imports made here or with `python -m crm import` are listed here and can be undone.",
                icon=":material/history:")
        return
    st.container(key="data_history").dataframe(history_table(history), hide_index=True, column_config={
        "Import": st.column_config.NumberColumn("Import", format="%d", width="small"),
        "When": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
        "Rows": st.column_config.NumberColumn("Rows", format="%d", width="small"),
        "Rejected": st.column_config.NumberColumn("Rejected", format="%d", width="small", help="Bad rows set aside."),
        "By": st.column_config.TextColumn("By", width="small"),
        "Status": st.column_config.TextColumn("Status", width="small"),
        "Undone": st.column_config.DatetimeColumn("Undone", format="YYYY-MM-DD HH:mm"),
    })
    ids = undoable(history)
    if not ids:
        st.caption("No import can be undone: their rows are no longer in the store.")
        return
    if not allowed("import"):
        only_for("import", "undo an import")
        return
    with st.container(border=True, width=640):
        batch = st.selectbox("Undo an import", ids, format_func=lambda i: describe_import(history, i), key="data_undo_pick",
                             help="Its rows are removed and the rows it replaced come back, in one transaction. "
                                  "Undo later imports of the same table first.")
        sure = st.checkbox(f"Yes, remove the rows of import {batch}", key=f"data_undo_sure_{batch}")
        if st.button(f"Undo import {batch}", key="data_undo_go", disabled=not sure, icon=":material/undo:"):
            try:
                with st.spinner(f"Undoing import {batch}…"):
                    result = undo_import(store, batch, actor=actor_name(), role=actor_role())
                    loaders.changed_here()
            except _ERRORS as exc:
                show_error(f"Import {batch} was not undone.", exc)
                return
            removed = ", ".join(f"{n:,} rows from {t}" for t, n in result.removed.items()) or "no rows"
            restored = ", ".join(f"{n:,} rows into {t}" for t, n in result.restored.items())
            st.session_state["data_undone"] = (
                f"Import {result.batch} undone: removed {removed}" + (f", put back {restored}" if restored else "")
                + f". Data version {result.data_version}.")
            st.session_state.pop("data_outcome", None)
            st.rerun()
