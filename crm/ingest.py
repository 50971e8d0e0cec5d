"""Importing source files into canonical tables: map, validate, then load all or nothing.

A run takes a mapping (``crm.mapping``): blocks, each turning one source file
into rows of one table. Every block is read, mapped and validated first (in
Polars, no Python loop per row); only then, and only when nothing is wrong,
are all blocks written in one transaction that also records the import and
bumps the data version. With a quarantine folder the valid rows load and the
bad ones are written there with their reasons. Each written row carries its
import's id, so an import can be undone in one transaction; rows an import
replaced are kept beside it and put back by the undo.

``import_file`` keeps the older one-table form (``import TABLE FILE``): the
file's columns are canonical names, and any other column rejects the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import quality, schema
from crm.auth import audit
from crm.mapping import ROW_NUMBER, Agg, ColumnSpec, ImportBlock, ImportMapping, Mode, match_key
from crm.roles import require
from crm.sources import ReadOptions, Source, SourceError, read_source
from crm.store import Store

MAX_REPORTED = 20
WRITE_SLICE = 100_000
_ISO_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d",
)
_ISO_OFFSET_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z", "%Y-%m-%dT%H:%M%#z")
_PROBLEM_SCHEMA = {"line": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String}
_SUPERSEDED_PART = 50_000

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, text: str) -> None:
    """The default progress sink: says nothing."""


class ImportRejected(Exception):
    """Nothing was written; ``problems`` says why, row by row."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One reason a row cannot load. ``row`` is the file's line (header = 1); 0 means the whole file."""

    row: int
    column: str
    value: str | None
    rule: str
    source: str = ""

    def __str__(self) -> str:
        origin = f"{self.source}: " if self.source else ""
        if self.row == 0:
            return f"{origin}column {self.column}: {self.rule}"
        if self.value is None:
            shown = "(empty)"
        elif len(self.value) > 80:  # a 1 MB cell: its start and its length
            shown = f"{self.value[:60]!r}… ({len(self.value):,} characters)"
        else:
            shown = repr(self.value)
        return f"{origin}row {self.row}, column {self.column}, value {shown}: {self.rule}"


@dataclass(frozen=True)
class BlockPlan:
    """One block read, mapped and validated: the rows it would write and what is wrong."""

    index: int
    block: ImportBlock
    source: Source | None
    rows: pl.DataFrame
    """Typed canonical columns plus ``_line`` (the source line a row came from)."""
    problems: pl.DataFrame
    """line, column, value, rule; line 0 for a problem with the whole file."""
    skipped: int = 0
    """Derived rows left out because a required cell was missing (``[[import.rows]]``)."""
    columns: tuple[str, ...] = ()
    """The canonical columns the block fills."""
    findings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_PROBLEM_SCHEMA))
    """line, column, value, rule of values kept as given but not valid (email, phone: crm.quality)."""

    @property
    def origin(self) -> str:
        """The source file's name (also when it could not be read), or 'literal rows'."""
        if self.source is not None:
            return self.source.path.name
        return self.block.file.name if self.block.file is not None else "literal rows"

    def file_problems(self) -> bool:
        """True when something is wrong with the whole file (no row can load)."""
        return bool(self.problems.height) and bool((self.problems["line"] == 0).any())

    def bad_lines(self) -> pl.Series:
        """The source lines with at least one problem."""
        return self.problems.filter(pl.col("line") > 0)["line"].unique()

    def good_rows(self) -> pl.DataFrame:
        """The rows that would load when the bad lines are quarantined."""
        if self.problems.height == 0:
            return self.rows
        return self.rows.filter(~pl.col("_line").is_in(self.bad_lines().implode()))


@dataclass(frozen=True)
class ImportPlan:
    """What an import would do: every block validated, nothing written yet."""

    mapping: ImportMapping
    blocks: tuple[BlockPlan, ...]
    warnings: tuple[str, ...] = ()

    def problems(self, limit: int | None = MAX_REPORTED) -> list[Problem]:
        """The first ``limit`` problems in block and row order (all with ``None``)."""
        out: list[Problem] = []
        for plan in self.blocks:
            frame = plan.problems.sort("line", "column")
            if limit is not None:
                frame = frame.head(limit - len(out))
            out.extend(Problem(int(r["line"]), r["column"], r["value"], r["rule"], plan.origin)
                       for r in frame.iter_rows(named=True))
            if limit is not None and len(out) >= limit:
                break
        return out

    def problem_count(self) -> int:
        """How many problems in all."""
        return sum(p.problems.height for p in self.blocks)

    def problems_by_rule(self) -> list[tuple[str, str, int]]:
        """(table, rule, rows) counts, most frequent first."""
        frames = [p.problems.with_columns(pl.lit(p.block.table).alias("table")) for p in self.blocks if p.problems.height]
        if not frames:
            return []
        counts = pl.concat(frames).group_by("table", "rule").agg(pl.len().alias("n")).sort("n", "table", descending=[True, False])
        return [(r[0], r[1], int(r[2])) for r in counts.iter_rows()]

    def counts(self, quarantine: bool) -> dict[str, int]:
        """Rows each table would receive (with quarantine: the good rows; without: all or none)."""
        out: dict[str, int] = {}
        for plan in self.blocks:
            rows = plan.good_rows() if quarantine else plan.rows
            out[plan.block.table] = out.get(plan.block.table, 0) + rows.height
        return out


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    table: str
    """The tables written, comma-separated in order."""
    loaded: int
    quarantined: int
    data_version: int
    batch: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


