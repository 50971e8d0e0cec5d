"""Mapping imports on PostgreSQL: the same rows as on SQLite after a multi-block upsert, and after its undo.

Each run creates and drops its own databases (tests/conftest.py). Without a
server these skip; in CI (CRM_REQUIRE_POSTGRES=1) they fail instead.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from crm.ingest import ImportRejected, run_import, undo_import
from crm.mapping import parse_mapping
from crm.store import Store
from tests.unit.importing import sales_mapping, state

pytestmark = pytest.mark.postgres

CHANGED = """id,agent,account,deal_stage,engage_date,close_date,close_value
D2,Bob,Beta,Won,2026-01-06 09:15:00.123456,2026-02-01T17:00:00+01:00,"70.25"
D4,Cy,Core,Engaging,2026-02-02,,
"""


def _assert_same_tables(pg: Store, lite: Store) -> None:
    pg_frames, pg_version = state(pg)
    lite_frames, lite_version = state(lite)
    assert pg_version == lite_version
    for name, frame in lite_frames.items():
        assert_frame_equal(pg_frames[name], frame, check_dtypes=True)


def test_a_multi_block_upsert_and_its_undo_match_sqlite(new_pg_url, tmp_path, request):
    pg = Store(new_pg_url())
    lite = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    request.addfinalizer(pg.close)
    request.addfinalizer(lite.close)
    first = parse_mapping(sales_mapping(tmp_path), tmp_path)
    second = parse_mapping(sales_mapping(tmp_path, "changed.csv", CHANGED), tmp_path)
    for store in (pg, lite):
        run_import(store, first)
    _assert_same_tables(pg, lite)
    loaded = state(lite)

    results = [run_import(store, second)[1] for store in (pg, lite)]
    assert results[0] is not None and results[1] is not None
    assert results[0].per_table == results[1].per_table == {"pipeline_stages": 3, "opportunities": 2, "opportunity_stages": 3}
    _assert_same_tables(pg, lite)
    deals = pg.read("opportunities", ["opportunity_id", "amount", "created_at", "closed_at", "status"]).sort("opportunity_id")
    assert deals.rows() == [  # D2 upserted (+01:00 becomes UTC, microseconds kept), D4 new, D1 and D3 untouched
        ("D1", 100.0, datetime(2026, 1, 5), datetime(2026, 1, 20), "won"),
        ("D2", 70.25, datetime(2026, 1, 6, 9, 15, 0, 123456), datetime(2026, 2, 1, 16), "won"),
        ("D3", 0.0, datetime(2026, 1, 7), None, "open"),
        ("D4", 0.0, datetime(2026, 2, 2), None, "open")]

    for store in (pg, lite):
        undo_import(store, 2)
    _assert_same_tables(pg, lite)
    after = state(pg)
    for name, frame in loaded[0].items():
        assert_frame_equal(after[0][name], frame)


def test_a_refused_write_on_postgresql_changes_nothing(new_pg_url, tmp_path, request):
    store = Store(new_pg_url())
    request.addfinalizer(store.close)
    run_import(store, parse_mapping(sales_mapping(tmp_path), tmp_path))
    before = state(store)
    with store.transaction() as conn:  # the third block's rows are refused by the database itself
        conn.execute(sa.text("ALTER TABLE opportunity_stages ADD CONSTRAINT no_d4 CHECK (opportunity_id <> 'D4')"))
    with pytest.raises(ImportRejected, match=r"the database refused the import \(.*no_d4.*\); nothing was written"):
        run_import(store, parse_mapping(sales_mapping(tmp_path, "changed.csv", CHANGED), tmp_path))
    after = state(store)
    assert after[1] == before[1]
    for name, frame in before[0].items():
        assert_frame_equal(after[0][name], frame)
