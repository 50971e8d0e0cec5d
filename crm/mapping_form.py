"""The Data page's import form as plain data: the choices a person makes, the mapping they mean, and the
tables the page shows (source values to map, preview, problems, history).

No streamlit here: the page turns widgets into a ``FormChoices`` and calls these functions, and unit
tests call them with hand-made choices. A form covers the common case, one file into one table with
``[import.columns]``; anything richer (several blocks, derived rows, event logs) is a mapping file.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crm import schema
from crm.ingest import ImportPlan, Problem
from crm.mapping import ColumnSpec, ImportBlock, ImportMapping, Mode
from crm.sources import ReadOptions, SourceError, read_source
from crm.suggest import VALUE_SYNONYMS, Suggestion, choose_table, suggest_mapping

UPLOAD_SUFFIXES = ("csv", "txt", "xlsx")
"""The file types the Data page accepts."""
MAX_MAPPED_VALUES = 50
"""A value-map editor lists at most this many distinct source values (the most frequent first)."""
PREVIEW_ROWS = 20
PROBLEMS_SHOWN = 50
"""The Data page lists at most this many problems (the rule counts cover every one)."""
ENCODINGS = ("auto", "utf-8", "gb18030", "gbk", "latin-1", "cp1252", "cp1250", "big5", "shift_jis", "utf-16")
"""Encodings offered when the detected one is wrong (any other codec name can be typed)."""
DELIMITER_CHOICES = ("auto", ",", ";", "\t", "|", "whitespace")
DEFAULT_READ = ReadOptions()
_UPLOAD_MAX_AGE_S = 24 * 3600


def vocabulary(table: str, column: str) -> tuple[str, ...]:
    """The fixed values ``table.column`` may take (empty for a free-text column)."""
    for enum in schema.ENUMS.get(table, ()):
        if enum.column == column:
            return enum.values
    return ()


def column_kind(table: str, column: str) -> str:
    """What a canonical column holds, in words: text, number, whole number, timestamp, date."""
    dtype = schema.polars_dtype(schema.table(table).c[column])
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.Date):
        return "date"
    if dtype == pl.Int64:
        return "whole number"
    if dtype == pl.Float64:
        return "number"
    return "text"


def is_required(table: str, column: str) -> bool:
    """True when every row of ``table`` needs a value in ``column``."""
    return not schema.table(table).c[column].nullable


@dataclass(frozen=True)
class ColumnChoice:
    """What the form says about one canonical column.

    A constant wins over a source column; a default fills the source's missing cells (and, with
    no source column, is the value of every row). ``otherwise``: None keeps an unmatched value as
    it is (an error on a column with a vocabulary), "" makes it missing, else that value.
    """

    source: str | None = None
    constant: str = ""
    default: str = ""
    values: tuple[tuple[str, str], ...] = ()
    otherwise: str | None = None

    def spec(self) -> ColumnSpec | None:
        """The mapping spec, or None when the column is not imported."""
        if self.constant.strip():
            return ColumnSpec(value=self.constant.strip())
        if self.source is None:
            return ColumnSpec(value=self.default.strip()) if self.default.strip() else None
        return ColumnSpec(source=self.source, default=self.default.strip() or None, values=unique_keys(self.values),
                          otherwise=self.otherwise)


@dataclass(frozen=True)
class FormChoices:
    """The whole form: one file into one table."""

    table: str
    columns: tuple[tuple[str, ColumnChoice], ...]
    read: ReadOptions = field(default_factory=ReadOptions)
    date_formats: tuple[str, ...] = ()
    mode: Mode = Mode.INSERT

    def column(self, name: str) -> ColumnChoice:
        """The choice for canonical column ``name`` (not imported when the form has none)."""
        return dict(self.columns).get(name, ColumnChoice())


def build_mapping(path: Path, choices: FormChoices) -> ImportMapping:
    """The mapping the form means: one block reading ``path`` (named relative to its folder, so the
    written TOML says just the file name) into ``choices.table``."""
    specs = tuple((name, spec) for name, choice in choices.columns if (spec := choice.spec()) is not None)
    block = ImportBlock(table=choices.table, file=path, read=choices.read, date_formats=choices.date_formats,
                        mode=choices.mode, columns=specs)
    return ImportMapping((block,), path.parent)


def choices_from_suggestion(suggestion: Suggestion) -> FormChoices:
    """The form's defaults: the suggested block's columns, read options, date formats and mode."""
    block = suggestion.mapping.blocks[0]
    given = dict(block.columns)
    columns = []
    for name in schema.data_columns(block.table):
        spec = given.get(name)
        if spec is None:
            columns.append((name, ColumnChoice()))
            continue
        columns.append((name, ColumnChoice(source=spec.source, constant=spec.value or "", default=spec.default or "",
                                           values=spec.values, otherwise=spec.otherwise)))
    return FormChoices(block.table, tuple(columns), block.read, block.date_formats, block.mode)


def parse_date_formats(text: str) -> tuple[str, ...]:
    """Date patterns typed as one line, separated by commas: ``"%d/%m/%Y, %m/%d/%Y %H:%M"``."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