# --- mapping a block ------------------------------------------------------------


def _norm(expr: pl.Expr) -> pl.Expr:
    """Case- and space-insensitive form of a text (value maps, conditions, vocabularies)."""
    return expr.str.to_lowercase().str.replace_all(r"\s+", "")




def _missing(text: str | None) -> pl.Expr:
    return pl.lit(text if text else None, dtype=pl.String)


def _vocabulary(table: str, column: str) -> tuple[str, ...]:
    for enum in schema.ENUMS.get(table, ()):
        if enum.column == column:
            return enum.values
    return ()


def _text_expr(table: str, name: str, spec: ColumnSpec, lookups: dict[tuple[Path, str, str], pl.DataFrame],
               vocabulary: bool = True) -> pl.Expr:
    """The mapped text of one canonical column (still text: parsing comes after); ``vocabulary=False``
    leaves out the spelling of a closed set's values (``_in_vocabulary``, applied to the result)."""
    if spec.value is not None:
        expr = _missing(spec.value)
    elif spec.source == ROW_NUMBER:
        expr = pl.col("_row").cast(pl.String)
    else:
        assert spec.source is not None
        expr = pl.col(spec.source)
    if spec.lookup is not None:
        table_ = lookups[(spec.lookup.file, spec.lookup.key, spec.lookup.value)]
        expr = expr.replace_strict(table_["key"], table_["value"], default=None, return_dtype=pl.String)
    if spec.values:
        keys = [match_key(k) for k, _ in spec.values]
        values = [v if v else None for _, v in spec.values]
        fallback = expr if spec.otherwise is None else _missing(spec.otherwise)
        expr = pl.when(expr.is_null()).then(None).otherwise(
            _norm(expr).replace_strict(keys, values, default=fallback, return_dtype=pl.String))
    if spec.default is not None:
        expr = expr.fill_null(_missing(spec.default))
    return (_in_vocabulary(table, name, expr) if vocabulary else expr).alias(name)


def _in_vocabulary(table: str, name: str, expr: pl.Expr) -> pl.Expr:
    """A closed set's values spelled as the schema spells them ("Won " -> "won"); other texts unchanged."""
    vocabulary = _vocabulary(table, name)
    if not vocabulary:
        return expr
    return _norm(expr).replace_strict([match_key(v) for v in vocabulary], list(vocabulary), default=expr,
                                      return_dtype=pl.String)


def _number(text: pl.Expr, fmt: str | None) -> pl.Expr:
    """Text to a finite float. ``format`` is a sample like "1,234.56", "1.234,56" or "1 234,56": the mark
    before the last digits is the decimal mark unless three digits follow it, any other mark groups
    thousands (only in groups of three); without a format, a plain decimal with a point."""
    text = text.str.strip_chars()
    if fmt:
        marks = [ch for ch in fmt if not ch.isdigit() and ch not in "+-"]
        tail = fmt.rsplit(marks[-1], 1)[-1] if marks else ""
        decimal = marks[-1] if marks and tail.isdigit() and len(tail) != 3 else None
        thousands = next((m for m in marks if m != decimal), None)
        point = re.escape(decimal or ".")
        if thousands is not None:
            grouped = rf"^[+-]?(\d{{1,3}}({re.escape(thousands)}\d{{3}})+|\d+)({point}\d+)?$"
            text = pl.when(text.str.contains(grouped)).then(text.str.replace_all(thousands, "", literal=True))
        if decimal is not None and decimal != ".":
            text = text.str.replace_all(decimal, ".", literal=True)
    value = text.cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def _literals(fmt: str) -> frozenset[str]:
    """The characters a text must hold to match a strptime pattern: those outside its % directives
    (whitespace left out, as a space in a pattern may match none)."""
    out: set[str] = set()
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":  # a directive: flags or width (".", "#", ":", "-", digits), then a letter, % or +
            i += 1
            while i < len(fmt) and not (fmt[i].isalpha() or fmt[i] in "%+"):
                i += 1
        elif not fmt[i].isspace():
            out.add(fmt[i])
        i += 1
    return frozenset(out)


def _could_match(values: pl.Series) -> Callable[[str], bool]:
    """Whether ``values`` hold each literal character of a pattern somewhere (if not, none of them matches it)."""
    present: dict[str, bool] = {}

    def could(fmt: str) -> bool:
        for ch in sorted(_literals(fmt)):
            if ch not in present:
                present[ch] = bool(values.str.contains(ch, literal=True).any())
            if not present[ch]:
                return False
        return True

    return could


def parse_datetimes(text: pl.Expr, formats: Sequence[str], values: pl.Series | None = None) -> pl.Expr:
    """Text to a naive timestamp: ISO 8601 first (offsets converted to UTC), then ``formats``.

    ``values``, the texts ``text`` holds, let a pattern none of them could match go untried (the "-"
    of the ISO patterns is in no 03/31/2026): the result is the same, and each pattern is a pass.
    """
    patterns = [(f, False) for f in _ISO_FORMATS] + [(f, True) for f in _ISO_OFFSET_FORMATS]
    patterns += [(f, "%z" in f or "%#z" in f or "%:z" in f) for f in formats]
    if values is not None:
        could = _could_match(values)
        patterns = [p for p in patterns if could(p[0])] or patterns[:1]
    attempts = []
    for fmt, offset in patterns:
        parsed = text.str.to_datetime(fmt, time_unit="us", strict=False)
        attempts.append(parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if offset else parsed)
    return pl.coalesce(attempts)


