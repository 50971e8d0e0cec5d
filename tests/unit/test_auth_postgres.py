"""Users on PostgreSQL: add, authenticate, lockout and their audit rows match SQLite exactly."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from polars.testing import assert_frame_equal

from crm import auth
from crm.auth import AuthError, Scope
from crm.store import Store

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
T0 = datetime(2026, 6, 1, 10, 0)


def _story(store: Store) -> list[str]:
    """The same sequence of changes and logins on any store; returns what each login said."""
    said: list[str] = []
    auth.add_user(store, "boss", "admin", PASSWORD, actor="setup", now=T0)
    auth.add_user(store, "Rep1", "rep", PASSWORD, scope=Scope.parse(["owner=Ann", "region=Europe"]), actor="boss", now=T0)
    auth.add_demo_users(store, now=T0)
    attempts = [("rep1", PASSWORD, 0)] + [("rep1", "wrong password", s) for s in range(1, 6)] + [
        ("rep1", PASSWORD, 60), ("ghost", PASSWORD, 61), ("x" * 300, PASSWORD, 62),
        ("rep1", PASSWORD, 15 * 60 + 5), ("rep", auth.DEMO_PASSWORD, 999)]
    for name, password, seconds in attempts:
        try:
            said.append(auth.authenticate(store, name, password, now=T0 + timedelta(seconds=seconds)).name)
        except AuthError as exc:
            said.append(str(exc))
    auth.disable_user(store, "rep1", actor="boss", now=T0)
    try:
        auth.authenticate(store, "rep1", PASSWORD, now=T0 + timedelta(hours=1))
    except AuthError as exc:
        said.append(str(exc))
    return said


def test_users_and_audit_rows_match_sqlite(new_pg_url, tmp_path, request, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    pg = Store(new_pg_url())
    lite = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    request.addfinalizer(pg.close)
    request.addfinalizer(lite.close)
    said = {store.dialect: _story(store) for store in (pg, lite)}
    assert said["postgresql"] == said["sqlite"] == [
        "rep1", "wrong user name or password", "wrong user name or password", "wrong user name or password",
        "wrong user name or password", "account locked until 10:16", "account locked until 10:16",
        "wrong user name or password", "wrong user name or password", "rep1", "rep", "account disabled"]
    assert_frame_equal(auth.list_users(pg, now=T0), auth.list_users(lite, now=T0))
    assert_frame_equal(auth.read_audit(pg), auth.read_audit(lite))
    assert auth.read_audit(pg)["action"].value_counts().sort("action").rows() == [
        ("login.failure", 9), ("login.lockout", 1), ("login.success", 3), ("user.added", 7), ("user.disabled", 1)]
    assert auth.read_audit(pg)["actor"].str.len_chars().max() == 120  # a 300-character name typed at login is cut
    assert pg.data_version() == lite.data_version() == 0
