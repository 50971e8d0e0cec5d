"""The import mapping file (DESIGN.md, *Import mapping contract*): TOML in, checked objects out, and back.

A mapping is a list of blocks; each says how one source file (or none: literal
rows) becomes rows of one canonical table. This module only reads, checks and
writes mappings; ``crm.ingest`` runs them. Every mistake in a mapping is
reported with its block and key, so a person can fix the file.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tomli_w

from crm import schema
from crm.sources import DEFAULT_NA, DELIMITERS, FORMATS, ReadOptions

ROW_NUMBER = "@row"
"""``from = "@row"``: the source row number, 1-based (for files without ids)."""


class MappingError(Exception):
    """The mapping file cannot be used; the message names the block and key."""


class Mode(StrEnum):
    """What a block does to rows already in the table."""

    INSERT = "insert"
    UPSERT = "upsert"
    REPLACE = "replace"


class Agg(StrEnum):
    """How an event log's rows of one group become one value."""

    FIRST = "first"
    LAST = "last"
    MIN = "min"
    MAX = "max"
    COUNT = "count"


@dataclass(frozen=True)
class Lookup:
    """A value from a second file, matched on a key column."""

    file: Path
    key: str
    value: str


@dataclass(frozen=True)
class ColumnSpec:
    """Where one canonical column's value comes from (exactly one of ``source`` and ``value``)."""

    source: str | None = None
    value: str | None = None
    default: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    otherwise: str | None = None
    format: str | None = None
    agg: Agg | None = None
    where: tuple[tuple[str, str], ...] = ()
    lookup: Lookup | None = None

    def source_columns(self) -> set[str]:
        """The source columns this spec reads (``@row`` is not one)."""
        used = {k for k, _ in self.where}
        if self.source is not None and self.source != ROW_NUMBER:
            used.add(self.source)
        return used


@dataclass(frozen=True)
class ImportBlock:
    """One ``[[import]]`` block: a source file into one canonical table."""

    table: str
    file: Path | None
    read: ReadOptions = field(default_factory=ReadOptions)
    date_formats: tuple[str, ...] = ()
    unmapped: str = "ignore"
    mode: Mode = Mode.INSERT
    columns: tuple[tuple[str, ColumnSpec], ...] = ()
    rows: tuple[tuple[tuple[str, ColumnSpec], ...], ...] = ()
    """``[[import.rows]]``: several target rows per source row (empty when ``columns`` is used)."""
    group_by: tuple[str, ...] = ()

    def row_specs(self) -> tuple[tuple[tuple[str, ColumnSpec], ...], ...]:
        """The target row specs: ``rows``, or the one row of ``columns``."""
        return self.rows if self.rows else (self.columns,)

    def source_columns(self) -> set[str]:
        """Every source column the block reads (its specs, conditions and group)."""
        used = set(self.group_by)
        for row in self.row_specs():
            for _, spec in row:
                used |= spec.source_columns()
        return used

    def label(self, index: int) -> str:
        """'block 2 (opportunities from sales.csv)' for messages."""
        origin = f" from {self.file.name}" if self.file else ""
        return f"block {index} ({self.table}{origin})"


@dataclass(frozen=True)
class ImportMapping:
    """A whole mapping file: its blocks, run in order in one transaction."""

    blocks: tuple[ImportBlock, ...]
    base: Path = field(default=Path("."))
    """The folder relative file names are resolved against (the mapping file's)."""


_BLOCK_KEYS = {"table", "file", "format", "sheet", "encoding", "delimiter", "header", "na", "date_formats",
               "unmapped", "mode", "columns", "rows", "group_by"}
_SPEC_KEYS = {"from", "value", "default", "values", "otherwise", "format", "agg", "where", "lookup"}
_LOOKUP_KEYS = {"file", "key", "value"}


def load_mapping_file(path: Path) -> ImportMapping:
    """Read and check a TOML mapping file; MappingError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping file {path} is not UTF-8 text") from None
    return parse_mapping(text, path.parent)


def parse_mapping(text: str, base: Path) -> ImportMapping:
    """A mapping from TOML text; file names resolve against ``base``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"the mapping is not valid TOML: {exc}") from None
    unknown = set(data) - {"import"}
    if unknown:
        raise MappingError(f"unknown top-level key(s) {', '.join(sorted(unknown))}: a mapping holds [[import]] blocks")
    raw_blocks = data.get("import")
    if not isinstance(raw_blocks, list) or not raw_blocks:
        raise MappingError("the mapping has no [[import]] block")
    blocks = tuple(_parse_block(raw, i, base) for i, raw in enumerate(raw_blocks, start=1))
    return ImportMapping(blocks, base)


