"""Shared fixtures: demo stores (SQLite, PostgreSQL), required-resource checks, AppTest hygiene."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from crm import demo
from crm.store import Store

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("CRM_SNAPSHOT_DIR", tempfile.mkdtemp(prefix="crm-test-snapshots-"))
"""Prepared snapshots (crm.snapshot) of the test stores go to a folder of this run, never to data/snapshots;
the servers the browser tests start inherit it."""
AS_OF = date(2026, 6, 30)
"""Tests use a fixed as-of date so numbers do not move with the calendar."""
SEED = 11
PG_ADMIN_URL = os.environ.get("CRM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require(resource: str, reason: str) -> None:
    """Skip for a missing resource, except where CI demands it (then fail loudly)."""
    if os.environ.get(f"CRM_REQUIRE_{resource.upper()}") == "1":
        pytest.fail(f"{resource} is required here (CI) but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def demo_frames():
    """The demo data for the fixed seed and as-of date (generated once per run)."""
    return demo.generate(demo.DemoSpec(seed=SEED, scale=0.25, as_of=AS_OF))


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory, demo_frames) -> Store:
    """A SQLite file store filled with the demo data."""
    path = tmp_path_factory.mktemp("sqlite") / "crm.db"
    store = Store(f"sqlite:///{path}")
    store.replace_business_data(demo_frames)
    return store


@pytest.fixture(scope="session")
def new_pg_url() -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases, all dropped at the end of the run."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in requirements
        require("postgres", "psycopg is not installed")
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    created: list[str] = []

    def create() -> str:
        name = f"crm_test_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            require("postgres", f"no PostgreSQL at {admin}: {str(exc).strip().splitlines()[0]}")
        created.append(name)
        return f"{base}/{name}"

    yield create
    if created:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(new_pg_url) -> str:
    """One PostgreSQL database for this run (dropped afterwards)."""
    return new_pg_url()


@pytest.fixture(scope="session")
def pg_store(pg_url, demo_frames) -> Iterator[Store]:
    """A PostgreSQL store filled with the same demo data as ``sqlite_store``."""
    store = Store(pg_url)
    store.replace_business_data(demo_frames)
    yield store
    store.close()


def pytest_collection_modifyitems(config, items):
    """Where CI requires a layer (CRM_REQUIRE_BROWSER / CRM_REQUIRE_POSTGRES), it must be collected."""
    for resource in ("browser", "postgres"):
        if os.environ.get(f"CRM_REQUIRE_{resource.upper()}") != "1":
            continue
        if not any(item.get_closest_marker(resource) for item in items):
            raise pytest.UsageError(f"CRM_REQUIRE_{resource.upper()}=1 but no {resource} test was collected")