def _parse(column: sa.Column, text: pl.Expr, formats: Sequence[str], fmt: str | None,
           values: pl.Series | None = None) -> pl.Expr:
    kind = schema.polars_dtype(column)
    if isinstance(kind, pl.Datetime):
        return parse_datetimes(text, [fmt] if fmt else formats, values)
    if isinstance(kind, pl.Date):
        return parse_datetimes(text, [fmt] if fmt else formats, values).dt.date()
    if kind == pl.Int64:
        value = _number(text, fmt)
        return pl.when(value == value.round(0)).then(value.cast(pl.Int64, strict=False))
    if kind == pl.Float64:
        return _number(text, fmt)
    return text


def _rule_text(column: sa.Column, formats: Sequence[str]) -> str:
    kind = schema.polars_dtype(column)
    if isinstance(kind, pl.Datetime | pl.Date):
        extra = f" or {', '.join(formats)}" if formats else ""
        what = "timestamp" if isinstance(kind, pl.Datetime) else "date"
        return f"not a {what} (use YYYY-MM-DD HH:MM:SS{extra}; name other formats in date_formats)"
    if kind == pl.Int64:
        return "not a whole number"
    return "not a number"


def _problems(lines: pl.Series, column: str, values: pl.Series, mask: pl.Series, rule: str) -> pl.DataFrame:
    frame = pl.DataFrame([lines.alias("line").cast(pl.Int64), values.cast(pl.String).alias("value")])
    return frame.filter(mask.fill_null(False)).select(
        "line", pl.lit(str(column), dtype=pl.String).alias("column"), "value", pl.lit(str(rule), dtype=pl.String).alias("rule"))


def _file_problem(column: str, rule: str) -> pl.DataFrame:
    return pl.DataFrame({"line": [0], "column": [str(column)], "value": [None], "rule": [str(rule)]}, schema=_PROBLEM_SCHEMA)


def _read_lookups(block: ImportBlock) -> dict[tuple[Path, str, str], pl.DataFrame]:
    out: dict[tuple[Path, str, str], pl.DataFrame] = {}
    for row in block.row_specs():
        for _, spec in row:
            if spec.lookup is None:
                continue
            look = spec.lookup
            frame = read_source(look.file, block.read).frame
            for needed in (look.key, look.value):
                if needed not in frame.columns:
                    raise SourceError(f"lookup file {look.file.name} has no column {needed!r}; "
                                      f"its columns: {', '.join(frame.columns)}")
            out[(look.file, look.key, look.value)] = (
                frame.select(pl.col(look.key).alias("key"), pl.col(look.value).alias("value"))
                .drop_nulls("key").unique("key", keep="first", maintain_order=True))
    return out


def _empty_plan(index: int, block: ImportBlock, source: Source | None, problems: pl.DataFrame) -> BlockPlan:
    return BlockPlan(index, block, source, pl.DataFrame({"_line": []}, schema={"_line": pl.Int64}), problems)


def plan_block(index: int, block: ImportBlock) -> BlockPlan:
    """Read, map and validate one block (no store access: keys already in the store are checked later)."""
    table = schema.table(block.table)
    label = block.file.name if block.file else "literal rows"
    try:
        source = read_source(block.file, block.read) if block.file is not None else None
        lookups = _read_lookups(block)
    except SourceError as exc:
        return _empty_plan(index, block, None, _file_problem("(file)", str(exc)))
    frame = source.frame if source is not None else pl.DataFrame({"_literal": [None]}, schema={"_literal": pl.String})
    if source is not None and frame.height == 0:
        return _empty_plan(index, block, source, _file_problem("(file)", f"{label} has a header but no rows"))

    problems: list[pl.DataFrame] = []
    missing = sorted(block.source_columns() - set(frame.columns))
    for name in missing:
        problems.append(_file_problem(name, f"no such column in {label}; its columns: {', '.join(frame.columns)}"))
    if block.unmapped == "error" and source is not None:
        data_columns = schema.data_columns(block.table)
        for name in sorted(set(frame.columns) - block.source_columns()):
            rule = f"unknown column; {block.table} has: {', '.join(sorted(data_columns))}"
            problems.append(_file_problem(name, rule + ' (map it, or set unmapped = "ignore")'))
    required = [str(c.name) for c in table.columns if not c.nullable]
    for row in block.row_specs():
        given = {name for name, _ in row}
        for name in required:
            if name not in given:
                problems.append(_file_problem(
                    name, "required column is missing (map a source column, or give a value or default)"))
    if problems:
        return _empty_plan(index, block, source, pl.concat(problems).unique(maintain_order=True))

    first_line = source.first_line() if source is not None else 1
    frame = frame.with_row_index("_row", offset=1).with_columns(
        (pl.col("_row").cast(pl.Int64) + (first_line - 1)).alias("_line"), pl.col("_row").cast(pl.Int64))
    grouped = bool(block.group_by)
    derived: list[pl.DataFrame] = []
    skipped = 0
    filled: list[str] = []
    for row in block.row_specs():
        exprs = [pl.col("_line")]
        for name, spec in row:
            exprs.append(_text_expr(block.table, name, spec, lookups, vocabulary=False))
            if grouped and spec.where:
                cond = pl.all_horizontal([_norm(pl.col(k)) == match_key(v) for k, v in spec.where])
                exprs.append(cond.fill_null(False).alias(f"_where_{name}"))
        if grouped:
            exprs += [pl.col(g).alias(f"_group_{i}") for i, g in enumerate(block.group_by)]
        mapped = frame.select(exprs)
        closed = [_in_vocabulary(block.table, name, pl.col(name)).alias(name) for name, _ in row
                  if _vocabulary(block.table, name)]
        if closed:  # a second pass: in the first, the vocabulary would evaluate the mapping twice
            mapped = mapped.with_columns(closed)
        if block.rows:
            needed = [name for name, _ in row if name in required]
            keep = pl.all_horizontal([pl.col(n).is_not_null() for n in needed]) if needed else pl.lit(True)
            kept = mapped.filter(keep)
            skipped += mapped.height - kept.height
            mapped = kept
        for name, _ in row:
            if name not in filled:
                filled.append(name)
        derived.append(mapped)
    text = pl.concat(derived, how="diagonal") if len(derived) > 1 else derived[0]

    specs = dict(spec for row in block.row_specs() for spec in row)
    counted = {name for name, spec in specs.items() if spec.agg == Agg.COUNT}
    parse_cols = [c for c in table.columns if c.name in filled and c.name not in counted]
    typed = text.with_columns(
        _parse(c, pl.col(c.name), block.date_formats, specs[c.name].format, text[c.name]).alias(c.name)
        for c in parse_cols)
    parsing = _parse_problems(text, typed, parse_cols, block.date_formats)
    if grouped:
        typed = _aggregate(typed.filter(~pl.col("_line").is_in(parsing["line"].unique().implode())), block, specs)
    rules = quality.row_problems(block.table, typed, filled).join(parsing, on=["line", "column"], how="anti")  # once per cell
    found = pl.concat([parsing, rules])
    kept = pl.DataFrame(schema=_PROBLEM_SCHEMA)
    if block.table == "customers":  # emails and phones in their normal form; the invalid ones kept as given
        typed, kept = quality.contact_findings(typed)
    return BlockPlan(index, block, source, typed.select(["_line", *filled]), found, skipped, tuple(filled), kept)


