"""The store: where it is configured, schema and data version, reads into Polars, all-or-nothing writes."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import schema
from crm.config import ConfigError, default_url, resolve_database_url
from crm.store import Store, StoreError


def test_url_resolution_order(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    assert resolve_database_url(secrets_path=secrets) == default_url()
    secrets.write_text('[connections.crm]\nurl = "sqlite:///from-secrets.db"\n')
    assert resolve_database_url(secrets_path=secrets) == "sqlite:///from-secrets.db"
    monkeypatch.setenv("CRM_DATABASE_URL", "sqlite:///from-env.db")
    assert resolve_database_url(secrets_path=secrets) == "sqlite:///from-env.db"
    assert resolve_database_url("sqlite:///explicit.db", secrets_path=secrets) == "sqlite:///explicit.db"


def test_a_broken_secrets_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[connections.crm\nurl = ")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        resolve_database_url(secrets_path=secrets)


def test_bad_and_unreachable_urls_are_clear_errors():
    with pytest.raises(StoreError, match="not a database URL"):
        Store("no such thing")
    store = Store("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot reach the database postgresql"):
        store.data_version()


def test_schema_creation_is_idempotent_and_starts_at_version_zero(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'new' / 'crm.db'}")  # the folder is created too
    assert not store.has_schema() and store.data_version() == 0
    store.ensure_schema()
    store.ensure_schema()
    assert store.has_schema() and store.data_version() == 0
    for name in schema.BUSINESS_TABLES:
        assert store.row_count(name) == 0


def _customers(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": ids, "name": [f"Customer {i}" for i in ids],
                         "created_at": [datetime(2026, 1, 2, 3, 4, 5, 678901)] * len(ids)})


def test_replacing_data_bumps_the_version_and_a_failure_writes_nothing(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    assert store.replace_business_data({"customers": _customers(["A", "B"])}) == 1
    # the orders frame breaks NOT NULL on ordered_at: the customers delete/insert before it must roll back
    bad_orders = pl.DataFrame({"order_id": ["O1"], "customer_id": ["A"], "amount": [1.0]})
    with pytest.raises(Exception, match=r"(?i)not null"):
        store.replace_business_data({"customers": _customers(["X"]), "orders": bad_orders})
    assert store.data_version() == 1
    assert store.read("customers", ["customer_id"])["customer_id"].sort().to_list() == ["A", "B"]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Store:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'crm.db'}")
    tickets = pl.DataFrame({
        "ticket_id": ["T1", "T2", "T3"],
        "customer_id": ["A", None, "B"],
        "created_at": [datetime(2026, 1, 1, 8, 0, 0, 123456), datetime(2026, 1, 2), datetime(2026, 2, 1, 23, 59, 59)],
        "first_response_at": [datetime(2026, 1, 1, 9), None, None],
        "priority": ["urgent", None, "low"],
        "reopened": [0, 2, None],
    })
    store.replace_business_data({"customers": _customers(["A", "B"]), "tickets": tickets})
    return store


def test_both_read_paths_return_the_same_canonical_frame(small_store):
    cx = small_store.read_table("tickets", path="connectorx")
    plain = small_store.read_table("tickets", path="sqlalchemy")
    assert (cx.path, plain.path) == ("connectorx", "sqlalchemy")
    assert_frame_equal(cx.frame, plain.frame)
    assert cx.frame.schema == schema.polars_schema("tickets")
    first = cx.frame.sort("ticket_id").row(0, named=True)
    assert first["created_at"] == datetime(2026, 1, 1, 8, 0, 0, 123456)  # microseconds survive
    assert first["reopened"] == 0 and first["priority"] == "urgent"


def test_reads_project_columns_and_push_conditions_into_sql(small_store):
    table = schema.tickets
    read = small_store.read_table("tickets", ["ticket_id", "created_at"], where=[table.c.created_at < datetime(2026, 2, 1)])
    assert read.frame.columns == ["ticket_id", "created_at"]
    assert sorted(read.frame["ticket_id"].to_list()) == ["T1", "T2"]


def test_auto_read_falls_back_to_sqlalchemy_when_connectorx_fails(small_store, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(Store, "_read_connectorx", broken)
    read = small_store.read_table("tickets")
    assert read.path == "sqlalchemy" and read.frame.height == 3
    assert "driver exploded" in caplog.text
    with pytest.raises(StoreError, match="connectorx could not read tickets"):
        small_store.read_table("tickets", path="connectorx")
