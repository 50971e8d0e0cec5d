"""CSV import into one canonical table: validate every row, then load all or nothing.

A file with any bad row is rejected whole (each problem names the row number
as a spreadsheet shows it, the column, the value and the rule), unless a
quarantine file is given: then the valid rows load and the bad ones are
written there with their reasons. Loading happens in one transaction that also
records the batch and bumps the data version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from crm import schema
from crm.store import Store

_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("pipeline_stages", "win_probability"): (0.0, 1.0),
}
MAX_REPORTED = 20


class ImportRejected(Exception):
    """The file was not loaded; ``problems`` says why, row by row."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One reason a row cannot load. ``row`` is the file's line number (header = 1)."""

    row: int
    column: str
    value: str | None
    rule: str

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else repr(self.value)
        return f"row {self.row}, column {self.column}, value {shown}: {self.rule}"


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    table: str
    loaded: int
    quarantined: int
    data_version: int


def read_source(path: Path, mapping: dict[str, str] | None = None) -> pl.DataFrame:
    """Read a CSV as text columns (empty -> null), headers trimmed and renamed by ``mapping``."""
    if not path.is_file():
        raise ImportRejected(f"no such file: {path}")
    if path.suffix.lower() not in (".csv", ".txt"):
        raise ImportRejected(f"{path.name}: only CSV files can be imported (got {path.suffix or 'no extension'})")
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise ImportRejected(f"{path.name} is not a readable CSV file: {str(exc).splitlines()[0]}") from None
    frame = frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})
    if mapping:
        frame = frame.rename({src: dst for src, dst in mapping.items() if src in frame.columns})
    return frame.with_columns(
        pl.col(c).str.strip_chars().replace("", None) for c in frame.columns
    )


