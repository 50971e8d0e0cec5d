"""Quality scores worked out from a store table by table, in pieces (crm.quality.store_scores, the cockpit's
footer): the same scores as the whole-table report, counted by hand below, whatever the piece size, on
SQLite and PostgreSQL; and pieces read by Store.read_batches hold every row once."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from crm import schema
from crm.quality import (
    DUPLICATE_KEY_RULE,
    EMAIL_RULE,
    InMemory,
    finding_rows,
    quality_scores,
    read_tables,
    reference_rule,
    report,
    store_finding_rows,
    store_report,
    store_scores,
)
from crm.store import Store

D = datetime

ROWS: dict[str, list[dict]] = {
    "customers": [
        {"customer_id": "C1", "email": "a@example.com", "created_at": D(2026, 1, 1)},  # clean
        {"customer_id": "C2", "email": "broken@", "created_at": D(2026, 1, 2)},  # key twice (bad email: not scored)
        {"customer_id": "C3", "email": None, "created_at": D(2026, 1, 3)},  # clean
        {"customer_id": "C2", "email": None, "created_at": D(2026, 1, 3)},  # key twice
        {"customer_id": None, "email": None, "created_at": D(9999, 12, 31)},  # no id, off the calendar
    ],
    "opportunities": [
        {"opportunity_id": "O1", "customer_id": "C1", "amount": 100.0, "created_at": D(2026, 1, 1),
         "closed_at": D(2026, 2, 1), "status": "won"},  # clean
        {"opportunity_id": "O2", "customer_id": "C9", "amount": -5.0, "created_at": D(2026, 1, 5),
         "closed_at": D(2026, 1, 1), "status": "open"},  # negative, closed before created, no customer C9
        {"opportunity_id": "O3", "customer_id": None, "amount": 50.0, "created_at": D(2026, 3, 1),
         "closed_at": None, "status": "maybe"},  # unknown status (an empty customer is allowed)
        {"opportunity_id": "O4", "customer_id": "C3", "amount": 70.0, "created_at": D(2026, 3, 2),
         "closed_at": None, "status": "open"},  # clean
    ],
    "opportunity_stages": [
        {"opportunity_id": "O1", "stage": "lead", "entered_at": D(2026, 1, 1)},  # clean
        {"opportunity_id": "O7", "stage": "lead", "entered_at": D(2026, 1, 2)},  # no deal O7
    ],
    "orders": [
        {"order_id": "X1", "customer_id": "C1", "ordered_at": D(2026, 1, 15), "amount": 10.0},
    ],
    "order_items": [
        {"order_id": "X1", "product": "Widget", "quantity": 2, "amount": 10.0},  # clean
        {"order_id": "X2", "product": "Widget", "quantity": 1, "amount": 5.0},  # no order X2
        {"order_id": "X1", "product": "Gadget", "quantity": -1, "amount": 5.0},  # negative quantity
    ],
    "tickets": [
        {"ticket_id": "T1", "customer_id": "C1", "created_at": D(2026, 1, 10), "resolved_at": D(2026, 1, 9)},
        {"ticket_id": "T2", "customer_id": "C1", "created_at": D(2026, 1, 11), "resolved_at": None},
    ],
    "survey_responses": [
        {"response_id": "R1", "customer_id": "C1", "ticket_id": None, "kind": "nps", "score": 7.5,
         "responded_at": D(2026, 1, 12)},  # off the scale (not whole)
        {"response_id": "R2", "customer_id": "C1", "ticket_id": "T9", "kind": "csat", "score": 5.0,
         "responded_at": D(2026, 1, 12)},  # no ticket T9
        {"response_id": "R3", "customer_id": "C1", "ticket_id": "T2", "kind": "nps", "score": 9.0,
         "responded_at": D(2026, 1, 13)},  # clean
    ],
}
"""Bad rows of every kind the score counts; ``EXPECTED`` is counted from the comments."""

EXPECTED = [  # table, rows, clean, score (None: no rows), below 95
    ("customers", 5, 2, 40.0, True),  # C2 twice (duplicate key), no id (required, off calendar)
    ("opportunities", 4, 2, 50.0, True),  # O2 and O3
    ("opportunity_stages", 2, 1, 50.0, True),  # O7
    ("pipeline_stages", 0, 0, None, False),
    ("orders", 1, 1, 100.0, False),
    ("order_items", 3, 1, 100 / 3, True),  # X2, the negative quantity
    ("tickets", 2, 1, 50.0, True),  # T1 resolved before it was created
    ("survey_responses", 3, 1, 100 / 3, True),  # R1, R2
    ("interactions", 0, 0, None, False),
]

DROPPED = ("survey_responses", "comment")
"""A column the store lacks (a store from before the schema added it): it reads as empty."""


def write_store(url: str) -> Store:
    """ROWS in a store as another tool might have written it: customers without a primary key (so a key can
    be there twice and empty), survey responses without ``comment``."""
    store = Store(url)
    store.ensure_schema()
    loose = sa.MetaData()
    customers = sa.Table("customers", loose, *[sa.Column(c.name, c.type) for c in schema.table("customers").columns])
    table, column = DROPPED
    responses = sa.Table(table, loose, *[sa.Column(c.name, c.type) for c in schema.table(table).columns
                                         if c.name != column])
    with store.transaction() as conn:
        for replaced in (customers, responses):
            conn.execute(sa.text(f"DROP TABLE {replaced.name}"))
            replaced.create(conn)
        for name, rows in ROWS.items():
            target = customers if name == "customers" else responses if name == table else schema.table(name)
            columns = {c for row in rows for c in row}
            conn.execute(target.insert(), [{c: row.get(c) for c in columns} for row in rows])
        store.bump_version(conn)
    return store


def check_scores(store: Store) -> None:
    for rows in (1, 2, 1_000_000):  # every row its own piece; pieces that split a duplicate pair; one piece
        got = store_scores(store, rows=rows)
        assert got.select("table", "rows", "clean", "below").rows() == [(t, n, c, b) for t, n, c, _, b in EXPECTED]
        assert got["score"].to_list() == pytest.approx([s for _, _, _, s, _ in EXPECTED], nan_ok=False)
        assert_frame_equal(got, quality_scores(read_tables(store)))
    assert store_scores(store, threshold=30)["below"].to_list() == [False] * len(EXPECTED)


def check_report(store: Store) -> None:
    whole = report(InMemory(read_tables(store)))
    for rows in (1, 2, 1_000_000):
        got = store_report(store, rows=rows)
        for part in ("findings", "completeness", "scores", "latest"):
            assert_frame_equal(getattr(got, part), getattr(whole, part))
    found = {(f["table"], f["column"], f["rule"]): f["count"] for f in got.findings.iter_rows(named=True)}
    assert found[("customers", "customer_id", DUPLICATE_KEY_RULE)] == 2  # C2 twice
    assert found[("customers", "email", EMAIL_RULE)] == 1  # broken@
    assert found[("opportunity_stages", "opportunity_id", reference_rule("opportunities"))] == 1  # O7
    assert found[("order_items", "order_id", reference_rule("orders"))] == 1  # X2
    filled = got.completeness.filter(pl.col("table") == "customers", pl.col("column") == "email").row(0, named=True)
    assert (filled["filled"], filled["rows"]) == (2, 5)
    latest = got.latest.filter(pl.col("table") == "customers").row(0, named=True)
    assert latest["latest"] == D(2026, 1, 3)  # 9999-12-31 is a placeholder, not a record


def check_finding_rows(store: Store) -> None:
    tables = read_tables(store)
    for table, column, rule, ids in [
        ("customers", "customer_id", DUPLICATE_KEY_RULE, ["C2", "C2"]),
        ("customers", "email", EMAIL_RULE, ["C2"]),
        ("survey_responses", "ticket_id", reference_rule("tickets"), ["R2"]),
        ("opportunities", "status", "no such rule", []),
    ]:
        got = store_finding_rows(store, table, column, rule, rows=1)
        assert got[got.columns[0]].to_list() == ids
        assert_frame_equal(got.sort(got.columns), finding_rows(tables, table, column, rule).sort(got.columns))


def check_pieces(store: Store) -> None:
    columns = schema.data_columns("order_items")
    pieces = list(store.read_batches("order_items", columns, rows=2))
    assert [p.height for p in pieces] == [2, 1]
    whole = pl.concat(pieces)
    assert whole.schema == schema.polars_schema("order_items", columns)
    assert sorted(whole.select("order_id", "product", "quantity").rows()) == sorted(
        (r["order_id"], r["product"], r["quantity"]) for r in ROWS["order_items"])
    assert sum(p.height for p in store.read_batches("interactions", ["interaction_id"])) == 0


def test_store_scores_on_sqlite(tmp_path):
    store = write_store(f"sqlite:///{tmp_path / 'loose.db'}")
    check_scores(store)
    check_report(store)
    check_finding_rows(store)
    check_pieces(store)
    store.close()


def test_sqlite_pieces_hold_no_lock_between_them(tmp_path):
    import sqlite3

    path = tmp_path / "loose.db"
    store = write_store(f"sqlite:///{path}")
    pieces = store.read_batches("order_items", ["order_id"], rows=1)
    first = next(pieces)  # the reader is between two pieces, as the quality check is while it checks one
    writer = sqlite3.connect(path, timeout=0)  # a writer that does not wait: it fails if any lock is held
    writer.execute("INSERT INTO order_items (order_id, product, quantity, amount) VALUES ('O9', 'Data Connect', 1, 5.0)")
    writer.commit()
    writer.close()
    rest = list(pieces)
    # O9 came after the first piece in rowid order: the later pieces see it
    assert sorted([first["order_id"][0], *(p["order_id"][0] for p in rest)]) == sorted(
        [r["order_id"] for r in ROWS["order_items"]] + ["O9"])
    assert [p.height for p in rest] == [1, 1, 1]
    store.close()


def test_sqlite_table_without_rowid_is_read_whole(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    store = Store(url)
    store.ensure_schema()
    with store.transaction() as conn:
        conn.exec_driver_sql("DROP TABLE interactions")
        conn.exec_driver_sql("CREATE TABLE interactions (interaction_id TEXT PRIMARY KEY, customer_id TEXT) WITHOUT ROWID")
        conn.exec_driver_sql("INSERT INTO interactions VALUES ('I1', 'C1'), ('I2', 'C2'), ('I3', 'C1')")
    pieces = list(store.read_batches("interactions", ["interaction_id", "customer_id"], rows=2))
    assert sorted(r for p in pieces for r in p.rows()) == [("I1", "C1"), ("I2", "C2"), ("I3", "C1")]
    store.close()


def test_store_scores_of_a_store_in_memory():
    store = write_store("sqlite://")  # in memory: a store without a file
    check_scores(store)
    check_report(store)
    check_finding_rows(store)
    check_pieces(store)
    store.close()


@pytest.mark.postgres
def test_store_scores_on_postgresql(new_pg_url):
    store = write_store(new_pg_url())
    check_scores(store)
    check_report(store)
    check_finding_rows(store)
    check_pieces(store)
    store.close()


def test_a_store_without_the_schema_scores_nothing(tmp_path):
    got = store_scores(Store(f"sqlite:///{tmp_path / 'empty.db'}"))
    assert got["rows"].to_list() == [0] * len(schema.BUSINESS_TABLES)
    assert got["score"].to_list() == [None] * len(schema.BUSINESS_TABLES)


def test_the_demo_store_scores_100_everywhere(sqlite_store):
    got = store_scores(sqlite_store, rows=50_000)
    assert got["rows"].to_list() == [sqlite_store.row_count(name) for name in schema.BUSINESS_TABLES]
    assert got["clean"].to_list() == got["rows"].to_list()  # the demo load rejects any row with an error
    assert_frame_equal(got, quality_scores(read_tables(sqlite_store)))
