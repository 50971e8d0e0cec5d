"""Properties of run_import over random files and random small mappings.

Whatever the bytes and the specs, an import either loads or raises one of the
importer's own errors (ImportRejected, MappingError, SourceError); when it
raises, every table and the data version are exactly as before; when it loads,
the data version moves by one and undoing it gives back the store as it was.

Each example copies a small prepared SQLite store into its own temporary
folder (hypothesis reuses pytest fixtures across examples).
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm import schema
from crm.ingest import ImportRejected, run_import, undo_import
from crm.mapping import MappingError, parse_mapping
from crm.sources import SourceError
from crm.store import Store
from tests.unit.importing import assert_same_state, sales_mapping, state

COLUMNS = ["a", "b", "c", "d"]
TABLES = ["tickets", "opportunities", "opportunity_stages", "pipeline_stages", "orders", "survey_responses", "customers"]
CELLS = ["", "NA", "-", "T1", "T2", "D1", "D9", "Won", " won ", "Lost", "urgent", "Low", "nps", "csat", "11", "0", "12", "-3",
         "1.234,50", "1,200", "NaN", "1e400", "2026-01-02", "2026-01-02 10:00:00+02:00", "01/02/2026", "20260105",
         "1899-12-31", "x" * 70, "é ü", "北京", "a\x00b", 'quote " and, comma', "  spaced  "]
CONSTANTS = ["", "T3", "open", "WON", "7", "0.5", "2026-03-04", "Europe", "nope"]
FORMATS = ["1.234,56", "1,234.56", "%d/%m/%Y", "%Y%m%d", "%m/%d/%Y"]
ERRORS = (ImportRejected, MappingError, SourceError)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store with rows from an import (deals, stages, stage history) and rows no import wrote (tickets)."""
    folder = tmp_path_factory.mktemp("template")
    with Store(f"sqlite:///{folder / 'crm.db'}") as store:
        run_import(store, parse_mapping(sales_mapping(folder), folder))
        with store.transaction() as conn:
            conn.execute(schema.tickets.insert(), [
                {"ticket_id": "T1", "created_at": datetime(2026, 1, 1, 8, 30), "priority": "low", "agent": None},
                {"ticket_id": "T2", "created_at": datetime(2026, 2, 1), "priority": None, "agent": "Eve"}])
            conn.execute(schema.customers.insert().values(customer_id="C1", name="Alpha"))
    return folder / "crm.db"


def _spec(draw: st.DrawFn, grouped: bool) -> Any:
    source = draw(st.sampled_from([*COLUMNS, "@row", "zz"]))
    kind = draw(st.sampled_from(["plain", "from", "value", "default", "values", "format"]))
    if kind == "plain":
        spec: Any = {"from": source}
    elif kind == "value":
        return {"value": draw(st.sampled_from(CONSTANTS))}
    elif kind == "default":
        spec = {"from": source, "default": draw(st.sampled_from(CONSTANTS))}
    elif kind == "values":
        pairs = draw(st.dictionaries(st.sampled_from(CELLS[1:]), st.sampled_from(CONSTANTS), min_size=1, max_size=3))
        spec = {"from": source, "values": pairs}
        if draw(st.booleans()):
            spec["otherwise"] = draw(st.sampled_from(CONSTANTS))
    elif kind == "format":
        spec = {"from": source, "format": draw(st.sampled_from(FORMATS))}
    else:
        spec = {"from": source}
    if grouped and draw(st.booleans()):
        spec["agg"] = draw(st.sampled_from(["first", "last", "min", "max", "count"]))
        if draw(st.booleans()):
            spec["where"] = {draw(st.sampled_from(COLUMNS)): draw(st.sampled_from(CELLS[1:]))}
    return spec


def _safe_spec(table: str, column: sa.Column, grouped: bool) -> Any:
    """A spec every row satisfies: row numbers (or the group) for ids, valid constants for the rest."""
    vocabulary = {enum.column: enum.values for enum in schema.ENUMS.get(table, ())}
    kind = schema.polars_dtype(column)
    if column.name in vocabulary:
        return {"value": vocabulary[column.name][0]}
    if isinstance(kind, pl.Datetime | pl.Date):
        return {"value": "2026-03-04 05:06:07"}
    if kind == pl.Int64:
        return {"value": "3"}
    if kind == pl.Float64:
        return {"value": "0.5"}
    return {"from": "a"} if grouped else {"from": "@row"}