# --- value maps ---------------------------------------------------------------------


def _norm(text: str) -> str:
    """Case- and space-insensitive form of a value, as value maps match (``crm.ingest``)."""
    return "".join(text.lower().split())


def guess_value(table: str, column: str, value: str) -> str | None:
    """The canonical value a source value most likely means (its usual spellings in exports), or None."""
    key = _norm(value)
    for target in vocabulary(table, column):
        if key == _norm(target):
            return target
    for target, names in VALUE_SYNONYMS.get((table, column), {}).items():
        if key in {_norm(n) for n in names}:
            return target
    return None


def _norm_expr(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"\s+", "")


def value_rows(frame: pl.DataFrame, source: str, table: str, column: str,
               suggested: tuple[tuple[str, str], ...] = ()) -> pl.DataFrame:
    """The value-map editor's rows, one per value as value maps match it (case and spaces ignored), most
    frequent first, at most ``MAX_MAPPED_VALUES``: ``value`` (its most frequent spelling), ``rows``,
    ``also_spelled`` (the other spellings, comma-separated) and ``maps_to``: the suggested map's canonical
    value, else a guess, else empty."""
    spellings = (frame.select(pl.col(source).alias("value")).drop_nulls().group_by("value").agg(pl.len().alias("n"))
                 .sort(["n", "value"], descending=[True, False]))
    rows = (spellings.group_by(_norm_expr(pl.col("value")).alias("key"), maintain_order=True)
            .agg(pl.col("value").first(), pl.col("n").sum().cast(pl.Int64).alias("rows"),
                 pl.col("value").slice(1).str.join(", ").alias("also_spelled"))
            .sort(["rows", "value"], descending=[True, False]).head(MAX_MAPPED_VALUES).drop("key"))
    known = {_norm(k): v for k, v in suggested}
    targets = [known.get(_norm(v), guess_value(table, column, v)) for v in rows["value"].to_list()]
    return rows.with_columns(pl.Series("maps_to", targets, dtype=pl.String))


def distinct_count(frame: pl.DataFrame, source: str) -> int:
    """How many distinct non-empty values ``source`` holds, as value maps tell them apart."""
    return int(frame.select(_norm_expr(pl.col(source))).to_series().drop_nulls().n_unique())


def unique_keys(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A value map with one entry per key as matching sees it (case and spaces ignored; the first wins)."""
    seen: set[str] = set()
    out = []
    for key, value in pairs:
        if _norm(key) not in seen:
            seen.add(_norm(key))
            out.append((key, value))
    return tuple(out)


def value_map(rows: list[dict[str, object]]) -> tuple[tuple[str, str], ...]:
    """The value map from the editor's rows: every row whose ``maps_to`` is chosen (identity pairs
    included, so an ``otherwise`` does not catch values that are already right)."""
    return unique_keys(tuple((str(r["value"]), str(r["maps_to"])) for r in rows if r.get("maps_to") not in (None, "")))


# --- reading uploads ------------------------------------------------------------------


def session_folder(root: Path, session: str) -> Path:
    """A folder for one browser session's uploads under ``root`` (created); folders of sessions idle
    for a day are removed on the way."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > _UPLOAD_MAX_AGE_S:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / re.sub(r"[^A-Za-z0-9_-]", "_", session)
    folder.mkdir(exist_ok=True)
    return folder


def save_upload(folder: Path, name: str, data: bytes) -> Path:
    """Write an uploaded file into ``folder`` under its own base name (no directory parts); the path."""
    base = Path(name.replace("\\", "/")).name.strip() or "upload"
    if base in (".", ".."):
        base = "upload"
    path = folder / base
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def sheet_names(path: Path) -> list[str]:
    """The sheets of a workbook, in order; SourceError when it is not a readable workbook."""
    import fastexcel

    try:
        return list(fastexcel.read_excel(path).sheet_names)
    except Exception as exc:  # fastexcel raises its own types for damaged or non-Excel files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path.name} is not a readable workbook: {reason}") from None


def likeliest_sheet(path: Path) -> str | None:
    """The sheet holding the data: the one with the most cells in its first 50 rows (a note sheet
    often comes first). None when the workbook has no sheet."""
    import fastexcel

    names = sheet_names(path)
    if len(names) <= 1:
        return names[0] if names else None
    reader = fastexcel.read_excel(path)

    def cells(name: str) -> int:
        try:
            sheet = reader.load_sheet(name, n_rows=50)
        except Exception:  # an unreadable sheet is just not the data sheet
            return 0
        return int(sheet.width) * int(sheet.height)

    return max(names, key=lambda n: (cells(n), -names.index(n)))