def _text(value: Any, where: str) -> str:
    """A TOML scalar as the text a cell would hold (numbers, booleans and dates included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    raise MappingError(f"{where}: expected a text, number or date, got {type(value).__name__}")


def _parse_block(raw: Any, index: int, base: Path) -> ImportBlock:
    where = f"block {index}"
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: an [[import]] block must be a table")
    unknown = set(raw) - _BLOCK_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_BLOCK_KEYS))}")
    table_name = raw.get("table")
    if table_name not in schema.BUSINESS_TABLES:
        raise MappingError(f"{where}: table must be one of {', '.join(schema.BUSINESS_TABLES)}, not {table_name!r}")
    where = f"block {index} ({table_name})"
    file = raw.get("file")
    if file is not None and not isinstance(file, str):
        raise MappingError(f"{where}: file must be a file name")
    fmt = raw.get("format", "auto")
    if fmt not in FORMATS:
        raise MappingError(f"{where}: format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    delimiter = raw.get("delimiter", "auto")
    if delimiter != "auto" and delimiter not in DELIMITERS:
        raise MappingError(f'{where}: delimiter must be "auto", "whitespace" or one of "," ";" "\\t" "|", not {delimiter!r}')
    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise MappingError(f"{where}: header must be true or false")
    na = raw.get("na", list(DEFAULT_NA))
    if not isinstance(na, list) or not all(isinstance(t, str) for t in na):
        raise MappingError(f"{where}: na must be a list of texts")
    encoding = raw.get("encoding", "auto")
    sheet = raw.get("sheet")
    if not isinstance(encoding, str) or (sheet is not None and not isinstance(sheet, str)):
        raise MappingError(f"{where}: encoding and sheet must be texts")
    formats = raw.get("date_formats", [])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise MappingError(f"{where}: date_formats must be a list of strptime patterns")
    unmapped = raw.get("unmapped", "ignore")
    if unmapped not in ("ignore", "error"):
        raise MappingError(f'{where}: unmapped must be "ignore" or "error", not {unmapped!r}')
    try:
        mode = Mode(raw.get("mode", "insert"))
    except ValueError:
        raise MappingError(f"{where}: mode must be insert, upsert or replace, not {raw.get('mode')!r}") from None
    group = raw.get("group_by", [])
    group_by = (group,) if isinstance(group, str) else tuple(group) if isinstance(group, list) else None
    if group_by is None or not all(isinstance(g, str) for g in group_by):
        raise MappingError(f"{where}: group_by must be a source column name or a list of them")
    has_columns, has_rows = "columns" in raw, "rows" in raw
    if has_columns == has_rows:
        raise MappingError(f"{where}: give either [import.columns] or [[import.rows]] (exactly one)")
    if file is None and not has_rows:
        raise MappingError(f"{where}: a block without a file holds literal rows: use [[import.rows]]")
    if group_by and has_rows:
        raise MappingError(f"{where}: group_by makes one row per group: use [import.columns], not [[import.rows]]")
    if has_rows:
        if not isinstance(raw["rows"], list) or not raw["rows"]:
            raise MappingError(f"{where}: [[import.rows]] must hold at least one row")
        rows = tuple(_parse_columns(r, f"{where}, row spec {i}", base, table_name, bool(group_by))
                     for i, r in enumerate(raw["rows"], start=1))
        columns: tuple[tuple[str, ColumnSpec], ...] = ()
    else:
        columns = _parse_columns(raw["columns"], f"{where}, columns", base, table_name, bool(group_by))
        rows = ()
    options = ReadOptions(format=fmt, sheet=sheet, encoding=encoding, delimiter=delimiter, header=header, na=tuple(na))
    return ImportBlock(
        table=table_name, file=(base / file) if file is not None else None, read=options, date_formats=tuple(formats),
        unmapped=unmapped, mode=mode, columns=columns, rows=rows, group_by=group_by,
    )


def _parse_columns(raw: Any, where: str, base: Path, table_name: str, grouped: bool) -> tuple[tuple[str, ColumnSpec], ...]:
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{where}: expected canonical column = spec pairs")
    known = schema.data_columns(table_name)
    out = []
    for name, spec in raw.items():
        if name not in known:
            raise MappingError(f"{where}: {table_name} has no column {name!r}; its columns: {', '.join(known)}")
        parsed = _parse_spec(spec, f"{where}, {name}", base, grouped)
        if parsed.agg == Agg.COUNT and not isinstance(schema.table(table_name).c[name].type, sa.Integer | sa.Float):
            raise MappingError(f'{where}, {name}: agg = "count" gives a number of rows; {name} is not a number column')
        out.append((name, parsed))
    return tuple(out)


def match_key(text: str) -> str:
    """How value maps and conditions compare texts: case and spaces ignored ("Closed Won" = "closedwon")."""
    return "".join(text.lower().split())


def _pairs(raw: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{where}: {key} must be a table of source value = canonical value")
    pairs: dict[str, tuple[str, str]] = {}
    for k, v in raw.items():
        value = _text(v, f"{where}, {key}.{k}")
        first = pairs.setdefault(match_key(str(k)), (str(k), value))
        if first[1] != value:
            raise MappingError(f"{where}: {key} gives {first[0]!r} and {k!r} different values, but they match the same "
                               "cells (case and spaces are ignored)")
    return tuple(pairs.values())


def _parse_spec(raw: Any, where: str, base: Path, grouped: bool) -> ColumnSpec:
    if isinstance(raw, str):
        return ColumnSpec(source=raw)
    if not isinstance(raw, dict):
        raise MappingError(f'{where}: a spec is a source column name or a table like {{ from = "Column" }}')
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_SPEC_KEYS))}")
    if ("from" in raw) == ("value" in raw):
        raise MappingError(f"{where}: give exactly one of from (a source column) or value (a constant)")
    source = raw.get("from")
    if source is not None and not isinstance(source, str):
        raise MappingError(f"{where}: from must be a source column name")
    agg = None
    if "agg" in raw:
        if not grouped:
            raise MappingError(f"{where}: agg needs group_by in its block")
        try:
            agg = Agg(raw["agg"])
        except ValueError:
            raise MappingError(f"{where}: agg must be one of {', '.join(a.value for a in Agg)}") from None
    conditions: tuple[tuple[str, str], ...] = ()
    if "where" in raw:
        if agg is None:
            raise MappingError(f"{where}: where chooses the rows an agg reads: give agg too")
        conditions = _pairs(raw["where"], where, "where")
    lookup = None
    if "lookup" in raw:
        spec = raw["lookup"]
        if not isinstance(spec, dict) or set(spec) != _LOOKUP_KEYS or not all(isinstance(v, str) for v in spec.values()):
            raise MappingError(f'{where}: lookup is {{ file = "...", key = "column", value = "column" }}')
        if source is None:
            raise MappingError(f"{where}: lookup matches the from column against the key: give from")
        lookup = Lookup(base / spec["file"], spec["key"], spec["value"])
    fmt = raw.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise MappingError(f"{where}: format must be a text")
    return ColumnSpec(
        source=source,
        value=_text(raw["value"], where) if "value" in raw else None,
        default=_text(raw["default"], where) if "default" in raw else None,
        values=_pairs(raw["values"], where, "values") if "values" in raw else (),
        otherwise=_text(raw["otherwise"], where) if "otherwise" in raw else None,
        format=fmt, agg=agg, where=conditions, lookup=lookup,
    )


# --- writing ------------------------------------------------------------------


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _spec_to_toml(spec: ColumnSpec, base: Path) -> str | dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.source is not None:
        out["from"] = spec.source
    if spec.value is not None:
        out["value"] = spec.value
    if spec.default is not None:
        out["default"] = spec.default
    if spec.values:
        out["values"] = dict(spec.values)
    if spec.otherwise is not None:
        out["otherwise"] = spec.otherwise
    if spec.format is not None:
        out["format"] = spec.format
    if spec.agg is not None:
        out["agg"] = spec.agg.value
    if spec.where:
        out["where"] = dict(spec.where)
    if spec.lookup is not None:
        out["lookup"] = {"file": _relative(spec.lookup.file, base), "key": spec.lookup.key, "value": spec.lookup.value}
    return out["from"] if set(out) == {"from"} else out


def to_toml(mapping: ImportMapping) -> str:
    """The mapping as a TOML file that ``parse_mapping`` reads back to an equal mapping."""
    blocks = []
    for block in mapping.blocks:
        out: dict[str, Any] = {"table": block.table}
        if block.file is not None:
            out["file"] = _relative(block.file, mapping.base)
            defaults = ReadOptions()
            for key in ("format", "sheet", "encoding", "delimiter", "header"):
                value = getattr(block.read, key)
                if value != getattr(defaults, key):
                    out[key] = value
            if block.read.na != defaults.na:
                out["na"] = list(block.read.na)
        if block.date_formats:
            out["date_formats"] = list(block.date_formats)
        if block.unmapped != "ignore":
            out["unmapped"] = block.unmapped
        if block.mode != Mode.INSERT:
            out["mode"] = block.mode.value
        if block.group_by:
            out["group_by"] = block.group_by[0] if len(block.group_by) == 1 else list(block.group_by)
        if block.rows:
            out["rows"] = [{n: _spec_to_toml(s, mapping.base) for n, s in row} for row in block.rows]
        else:
            out["columns"] = {n: _spec_to_toml(s, mapping.base) for n, s in block.columns}
        blocks.append(out)
    return tomli_w.dumps({"import": blocks})


def with_columns(block: ImportBlock, columns: MappingABC[str, ColumnSpec]) -> ImportBlock:
    """The block with its ``[import.columns]`` replaced (the Data page's form edits these)."""
    return replace(block, columns=tuple(columns.items()), rows=())