def _row_specs(draw: st.DrawFn, table: str, grouped: bool, safe: bool) -> dict[str, Any]:
    """Specs for some of the table's columns; ``safe`` gives the required ones specs every row passes."""
    columns = {c.name: c for c in schema.table(table).columns if c.name != schema.IMPORT_BATCH}
    required = [name for name, c in columns.items() if not c.nullable]
    chosen = draw(st.lists(st.sampled_from(list(columns)), max_size=4, unique=True))
    if safe or draw(st.integers(0, 3)):
        chosen = list(dict.fromkeys([*required, *chosen]))
    specs = {}
    for name in chosen:
        if safe and (name in required or draw(st.booleans())):
            specs[name] = _safe_spec(table, columns[name], grouped)
        else:
            specs[name] = _spec(draw, grouped)
    return specs or {next(iter(columns)): {"from": "a"}}


@st.composite
def mappings(draw: st.DrawFn) -> dict[str, Any]:
    """One to three blocks over data.csv (columns a, b, c, d) or literal rows; about two in three of them sane."""
    blocks = []
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        table = draw(st.sampled_from(TABLES))
        safe = draw(st.integers(0, 2)) > 0
        block: dict[str, Any] = {"table": table}
        shape = draw(st.sampled_from(["columns", "columns", "rows", "literal", "grouped"]))
        if shape != "literal":
            block["file"] = "data.csv"
            block["encoding"] = "auto" if safe else draw(st.sampled_from(["auto", "utf-8", "latin-1", "gbk"]))
            block["delimiter"] = "auto" if safe else draw(st.sampled_from(["auto", ",", ";", "whitespace"]))
            block["header"] = safe or draw(st.integers(0, 3)) > 0
            block["na"] = draw(st.sampled_from([["", "NA", "N/A", "null"], ["-"], []]))
            block["unmapped"] = "ignore" if safe else draw(st.sampled_from(["ignore", "error"]))
        block["mode"] = draw(st.sampled_from(["insert", "upsert", "replace"]))
        block["date_formats"] = draw(st.lists(st.sampled_from(FORMATS[2:]), max_size=2, unique=True))
        if shape == "grouped":
            block["group_by"] = "a" if safe else draw(st.sampled_from(COLUMNS))
        if shape in ("rows", "literal"):
            block["rows"] = [_row_specs(draw, table, False, safe) for _ in range(draw(st.integers(1, 2)))]
        else:
            block["columns"] = _row_specs(draw, table, shape == "grouped", safe)
        blocks.append(block)
    return {"import": blocks}


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=4, max_size=4), min_size=1, max_size=6))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if draw(st.integers(0, 5)):
        writer.writerow(COLUMNS)
    writer.writerows(lines)
    return buffer.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])))


def _check(template: Path, data: bytes, mapping: dict[str, Any], quarantine: bool) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copy(template, folder / "crm.db")
        (folder / "data.csv").write_bytes(data)
        with Store(f"sqlite:///{folder / 'crm.db'}") as store:
            before = state(store)
            try:
                parsed = parse_mapping(tomli_w.dumps(mapping), folder)
                _, result = run_import(store, parsed, quarantine=folder / "q" if quarantine else None)
            except ERRORS as exc:
                event(f"rejected: {type(exc).__name__}")
                assert_same_state(before, state(store))
                return
            event("loaded")
            assert result is not None
            assert store.data_version() == before[1] + 1
            assert result.loaded == sum(result.per_table.values()) > 0
            untouched = set(schema.BUSINESS_TABLES) - set(result.per_table)
            after = state(store)
            for table in untouched:
                assert after[0][table].equals(before[0][table]), table
            undo_import(store, result.batch)
            undone = state(store)
            assert undone[1] == before[1] + 2
            assert_same_state((before[0], undone[1]), undone)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=200), header=st.booleans(), mapping=mappings(), quarantine=st.booleans())
def test_random_bytes_load_or_change_nothing(template, data, header, mapping, quarantine):
    _check(template, (b"a,b,c,d\n" if header else b"") + data, mapping, quarantine)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=csv_texts(), mapping=mappings(), quarantine=st.booleans())
def test_random_csv_and_mappings_load_or_change_nothing(template, data, mapping, quarantine):
    _check(template, data, mapping, quarantine)


def test_the_template_is_what_the_properties_start_from(template, tmp_path):
    shutil.copy(template, tmp_path / "crm.db")
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        frames, version = state(store)
    assert version == 1
    assert {name: frame.height for name, frame in frames.items() if frame.height} == {
        "customers": 1, "opportunities": 3, "opportunity_stages": 5, "pipeline_stages": 3, "tickets": 2}