def _parse_problems(text: pl.DataFrame, typed: pl.DataFrame, columns: list[sa.Column], formats: Sequence[str]) -> pl.DataFrame:
    out = [pl.DataFrame(schema=_PROBLEM_SCHEMA)]
    lines = text["_line"]
    for c in columns:
        if schema.polars_dtype(c) == pl.String:
            continue
        mask = text[c.name].is_not_null() & typed[c.name].is_null()
        if mask.any():
            out.append(_problems(lines, c.name, text[c.name], mask, _rule_text(c, formats)))
    return pl.concat(out)


def _aggregate(typed: pl.DataFrame, block: ImportBlock, specs: dict[str, ColumnSpec]) -> pl.DataFrame:
    """One row per group of an event log; ``_line`` is the group's first source line."""
    keys = [f"_group_{i}" for i in range(len(block.group_by))]
    exprs = [pl.col("_line").min()]
    for name, spec in specs.items():
        col = pl.col(name)
        if spec.where:
            col = col.filter(pl.col(f"_where_{name}"))
        if spec.agg == Agg.COUNT:
            exprs.append(col.count().cast(pl.Int64).alias(name))
        elif spec.agg == Agg.LAST:
            exprs.append(col.drop_nulls().last().alias(name))
        elif spec.agg == Agg.MIN:
            exprs.append(col.min().alias(name))
        elif spec.agg == Agg.MAX:
            exprs.append(col.max().alias(name))
        else:
            exprs.append(col.drop_nulls().first().alias(name))
    return typed.filter(pl.all_horizontal([pl.col(k).is_not_null() for k in keys])) \
        .group_by(keys, maintain_order=True).agg(exprs).sort("_line")


# --- planning a whole mapping -------------------------------------------------


def _store_keys(store: Store, name: str, keys: pl.Series) -> pl.Series:
    """Which of ``keys`` already exist in the store's table (read once, compared in Polars)."""
    key = schema.primary_key(name)
    if key is None or keys.len() == 0 or not store.has_schema():
        return pl.Series(key or "key", [], dtype=pl.String)
    table = schema.table(name)
    with store.connect() as conn:  # an empty table (a first import) has no key to clash with: nothing to read
        if conn.execute(sa.select(table.c[key]).limit(1)).first() is None:
            return keys.head(0)
    existing = store.read_table(name, [key]).frame[key]
    return keys.filter(keys.is_in(existing.implode()))


def plan_import(store: Store, mapping: ImportMapping, progress: Progress = _no_progress) -> ImportPlan:
    """Read, map and validate every block; check keys and references against the store and the other
    blocks. Writes nothing."""
    plans: list[BlockPlan] = []
    seen: dict[str, pl.Series] = {}
    total = len(mapping.blocks)
    for i, block in enumerate(mapping.blocks, start=1):
        progress((i - 1) / max(total, 1) * 0.5, f"reading and checking {block.label(i)}")
        plan = plan_block(i, block)
        key = schema.primary_key(block.table)
        if key is not None and key in plan.rows.columns and plan.rows.height:
            keys = plan.rows[key]
            extra: list[pl.DataFrame] = []
            if block.mode == Mode.INSERT:
                clash = _store_keys(store, block.table, keys)
                if clash.len():
                    mask = keys.is_in(clash.implode())
                    rule = "key already exists in the store (use mode = \"upsert\")"
                    extra.append(_problems(plan.rows["_line"], key, keys, mask, rule))
            if block.table in seen:
                mask = keys.is_in(seen[block.table].implode())
                extra.append(_problems(plan.rows["_line"], key, keys, mask, "key already written by an earlier block"))
            seen[block.table] = pl.concat([seen.get(block.table, keys.head(0)), keys])
            if extra:
                plan = replace(plan, problems=pl.concat([plan.problems, *extra]))
        plans.append(plan)
    plans = _check_references(store, plans)
    draft = ImportPlan(mapping, tuple(plans))
    return ImportPlan(mapping, tuple(plans), tuple(warnings_for(store, draft)))