def draft(path: Path, table: str | None, options: ReadOptions) -> Suggestion:
    """``suggest_mapping``, and when it fails on the file's content (a Polars error, not a reading
    problem) a plainer draft: source columns matched to canonical columns by exact name only, with a note.
    SourceError when the file cannot be read."""
    try:
        return suggest_mapping(path, table, options)
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    source = read_source(path, options)
    name = table or choose_table(source.frame.columns)
    by_key = {re.sub(r"[\s_\-./]+", "", c.lower()): c for c in source.frame.columns}
    columns = tuple((c, ColumnSpec(source=by_key[c.replace("_", "")])) for c in schema.data_columns(name)
                    if c.replace("_", "") in by_key)
    block = ImportBlock(table=name, file=path, read=ReadOptions(
        format=source.format, sheet=options.sheet, encoding=source.encoding or "auto",
        delimiter=source.delimiter or "auto", header=source.header, na=options.na), columns=columns)
    note = (f"the automatic suggestion failed on this file ({reason}): only columns named exactly like a column of "
            f"{name} are matched")
    return Suggestion(ImportMapping((block,), path.parent), source, name, (note,))


# --- what the page shows ------------------------------------------------------------------


def preview_table(plan: ImportPlan, rows: int = PREVIEW_ROWS) -> pl.DataFrame:
    """The first ``rows`` mapped rows of the plan's first block: ``line`` (the file's line), the canonical
    columns as they would be written, and ``problems`` ("column: rule; ...", "" when the row is fine)."""
    if not plan.blocks:
        return pl.DataFrame()
    block = plan.blocks[0]
    head = block.rows.head(rows)
    lines = block.problems.filter(pl.col("line").is_in(head["_line"].implode()))
    reasons = lines.group_by("line").agg(
        (pl.col("column") + ": " + pl.col("rule")).unique(maintain_order=True).str.join("; ").alias("problems"))
    return (head.join(reasons, left_on="_line", right_on="line", how="left", maintain_order="left")
            .rename({"_line": "line"}).with_columns(pl.col("problems").fill_null("")))


def problem_rows(problems: list[Problem]) -> pl.DataFrame:
    """Problems as a table: file, row (the file's line; empty for the whole file), column, value, rule."""
    return pl.DataFrame({
        "file": [p.source for p in problems],
        "row": [p.row or None for p in problems],
        "column": [p.column for p in problems],
        "value": [p.value for p in problems],
        "rule": [p.rule for p in problems],
    }, schema={"file": pl.String, "row": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String})


def problems_table(plan: ImportPlan, limit: int | None = PROBLEMS_SHOWN) -> pl.DataFrame:
    """The plan's first ``limit`` problems in block and row order (``problem_rows``)."""
    return problem_rows(plan.problems(limit))


def rules_table(plan: ImportPlan) -> pl.DataFrame:
    """Problems counted by table and rule, most frequent first."""
    found = plan.problems_by_rule()
    return pl.DataFrame({"table": [t for t, _, _ in found], "rule": [r for _, r, _ in found],
                         "problems": [n for _, _, n in found]},
                        schema={"table": pl.String, "rule": pl.String, "problems": pl.Int64})


def counts_table(plan: ImportPlan, quarantine: bool) -> pl.DataFrame:
    """Per block: the table, the file, the rows it would write, the rows with a problem, derived rows skipped."""
    return pl.DataFrame({
        "table": [p.block.table for p in plan.blocks],
        "file": [p.origin for p in plan.blocks],
        "rows": [(p.good_rows() if quarantine else p.rows).height for p in plan.blocks],
        "rows_with_problems": [p.bad_lines().len() for p in plan.blocks],
        "skipped": [p.skipped for p in plan.blocks],
    }, schema={"table": pl.String, "file": pl.String, "rows": pl.Int64, "rows_with_problems": pl.Int64,
               "skipped": pl.Int64})


HISTORY_LABELS: dict[str, str] = {
    "id": "Import", "at": "When", "tables": "Tables", "files": "Files", "rows": "Rows", "rejected": "Rejected",
    "actor": "By", "status": "Status", "undone_at": "Undone",
}
"""``import_history`` columns and the labels the Data page shows them under."""


def history_table(history: pl.DataFrame) -> pl.DataFrame:
    """The import history with readable column names (``HISTORY_LABELS``); empty when there is none."""
    if history.is_empty():
        return pl.DataFrame(schema={label: pl.String for label in HISTORY_LABELS.values()})
    return history.select([pl.col(c).alias(label) for c, label in HISTORY_LABELS.items()]).with_columns(
        pl.col("By").fill_null(""))


def undoable(history: pl.DataFrame) -> list[int]:
    """Ids of the imports whose rows are still in the store (newest first)."""
    if history.is_empty():
        return []
    kept = history.filter(pl.col("undone_at").is_null() & pl.col("status").is_in(["loaded", "partial"]))
    return [int(i) for i in kept["id"].to_list()]


def describe_import(history: pl.DataFrame, batch: int) -> str:
    """One line naming an import: 'Import 3 · 2026-12-05 18:02 · opportunities · 5 rows'."""
    row = history.filter(pl.col("id") == batch).row(0, named=True)
    return f"Import {batch} · {row['at']:%Y-%m-%d %H:%M} · {row['tables']} · {row['rows']:,} rows"
