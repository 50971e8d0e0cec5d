"""The page tables shared by every session (crm.tables.SharedTables): held within a memory budget, least
recently used dropped first, a table too large for it handed out but not kept, one computation per table
when sessions ask at once."""

from __future__ import annotations

import threading
import time

import polars as pl

from crm.metrics import funnel
from crm.tables import SharedTables as _Tables


def table(rows: int, value: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"x": pl.Series([value] * rows, dtype=pl.Int64)})  # 8 bytes a row


def test_the_least_recently_used_table_goes_when_the_budget_is_full():
    tables = _Tables(budget_bytes=8 * 1000)  # room for 1,000 rows; a table of up to 250 is kept
    computed: list[str] = []

    def get(name: str) -> pl.DataFrame:
        return tables.get((name,), lambda: computed.append(name) or table(240))

    for name in "abcd":  # 960 rows held
        get(name)
    get("a")  # held: a is now the most recently used
    assert computed == ["a", "b", "c", "d"]
    get("e")  # 1,200 rows: b, the least recently used, goes
    for name in "acde":
        get(name)
    assert computed == ["a", "b", "c", "d", "e"]
    get("b")  # computed again; c goes
    assert computed == ["a", "b", "c", "d", "e", "b"]
    assert tables.size == 8 * 240 * 4 <= tables.budget


def test_a_table_larger_than_a_quarter_of_the_budget_is_not_kept():
    tables = _Tables(budget_bytes=8 * 1000)
    computed: list[int] = []
    for _ in range(2):
        got = tables.get(("big",), lambda: computed.append(1) or table(251))
        assert got.height == 251
    assert len(computed) == 2
    assert tables.size == 0


def test_a_deal_list_counts_as_its_rows():
    tables = _Tables(budget_bytes=8 * 1000)
    computed: list[int] = []

    def get(name: str, rows: int) -> funnel.DealList:
        return tables.get((name,), lambda: computed.append(rows) or funnel.DealList(table(rows), 1_000_000, 5.0))

    assert get("head", 240).deals == 1_000_000  # 240 rows shown of a million: 1,920 bytes held
    assert get("head", 240).rows.height == 240 and computed == [240]
    assert tables.size == 8 * 240
    get("big", 251)  # over a quarter of the budget by its rows: handed out, not kept
    get("big", 251)
    assert computed == [240, 251, 251]


def test_sessions_asking_at_once_compute_a_table_once():
    tables = _Tables(budget_bytes=8 * 1000)
    computed: list[int] = []
    ready = threading.Barrier(8)
    got: list[pl.DataFrame] = []

    def compute() -> pl.DataFrame:
        computed.append(1)
        time.sleep(0.1)
        return table(10, value=7)

    def ask() -> None:
        ready.wait()
        got.append(tables.get(("same",), compute))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(computed) == 1
    assert [g["x"].sum() for g in got] == [70] * 8


def test_a_failed_computation_is_not_kept_and_can_be_retried():
    tables = _Tables(budget_bytes=8 * 1000)

    def fail() -> pl.DataFrame:
        raise RuntimeError("boom")

    try:
        tables.get(("t",), fail)
    except RuntimeError:
        pass
    assert tables.get(("t",), lambda: table(3)).height == 3
    assert tables.computing == {}