def _check_references(store: Store, plans: list[BlockPlan]) -> list[BlockPlan]:
    """A filled id must name a row of its parent table in this import (any block) or in the store. While
    the parent table is empty in both (facts loaded before their customers), there is nothing to check
    against: the ids are kept and ``warnings_for`` says so. Rows an upsert or replace of the parent
    would drop are not looked for."""
    out: list[BlockPlan] = []
    known: dict[str, pl.Series] = {}

    def parent_keys(parent: str, key: str) -> pl.Series:
        if parent not in known:
            ours = [p.rows[key] for p in plans if p.block.table == parent and key in p.rows.columns]
            stored = store.read_table(parent, [key]).frame[key] if store.has_schema() else pl.Series(key, [], pl.String)
            known[parent] = pl.concat([*ours, stored.cast(pl.String)]).drop_nulls().unique()
        return known[parent]

    for plan in plans:
        extra: list[pl.DataFrame] = []
        for table, column, parent, key in quality.REFERENCES:
            if table != plan.block.table or column not in plan.columns or plan.rows.height == 0:
                continue
            values = plan.rows[column]
            if values.null_count() == values.len():
                continue
            keys = parent_keys(parent, key)
            if keys.len() == 0:
                continue
            missing = values.is_not_null() & ~values.is_in(keys.implode())
            if missing.any():
                extra.append(_problems(plan.rows["_line"], column, values, missing, quality.reference_rule(parent)))
        out.append(replace(plan, problems=pl.concat([plan.problems, *extra])) if extra else plan)
    return out


def _one_day(values: pl.Series) -> date | None:
    """The day all the (non-empty) timestamps are on, if it is one day (from the first and the last: no pass per day)."""
    first, last = values.min(), values.max()
    if not isinstance(first, datetime) or not isinstance(last, datetime) or first.date() != last.date():
        return None
    return first.date()


def warnings_for(store: Store, plan: ImportPlan) -> list[str]:
    """Plain-words warnings about rows that would load but make the numbers empty or misleading."""
    out: list[str] = []
    stage_tables = [p for p in plan.blocks if p.block.table == "pipeline_stages"]
    known_stages: set[str] = set()
    if not any(p.block.mode == Mode.REPLACE for p in stage_tables) and store.has_schema():
        # a few rows: SQLAlchemy reads them at once, where the first ADBC read of a process loads the driver (~0.4 s)
        stages = store.read_table("pipeline_stages", ["stage"], path="sqlalchemy").frame["stage"]
        known_stages = set(stages.drop_nulls().to_list())
    for p in stage_tables:
        if "stage" in p.rows.columns:
            known_stages |= set(p.good_rows()["stage"].drop_nulls().to_list())
    empty_parents: dict[str, bool] = {}

    def parent_empty(parent: str) -> bool:
        if parent not in empty_parents:
            ours = any(q.rows.height for q in plan.blocks if q.block.table == parent)
            empty_parents[parent] = not ours and (not store.has_schema() or store.row_count(parent) == 0)
        return empty_parents[parent]

    for p in plan.blocks:
        rows, table = p.good_rows(), p.block.table
        for column, what in (("email", "not valid email addresses"), ("phone", "not valid phone numbers for their country")):
            n = p.findings.filter(pl.col("column") == column).height
            if n:
                lines = ", ".join(str(v) for v in p.findings.filter(pl.col("column") == column)["line"].head(5).to_list())
                out.append(f"{n:,} {column} value(s) in {p.origin} are {what} "
                           f"(lines {lines}{' …' if n > 5 else ''}): kept as given; the Data quality page lists them.")
        for child, column, parent, _ in quality.REFERENCES:
            if child == table and column in p.columns and rows.height and rows[column].null_count() < rows.height \
                    and parent_empty(parent):
                out.append(f"{parent} is empty (in the store and this import): the {column} values of {table} from "
                           f"{p.origin} cannot be checked yet. Import {parent} too, to check them and to see their names.")
        if rows.height == 0:
            if p.skipped and not p.file_problems():
                out.append(f"{table} from {p.origin}: every derived row was skipped (a required cell was empty in each).")
            continue
        if table == "opportunities" and ("status" not in rows.columns or rows["status"].null_count() == rows.height):
            out.append(f"every deal's status is empty in {p.origin}: revenue won, win rate and the open pipeline will read "
                       "0 or —. Map a column to status (open/won/lost) or give a value.")
        if table in ("opportunities", "opportunity_stages") and "stage" in rows.columns:
            unknown = sorted(set(rows["stage"].drop_nulls().unique().to_list()) - known_stages)
            if unknown:
                shown = ", ".join(unknown[:6]) + (" …" if len(unknown) > 6 else "")
                out.append(f"stages {shown} of {table} are not in the pipeline stage table: the funnel cannot order them "
                           "(add a pipeline_stages block with their position and kind).")
        for name in p.columns:
            if name in rows.columns and rows[name].null_count() == rows.height:
                out.append(f"{table}.{name} is empty in every row of {p.origin}.")
            elif isinstance(rows.schema.get(name), pl.Datetime) and rows.height > 1 and (day := _one_day(rows[name])):
                out.append(f"every {table}.{name} in {p.origin} is on {day}: check the column and its date format.")
        scale = p.problems.filter(pl.col("rule") == quality.SCALE_RULE).height
        if scale:
            out.append(f"{scale:,} survey score(s) in {p.origin} are outside their scale (NPS 0–10, CSAT 1–5): "
                       "is the kind right?")
    return out


