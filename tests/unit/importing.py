"""Helpers for the importer tests: tiny files in a folder, a SQLite store, the whole store as frames.

Not a test module: tests/unit/test_sources.py, test_mapping.py, test_ingest.py,
test_ingest_properties.py and test_suggest.py import from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from crm import schema
from crm.ingest import ImportPlan, ImportResult, run_import
from crm.mapping import ImportMapping, load_mapping_file
from crm.store import Store


@contextmanager
def sqlite_store(folder: Path) -> Iterator[Store]:
    """A new, empty SQLite store at ``folder/crm.db``, closed afterwards."""
    store = Store(f"sqlite:///{folder}/crm.db")
    try:
        yield store
    finally:
        store.close()


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """``text`` written to ``folder/name`` in ``encoding``; the path."""
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def mapping(folder: Path, toml: str, name: str = "mapping.toml") -> ImportMapping:
    """``toml`` written beside the data files and read back as a checked mapping."""
    return load_mapping_file(write(folder, name, toml))


def run(store: Store, folder: Path, toml: str, **options: object) -> tuple[ImportPlan, ImportResult | None]:
    """Write ``toml`` to ``folder/mapping.toml`` and run it against ``store``."""
    return run_import(store, mapping(folder, toml), **options)  # type: ignore[arg-type]


def rows(store: Store, table: str, columns: list[str] | None = None) -> list[tuple]:
    """A table's rows as tuples (without the import bookkeeping column unless asked), sorted."""
    wanted = columns or schema.data_columns(table)
    return sorted(store.read(table, wanted).select(wanted).rows(), key=repr)


def state(store: Store) -> tuple[dict[str, pl.DataFrame], int]:
    """Every business table (sorted rows, bookkeeping column included) and the data version."""
    if not store.has_schema():
        return {}, store.data_version()
    frames = {}
    for name in schema.BUSINESS_TABLES:  # SQLAlchemy: the quickest path for tiny tables (the fast paths connect per read)
        frame = store.read_table(name, path="sqlalchemy").frame
        frames[name] = frame.sort(frame.columns, nulls_last=True)
    return frames, store.data_version()


def assert_same_state(before: tuple[dict[str, pl.DataFrame], int], after: tuple[dict[str, pl.DataFrame], int]) -> None:
    """Every table holds exactly the same rows, and the data version did not move."""
    assert after[1] == before[1], "the data version moved"
    empty = {name: frame for name, frame in before[0].items() if frame.height}
    now = {name: frame for name, frame in after[0].items() if frame.height}
    assert set(now) == set(empty), f"tables with rows: {sorted(empty)} before, {sorted(now)} after"
    for name, frame in empty.items():
        assert_frame_equal(now[name], frame)


CHINESE_ROWS = [
    ("C1", "北京华信科技有限公司", "北京", "软件"),
    ("C2", "上海东方贸易公司", "上海", "零售"),
    ("C3", "广州南方物流集团", "广州", "物流"),
    ("C4", "深圳创新电子有限公司", "深圳", "制造"),
    ("C5", "杭州西湖茶叶合作社", "杭州", "农业"),
    ("C6", "成都天府餐饮管理公司", "成都", "餐饮"),
]
CHINESE = "客户编号,客户名称,城市,行业\n" + "".join(",".join(r) + "\n" for r in CHINESE_ROWS)
"""A GBK (or GB18030) customer export: enough real Chinese words for the encoding to be detected."""

SALES = """id,agent,account,deal_stage,engage_date,close_date,close_value
D1,Ann,Acme,Won,2026-01-05,2026-01-20,100
D2,Bob,Beta,Lost,2026-01-06,2026-01-09,
D3,Ann,Acme,Engaging,2026-01-07,,
"""
TEAMS = "agent,manager\nAnn,Mia\nBob,Max\n"

SALES_MAPPING = """
[[import]]
table = "pipeline_stages"
mode = "replace"
[[import.rows]]
stage = { value = "Engaging" }
position = { value = 1 }
win_probability = { value = 0.5 }
kind = { value = "open" }
[[import.rows]]
stage = { value = "Won" }
position = { value = 2 }
win_probability = { value = 1 }
kind = { value = "won" }
[[import.rows]]
stage = { value = "Lost" }
position = { value = 3 }
win_probability = { value = 0 }
kind = { value = "lost" }

[[import]]
table = "opportunities"
file = "@FILE@"
mode = "upsert"
[import.columns]
opportunity_id = "id"
customer_id = "account"
owner = "agent"
team = { from = "agent", lookup = { file = "teams.csv", key = "agent", value = "manager" } }
amount = { from = "close_value", default = 0 }
created_at = "engage_date"
closed_at = "close_date"
stage = "deal_stage"
status = { from = "deal_stage", values = { Won = "won", Lost = "lost" }, otherwise = "open" }

[[import]]
table = "opportunity_stages"
file = "@FILE@"
mode = "upsert"
[[import.rows]]
opportunity_id = "id"
stage = { value = "Engaging" }
entered_at = "engage_date"
[[import.rows]]
opportunity_id = "id"
stage = { from = "deal_stage", values = { Won = "Won", Lost = "Lost" }, otherwise = "" }
entered_at = "close_date"
"""
"""Three blocks: the stage list (literal rows), the deals and their stage history, both upserted."""


def sales_mapping(folder: Path, file: str = "sales.csv", text: str = SALES) -> str:
    """Write the sales export ``file`` and its team list into ``folder``; the mapping text that loads them."""
    write(folder, file, text)
    write(folder, "teams.csv", TEAMS)
    return SALES_MAPPING.replace("@FILE@", file)