def load_mapping(path: Path) -> dict[str, str]:
    """A column mapping file: JSON ``{"columns": {"Source name": "canonical_name"}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        columns = data["columns"]
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise ValueError("columns must map names to names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImportRejected(f"cannot use mapping file {path}: {exc}") from None
    return {str(k): v for k, v in columns.items()}


def _parse(column: sa.Column, raw: pl.Expr) -> pl.Expr:
    kind = schema.polars_dtype(column)
    if isinstance(kind, pl.Datetime):
        return pl.coalesce([raw.str.to_datetime(f, time_unit="us", strict=False) for f in _DATETIME_FORMATS])
    if isinstance(kind, pl.Date):
        return raw.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    if kind == pl.Int64:
        return raw.cast(pl.Int64, strict=False)
    if kind == pl.Float64:
        return raw.str.replace_all(",", "").cast(pl.Float64, strict=False)
    return raw


def _rule_text(column: sa.Column) -> str:
    kind = schema.polars_dtype(column)
    if isinstance(kind, pl.Datetime):
        return "not a timestamp (use YYYY-MM-DD HH:MM:SS)"
    if isinstance(kind, pl.Date):
        return "not a date (use YYYY-MM-DD)"
    if kind == pl.Int64:
        return "not a whole number"
    return "not a number"


def validate(name: str, source: pl.DataFrame, existing_keys: set[str] | None = None) -> tuple[pl.DataFrame, list[Problem]]:
    """Parse ``source`` (text columns) into the table's dtypes; return the frame and its problems.

    Problems are whole-file (a missing required column: row 0) or per row.
    """
    table = schema.table(name)
    known = {c.name for c in table.columns}
    unknown = [c for c in source.columns if c not in known]
    problems: list[Problem] = []
    for column in unknown:
        problems.append(Problem(1, column, None, f"unknown column; {name} has: {', '.join(sorted(known))}"))
    required = [c.name for c in table.columns if not c.nullable and c.name in known]
    for column in required:
        if column not in source.columns:
            problems.append(Problem(1, column, None, "required column is missing"))
    if problems:
        return source.head(0), problems

    cols = [c for c in table.columns if c.name in source.columns]
    parsed = source.select([_parse(c, pl.col(c.name)).alias(c.name) for c in cols])
    rows = pl.Series("_row", range(2, source.height + 2))
    rules: list[tuple[str, pl.Series, str]] = []
    for c in cols:
        raw, value = source[c.name], parsed[c.name]
        if not c.nullable:
            rules.append((c.name, raw.is_null(), "required value is empty"))
        if schema.polars_dtype(c) != pl.String:
            rules.append((c.name, raw.is_not_null() & value.is_null(), _rule_text(c)))
    for enum in schema.ENUMS.get(name, ()):
        if enum.column in parsed.columns:
            value = parsed[enum.column]
            rules.append((enum.column, value.is_not_null() & ~value.is_in(list(enum.values)),
                          f"must be one of {', '.join(enum.values)}"))
    for (table_name, column), (low, high) in _RANGES.items():
        if table_name == name and column in parsed.columns:
            value = parsed[column]
            rules.append((column, value.is_not_null() & ~value.is_between(low, high), f"must be within {low}..{high}"))
    if name == "survey_responses" and {"kind", "score"} <= set(parsed.columns):
        kind, score = parsed["kind"], parsed["score"]
        bad = ((kind == "nps") & ~score.is_between(0, 10)) | ((kind == "csat") & ~score.is_between(1, 5))
        rules.append(("score", bad.fill_null(False), "NPS scores are 0–10, CSAT scores 1–5"))
    keys = [c.name for c in table.primary_key.columns if c.name in parsed.columns]
    if len(keys) == 1:
        key = parsed[keys[0]]
        rules.append((keys[0], key.is_not_null() & key.is_duplicated(), "duplicate key within the file"))
        if existing_keys:
            rules.append((keys[0], key.is_in(list(existing_keys)), "key already exists in the store"))
    for column, mask, rule in rules:
        bad_rows = rows.filter(mask.fill_null(False))
        values = source[column].filter(mask.fill_null(False))
        problems.extend(Problem(int(r), column, v, rule) for r, v in zip(bad_rows, values, strict=True))
    problems.sort(key=lambda p: (p.row, p.column))
    return parsed, problems


def import_file(
    store: Store,
    name: str,
    path: Path,
    mapping: dict[str, str] | None = None,
    quarantine: Path | None = None,
) -> ImportResult:
    """Validate and load ``path`` into table ``name`` in one transaction.

    Raises ImportRejected (nothing written) when the file or any row is bad and
    no quarantine file is given. ``pipeline_stages`` is configuration: an
    import replaces the whole stage table.
    """
    if name not in schema.BUSINESS_TABLES:
        raise ImportRejected(f"cannot import into {name!r}; tables: {', '.join(schema.BUSINESS_TABLES)}")
    source = read_source(path, mapping)
    if source.height == 0:
        raise ImportRejected(f"{path.name} has a header but no rows")
    store.ensure_schema()
    table = schema.table(name)
    existing: set[str] = set()
    keys = list(table.primary_key.columns)
    if name != "pipeline_stages" and len(keys) == 1 and keys[0].name in source.columns:
        existing = set(store.read_table(name, [keys[0].name]).frame[keys[0].name].to_list())
    parsed, problems = validate(name, source, existing)
    whole_file = [p for p in problems if p.row == 1]
    if whole_file or (problems and quarantine is None):
        shown = "\n".join(f"  {p}" for p in problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise ImportRejected(
            f"{path.name} was not imported into {name}: {len(problems)} problem(s); nothing was written.\n{shown}{more}",
            problems,
        )
    bad_rows = sorted({p.row for p in problems})
    good = parsed.with_row_index("_row", offset=2).filter(~pl.col("_row").is_in(bad_rows)).drop("_row")
    if quarantine is not None and bad_rows:
        reasons = pl.DataFrame(
            {"_row": [p.row for p in problems], "_problem": [f"{p.column}: {p.rule}" for p in problems]}
        ).group_by("_row").agg(pl.col("_problem").str.join("; "))
        quarantined = source.with_row_index("_row", offset=2).join(reasons, on="_row", how="inner").sort("_row")
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        quarantined.write_csv(quarantine)
    with store.transaction() as conn:
        if name == "pipeline_stages":
            conn.execute(table.delete())
        store.insert_frame(conn, name, good)
        conn.execute(schema.import_batches.insert().values(
            at=datetime.now().replace(microsecond=0), table_name=name, source=str(path)[:400],
            rows=good.height, status="loaded" if not bad_rows else "partial",
        ))
        version = store.bump_version(conn)
    return ImportResult(name, good.height, len(bad_rows), version)