# --- writing ------------------------------------------------------------------


def _snapshot(conn: Connection, name: str, condition: sa.ColumnElement[bool] | None, batch: int) -> pl.DataFrame:
    """Rows about to be replaced (not this import's own), as they are, to restore on undo."""
    table = schema.table(name)
    query = sa.select(table).where(sa.or_(table.c[schema.IMPORT_BATCH].is_(None), table.c[schema.IMPORT_BATCH] != batch))
    if condition is not None:
        query = query.where(condition)
    frame = pl.read_database(query, conn, schema_overrides=schema.polars_schema(name), infer_schema_length=None)
    return frame


def _keep_superseded(conn: Connection, batch: int, name: str, frame: pl.DataFrame) -> None:
    for part, chunk in enumerate(frame.iter_slices(_SUPERSEDED_PART)):
        conn.execute(schema.import_superseded.insert().values(
            batch_id=batch, table_name=name, part=part, rows=chunk.write_ndjson()))


def _upsert_key(name: str) -> str:
    key = schema.primary_key(name) or schema.PARENT_KEYS.get(name)
    assert key is not None, f"{name} has a key to upsert on"
    return key


def _write_block(conn: Connection, store: Store, plan: BlockPlan, rows: pl.DataFrame, batch: int,
                 progress: Progress, done: int, total: int) -> None:
    name = plan.block.table
    table = schema.table(name)
    if plan.block.mode == Mode.REPLACE:
        _keep_superseded(conn, batch, name, _snapshot(conn, name, None, batch))
        conn.execute(table.delete().where(sa.or_(table.c[schema.IMPORT_BATCH].is_(None), table.c[schema.IMPORT_BATCH] != batch)))
    elif plan.block.mode == Mode.UPSERT:
        key = _upsert_key(name)
        keys = rows[key].drop_nulls().unique().to_list()
        for start in range(0, len(keys), 10_000):
            condition = table.c[key].in_(keys[start:start + 10_000])
            _keep_superseded(conn, batch, name, _snapshot(conn, name, condition, batch))
            conn.execute(table.delete().where(condition))
    frame = rows.drop("_line").with_columns(pl.lit(batch, dtype=pl.Int64).alias(schema.IMPORT_BATCH))
    with store.bulk_insert(conn, name, frame.height):
        for offset in range(0, frame.height, WRITE_SLICE):
            store.insert_frame(conn, name, frame.slice(offset, WRITE_SLICE))
            progress(0.5 + 0.5 * (done + min(offset + WRITE_SLICE, frame.height)) / max(total, 1),
                     f"writing {name}: {min(offset + WRITE_SLICE, frame.height):,} of {frame.height:,} rows")


def _quarantine(plan: ImportPlan, folder: Path) -> list[Path]:
    """Bad source rows per table, with their reasons, under ``folder``; the files written."""
    per_table: dict[str, list[pl.DataFrame]] = {}
    for p in plan.blocks:
        lines = p.problems.filter(pl.col("line") > 0)
        if lines.height == 0:
            continue
        reasons = lines.group_by("line").agg(
            (pl.col("column") + ": " + pl.col("rule")).unique(maintain_order=True).str.join("; ").alias("_problem"))
        if p.source is not None:
            rows = p.source.frame.with_row_index("_line", offset=p.source.first_line())
            rows = rows.with_columns(pl.col("_line").cast(pl.Int64))
            bad = rows.join(reasons, left_on="_line", right_on="line", how="inner").sort("_line")
            bad = bad.with_columns(pl.lit(p.origin).alias("_file"))
        else:
            bad = reasons.rename({"line": "_line"}).with_columns(pl.lit(p.origin).alias("_file"))
        per_table.setdefault(p.block.table, []).append(bad)
    written = []
    if per_table:
        folder.mkdir(parents=True, exist_ok=True)
    for name, frames in per_table.items():
        path = folder / f"{name}.csv"
        pl.concat(frames, how="diagonal_relaxed").write_csv(path)
        written.append(path)
    return written


def run_import(
    store: Store,
    mapping: ImportMapping,
    *,
    quarantine: Path | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    mapping_text: str | None = None,
    progress: Progress = _no_progress,
    plan: ImportPlan | None = None,
    role: str | None = None,
) -> tuple[ImportPlan, ImportResult | None]:
    """Plan the mapping, then (unless ``dry_run``) write every block in one transaction.

    Raises ImportRejected, with nothing written, when a file cannot be used,
    when any row is bad and there is no quarantine folder, or when no valid
    row is left. Returns the plan and what was written (None for a dry run).
    An import is audited as ``import.loaded`` (by ``actor``) in its transaction; with ``role``,
    NotPermitted (nothing written) unless that role may import (crm.roles).
    """
    if role is not None and not dry_run:
        require(role, "import")
    plan = plan or plan_import(store, mapping, progress)
    file_level = [p for p in plan.blocks if p.file_problems()]
    problems = plan.problem_count()
    if dry_run:
        return plan, None
    if file_level or (problems and quarantine is None):
        raise ImportRejected(_rejection(plan), plan.problems(None if problems <= MAX_REPORTED else MAX_REPORTED))
    good = {p.index: p.good_rows() for p in plan.blocks}
    emptied = [p for p in plan.blocks if p.rows.height and good[p.index].height == 0]
    if emptied or sum(r.height for r in good.values()) == 0:
        which = ", ".join(f"{p.block.table} from {p.origin}" for p in emptied) or "every block"
        raise ImportRejected(f"no valid rows to import ({which}); nothing was written.\n{_problem_lines(plan)}",
                             plan.problems())
    written_quarantine = _quarantine(plan, quarantine) if quarantine is not None and problems else []
    store.ensure_schema()
    total = sum(r.height for r in good.values())
    per_table: dict[str, int] = {}
    tables = list(dict.fromkeys(p.block.table for p in plan.blocks))
    rejected = sum(p.bad_lines().len() for p in plan.blocks)
    try:
        with store.transaction() as conn:
            inserted = conn.execute(schema.import_batches.insert().values(
                at=datetime.now().replace(microsecond=0), table_name=",".join(tables)[:120],
                source=", ".join(dict.fromkeys(p.origin for p in plan.blocks))[:400], rows=0, status="writing",
                actor=actor, mapping=mapping_text, rejected=rejected,
            )).inserted_primary_key
            assert inserted is not None
            batch = int(inserted[0])
            done = 0
            for p in plan.blocks:
                _write_block(conn, store, p, good[p.index], batch, progress, done, total)
                done += good[p.index].height
                per_table[p.block.table] = per_table.get(p.block.table, 0) + good[p.index].height
            conn.execute(schema.import_batches.update().where(schema.import_batches.c.id == batch).values(
                rows=total, status="partial" if rejected else "loaded", detail=json.dumps(per_table)))
            version = store.bump_version(conn, tables)
            audit(conn, actor, "import.loaded", {
                "import": batch, "tables": per_table, "rows": total, "rejected": rejected,
                "files": list(dict.fromkeys(p.origin for p in plan.blocks)), "data_version": version})
    except _database_errors(store) as exc:
        reason = _database_reason(exc)
        for path in written_quarantine:
            path.unlink(missing_ok=True)
        raise ImportRejected(f"the database refused the import ({reason}); nothing was written") from None
    progress(1.0, f"imported {total:,} rows")
    return plan, ImportResult(",".join(tables), total, rejected, version, batch, per_table, plan.warnings)


def _database_errors(store: Store) -> tuple[type[BaseException], ...]:
    """What a refused write raises: SQLAlchemy's wrapper, or the driver's own error (bulk writes use its cursor)."""
    return sa.exc.DBAPIError, store.engine.dialect.loaded_dbapi.Error


def _database_reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig else exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _problem_lines(plan: ImportPlan) -> str:
    shown = plan.problems()
    lines = "\n".join(f"  {p}" for p in shown)
    more = plan.problem_count() - len(shown)
    return lines + (f"\n  ... and {more:,} more" if more > 0 else "")


def _rejection(plan: ImportPlan) -> str:
    origins = ", ".join(dict.fromkeys(p.origin for p in plan.blocks if p.problems.height))
    tables = ", ".join(dict.fromkeys(p.block.table for p in plan.blocks))
    return (f"{origins} was not imported into {tables}: {plan.problem_count():,} problem(s); nothing was written.\n"
            f"{_problem_lines(plan)}")


# --- history and undo -----------------------------------------------------------


def import_history(store: Store) -> pl.DataFrame:
    """Every import, newest first: id, at, tables, files, rows, rejected, who, status, undone_at."""
    if not store.has_schema():
        return pl.DataFrame()
    store.ensure_schema()
    b = schema.import_batches
    query = sa.select(b.c.id, b.c.at, b.c.table_name.label("tables"), b.c.source.label("files"), b.c.rows, b.c.rejected,
                      b.c.actor, b.c.status, b.c.undone_at, b.c.undone_by).order_by(b.c.id.desc())
    with store.connect() as conn:
        return pl.read_database(query, conn, infer_schema_length=None, schema_overrides={
            "id": pl.Int64, "at": pl.Datetime("us"), "tables": pl.String, "files": pl.String, "rows": pl.Int64,
            "rejected": pl.Int64, "actor": pl.String, "status": pl.String, "undone_at": pl.Datetime("us"),
            "undone_by": pl.String})


def import_mapping_text(store: Store, batch: int) -> str | None:
    """The mapping file an import ran (None for the one-table form)."""
    b = schema.import_batches
    with store.connect() as conn:
        return conn.execute(sa.select(b.c.mapping).where(b.c.id == batch)).scalar()


@dataclass(frozen=True)
class UndoResult:
    """What an undo did."""

    batch: int
    removed: dict[str, int]
    restored: dict[str, int]
    data_version: int


def undo_import(store: Store, batch: int, actor: str | None = None, role: str | None = None) -> UndoResult:
    """Remove an import's rows and put back the rows it replaced, in one transaction; new data version.

    Only the latest import still in force on a table can be undone (a later
    import may have changed the same rows); ImportRejected says which to undo first.
    Audited as ``import.undone`` (by ``actor``) in the same transaction; with ``role``, NotPermitted
    (nothing changed) unless that role may import (crm.roles).
    """
    if role is not None:
        require(role, "import")
    try:
        return _undo(store, batch, actor)
    except _database_errors(store) as exc:
        reason = _database_reason(exc)
        raise ImportRejected(f"import {batch} could not be undone ({reason}); nothing was changed") from None


def _undo(store: Store, batch: int, actor: str | None) -> UndoResult:
    store.ensure_schema()
    b = schema.import_batches
    with store.transaction() as conn:
        row = conn.execute(sa.select(b).where(b.c.id == batch)).mappings().first()
        if row is None:
            raise ImportRejected(f"there is no import {batch}")
        if row["undone_at"] is not None:
            raise ImportRejected(f"import {batch} was already undone on {row['undone_at']:%Y-%m-%d %H:%M}")
        if row["status"] not in ("loaded", "partial"):
            raise ImportRejected(f"import {batch} cannot be undone: its rows are no longer in the store "
                                 f"(status {row['status']})")
        tables = [t for t in (row["table_name"] or "").split(",") if t]
        later = conn.execute(sa.select(b.c.id, b.c.table_name).where(
            b.c.id > batch, b.c.undone_at.is_(None), b.c.status.in_(["loaded", "partial"]))).all()
        blocking = [r.id for r in later if set((r.table_name or "").split(",")) & set(tables)]
        if blocking:
            raise ImportRejected(f"import {', '.join(map(str, blocking))} changed the same tables after import {batch}: "
                                 "undo it first")
        removed: dict[str, int] = {}
        for name in reversed(tables):
            table = schema.table(name)
            removed[name] = conn.execute(table.delete().where(table.c[schema.IMPORT_BATCH] == batch)).rowcount or 0
        s = schema.import_superseded
        restored: dict[str, int] = {}
        parts = conn.execute(sa.select(s.c.table_name, s.c.rows).where(s.c.batch_id == batch).order_by(s.c.id)).all()
        for name, text in parts:
            frame = pl.read_ndjson(text.encode("utf-8"), schema={k: (pl.String if isinstance(v, pl.Datetime | pl.Date) else v)
                                                                 for k, v in schema.polars_schema(name).items()})
            frame = _restore_types(frame, name)
            store.insert_frame(conn, name, frame)
            restored[name] = restored.get(name, 0) + frame.height
        conn.execute(s.delete().where(s.c.batch_id == batch))
        conn.execute(b.update().where(b.c.id == batch).values(undone_at=datetime.now().replace(microsecond=0), undone_by=actor))
        version = store.bump_version(conn, tables)
        audit(conn, actor, "import.undone", {"import": batch, "removed": removed, "restored": restored,
                                            "data_version": version})
    return UndoResult(batch, removed, restored, version)


def _restore_types(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    target = schema.polars_schema(name)
    exprs = []
    for column, dtype in target.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(column).str.to_datetime(time_unit="us", strict=True))
        elif isinstance(dtype, pl.Date):
            exprs.append(pl.col(column).str.to_date(strict=True))
        else:
            exprs.append(pl.col(column))
    return frame.select(exprs)


# --- the one-table form ----------------------------------------------------------


def load_mapping(path: Path) -> dict[str, str]:
    """A column renaming for the one-table form: JSON ``{"columns": {"Source name": "canonical_name"}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        columns = data["columns"]
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise ValueError("columns must map names to names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImportRejected(f"cannot use mapping file {path}: {exc}") from None
    return {str(k): v for k, v in columns.items()}


def table_block(name: str, path: Path, renames: dict[str, str] | None = None) -> ImportBlock:
    """The mapping block of ``import TABLE FILE``: each column (after ``renames``) by its canonical name.

    Other columns reject the file; ``pipeline_stages`` (configuration) replaces the stage table.
    """
    try:
        columns = read_source(path, ReadOptions()).frame.columns
    except SourceError as exc:
        raise ImportRejected(str(exc)) from None
    renames = renames or {}
    known = set(schema.data_columns(name))
    specs = tuple((renames.get(c, c), ColumnSpec(source=c)) for c in columns if renames.get(c, c) in known)
    mode = Mode.REPLACE if name == "pipeline_stages" else Mode.INSERT
    return ImportBlock(table=name, file=path, unmapped="error", mode=mode, columns=specs)


def _is_number(column: str, name: str) -> bool:
    return schema.polars_dtype(schema.table(name).c[column]) in (pl.Float64, pl.Int64)


def import_file(
    store: Store,
    name: str,
    path: Path,
    mapping: dict[str, str] | None = None,
    quarantine: Path | None = None,
    actor: str | None = None,
    role: str | None = None,
) -> ImportResult:
    """Validate and load ``path`` (canonical column names) into table ``name`` in one transaction.

    Raises ImportRejected (nothing written) when the file or any row is bad
    and no quarantine file is given; with one, the bad rows go there.
    """
    if role is not None:
        require(role, "import")
    if name not in schema.BUSINESS_TABLES:
        raise ImportRejected(f"cannot import into {name!r}; tables: {', '.join(schema.BUSINESS_TABLES)}")
    if not path.is_file():
        raise ImportRejected(f"no such file: {path}")
    block = table_block(name, path, mapping)
    block = replace(block, columns=tuple((n, replace(s, format="1,234.56") if _is_number(n, name) else s)
                                         for n, s in block.columns))
    if not block.columns:
        raise ImportRejected(f"{path.name}: no column is named like a column of {name}; "
                             f"{name} has: {', '.join(schema.data_columns(name))}")
    plan = plan_import(store, ImportMapping((block,), path.parent))
    folder = None
    if quarantine is not None:
        folder = quarantine.parent / f".{quarantine.name}.parts"
    try:
        _, result = run_import(store, ImportMapping((block,), path.parent), quarantine=folder, actor=actor, plan=plan,
                               role=role)
    finally:
        if folder is not None and (folder / f"{name}.csv").is_file():
            (folder / f"{name}.csv").replace(quarantine)  # type: ignore[arg-type]
            folder.rmdir()
    assert result is not None
    return result
