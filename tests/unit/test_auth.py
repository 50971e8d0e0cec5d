"""Local users (crm/auth.py): argon2id hashes, login refusals, lockout, session expiry, scope, audit rows.

Most tests use a cheap argon2id hasher (``fast_hashes``) so a run stays quick; the hashing test uses the real
default parameters.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from crm import auth, demo, schema
from crm import store as crm_store
from crm.auth import AuthError, Scope, UserError
from crm.scope import ScopeError
from crm.store import Store

PASSWORD = "correct horse battery"
T0 = datetime(2026, 6, 1, 10, 0)
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def fast_hashes(monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as s:
        yield s


def _hash_of(store: Store, name: str) -> str:
    with store.connect() as conn:
        return conn.execute(sa.select(schema.users.c.password_hash).where(schema.users.c.username == name)).scalar_one()


def _actions(store: Store) -> list[tuple[str | None, str, dict]]:
    log = auth.read_audit(store)
    return [(r["actor"], r["action"], json.loads(r["detail"])) for r in log.to_dicts()]


def _refusal(store: Store, name: str, password: str, now: datetime) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(store, name, password, now=now)
    return caught.value


def test_the_stored_hash_is_argon2id_with_the_default_parameters_never_the_password(store):
    started = time.perf_counter()
    auth.add_user(store, "ann", "analyst", PASSWORD)
    took = time.perf_counter() - started
    digest = _hash_of(store, "ann")
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # argon2-cffi's defaults (RFC 9106 low-memory)
    assert PASSWORD not in digest
    auth.add_user(store, "bob", "analyst", PASSWORD)
    assert _hash_of(store, "bob") != digest  # a fresh salt per hash
    assert auth.authenticate(store, "ann", PASSWORD).name == "ann"
    with store.connect() as conn:  # the clear password is nowhere in the store
        for table in ("users", "audit_log"):
            text = " ".join(str(v) for row in conn.execute(sa.select(schema.table(table))).all() for v in row)
            assert PASSWORD not in text
    assert took < 10  # one hash: ~0.05-0.3 s on these machines (printed with -s)
    print(f"add_user with the default argon2 parameters: {took * 1000:.0f} ms")


@pytest.mark.usefixtures("fast_hashes")
def test_right_password_wrong_password_and_unknown_user(store):
    auth.add_user(store, "Ann.Smith", "manager", PASSWORD, scope=Scope(regions=("Europe",)), display_name="Ann Smith")
    user = auth.authenticate(store, " ANN.smith ", PASSWORD, now=T0)  # names are case-insensitive
    assert user == auth.User("ann.smith", "Ann Smith", "manager", Scope(regions=("Europe",)), False)
    wrong = _refusal(store, "ann.smith", PASSWORD + "!", T0)
    unknown = _refusal(store, "nobody", PASSWORD, T0)
    assert str(wrong) == str(unknown) == "wrong user name or password"
    assert wrong.reason == unknown.reason == "credentials"
    assert _refusal(store, "", PASSWORD, T0).reason == "credentials"
    assert auth.list_users(store)["last_login_at"].to_list() == [T0]


@pytest.mark.usefixtures("fast_hashes")
def test_five_failures_lock_the_account_for_15_minutes_even_for_the_right_password(store, monkeypatch):
    auth.add_user(store, "rep1", "rep", PASSWORD, scope=Scope(owners=("Ann",)))
    for attempt in range(4):
        assert _refusal(store, "rep1", "wrong password", T0 + timedelta(seconds=attempt)).reason == "credentials"
    fifth = _refusal(store, "rep1", "wrong password", T0 + timedelta(seconds=4))
    assert str(fifth) == "account locked until 10:16" and fifth.reason == "locked"  # locked until 10:15:04
    assert fifth.locked_until == T0 + timedelta(minutes=15, seconds=4)
    row = auth.list_users(store, now=T0 + timedelta(minutes=1)).row(0, named=True)
    assert row["locked"] is True and row["failed_attempts"] == 0

    checked: list[str] = []
    real_verify = auth._verify
    monkeypatch.setattr(auth, "_verify", lambda digest, password: checked.append(password) or real_verify(digest, password))
    still = _refusal(store, "rep1", PASSWORD, T0 + timedelta(minutes=15, seconds=3))
    assert str(still) == "account locked until 10:16" and checked == []  # a locked account's password is not even checked
    assert auth.authenticate(store, "rep1", PASSWORD, now=T0 + timedelta(minutes=15, seconds=4)).name == "rep1"
    assert not auth.list_users(store, now=T0)["locked"].item()

    lock_rows = [a for a in _actions(store) if a[1] == "login.lockout"]
    assert lock_rows == [("rep1", "login.lockout", {"user": "rep1", "attempts": 5, "until": "2026-06-01T10:15:04"})]


@pytest.mark.usefixtures("fast_hashes")
def test_a_lock_at_a_whole_minute_shows_that_minute_and_a_success_resets_the_count(store):
    auth.add_user(store, "ann", "analyst", PASSWORD)
    for _ in range(4):
        _refusal(store, "ann", "nope", T0)
    auth.authenticate(store, "ann", PASSWORD, now=T0)  # the count starts again
    for _ in range(4):
        assert _refusal(store, "ann", "nope", T0).reason == "credentials"
    assert str(_refusal(store, "ann", "nope", T0)) == "account locked until 10:15"
    # after the lock the count starts from zero: one more failure does not lock again
    assert _refusal(store, "ann", "nope", T0 + timedelta(minutes=16)).reason == "credentials"


@pytest.mark.usefixtures("fast_hashes")
def test_a_disabled_user_is_refused_and_enable_lets_them_in_again(store):
    auth.add_user(store, "boss", "admin", PASSWORD)
    auth.add_user(store, "ann", "analyst", PASSWORD)
    auth.disable_user(store, "ann", actor="boss")
    refused = _refusal(store, "ann", PASSWORD, T0)
    assert str(refused) == "account disabled" and refused.reason == "disabled"
    assert str(_refusal(store, "ann", "wrong password", T0)) == "wrong user name or password"  # no hint without the password
    assert auth.get_user(store, "ann") == auth.User("ann", "ann", "analyst", Scope(), True)
    auth.enable_user(store, "ann", actor="boss")
    assert auth.authenticate(store, "ann", PASSWORD, now=T0).disabled is False


@pytest.mark.usefixtures("fast_hashes")
def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(store):
    auth.add_user(store, "boss", "admin", PASSWORD)
    with pytest.raises(UserError, match="last enabled admin"):
        auth.disable_user(store, "boss")
    with pytest.raises(UserError, match="last enabled admin"):
        auth.set_role(store, "boss", "analyst")
    auth.add_user(store, "second", "admin", PASSWORD)
    auth.set_role(store, "boss", "analyst")
    assert auth.get_user(store, "boss").role == "analyst"


def test_session_expiry_after_8_idle_hours_and_the_setting():
    seen = datetime(2026, 6, 1, 9, 0)
    assert not auth.session_expired(seen, seen + timedelta(hours=8) - timedelta(seconds=1))
    assert auth.session_expired(seen, seen + timedelta(hours=8))
    assert auth.session_expired(None, seen)
    assert auth.session_expired(seen, seen + timedelta(minutes=90), idle_hours=1.5)
    assert not auth.session_expired(seen, seen + timedelta(minutes=89), idle_hours=1.5)
    assert auth.session_idle_hours({}) == 8
    assert auth.session_idle_hours({"CRM_SESSION_IDLE_HOURS": "2.5"}) == 2.5
    assert auth.session_idle_hours({"CRM_SESSION_IDLE_HOURS": "soon"}) == 8
    assert auth.session_idle_hours({"CRM_SESSION_IDLE_HOURS": "-1"}) == 8


@pytest.mark.usefixtures("fast_hashes")
def test_short_passwords_bad_roles_and_missing_scopes_are_refused_and_write_nothing(store):
    with pytest.raises(UserError, match="at least 10 characters"):
        auth.add_user(store, "ann", "analyst", "123456789")
    with pytest.raises(UserError, match="unknown role 'boss'"):
        auth.add_user(store, "ann", "boss", PASSWORD)
    with pytest.raises(UserError, match="a rep needs a scope with an owner"):
        auth.add_user(store, "ann", "rep", PASSWORD, scope=Scope(regions=("Europe",)))
    with pytest.raises(UserError, match="a manager needs a scope"):
        auth.add_user(store, "ann", "manager", PASSWORD)
    with pytest.raises(UserError, match="bad user name"):
        auth.add_user(store, "ann smith", "analyst", PASSWORD)
    with pytest.raises(UserError, match="at most 200 characters"):
        auth.add_user(store, "ann", "analyst", PASSWORD, display_name="A" * 201)
    assert auth.list_users(store).height == 0 and auth.read_audit(store).height == 0
    auth.add_user(store, "ann", "analyst", PASSWORD)
    with pytest.raises(UserError, match="exists"):
        auth.add_user(store, "ANN", "analyst", PASSWORD)
    with pytest.raises(UserError, match="at least 10 characters"):
        auth.reset_password(store, "ann", "short")
    with pytest.raises(UserError, match="no user named 'nobody'"):
        auth.reset_password(store, "nobody", PASSWORD)
    with pytest.raises(UserError, match="a rep needs"):
        auth.set_role(store, "ann", "rep")
    assert [a[1] for a in _actions(store)] == ["user.added"]  # refused changes leave no audit row


@pytest.mark.usefixtures("fast_hashes")
def test_every_change_and_login_writes_one_audit_row_and_no_data_version(store):
    store.ensure_schema()
    version = store.data_version()
    auth.add_user(store, "boss", "admin", PASSWORD, actor="setup", now=T0)
    auth.add_user(store, "ann", "analyst", PASSWORD, actor="boss", now=T0)
    auth.set_role(store, "ann", "rep", scope=Scope(owners=("Ann",)), actor="boss", now=T0)
    auth.set_scope(store, "ann", Scope.parse(["owner=Ann", "team=East"]), actor="boss", now=T0)
    auth.reset_password(store, "ann", PASSWORD + "2", actor="boss", now=T0)
    auth.disable_user(store, "ann", actor="boss", now=T0)
    auth.enable_user(store, "ann", actor="boss", now=T0)
    auth.authenticate(store, "ann", PASSWORD + "2", now=T0)
    _refusal(store, "ann", PASSWORD, T0)
    _refusal(store, "ghost", PASSWORD, T0)
    assert _actions(store) == [
        ("setup", "user.added", {"user": "boss", "role": "admin", "scope": "all", "display_name": "boss"}),
        ("boss", "user.added", {"user": "ann", "role": "analyst", "scope": "all", "display_name": "ann"}),
        ("boss", "user.role_changed", {"user": "ann", "from": "analyst", "to": "rep", "scope": "owner=Ann"}),
        ("boss", "user.scope_changed", {"user": "ann", "from": "owner=Ann", "to": "team=East; owner=Ann"}),
        ("boss", "user.password_reset", {"user": "ann"}),
        ("boss", "user.disabled", {"user": "ann"}),
        ("boss", "user.enabled", {"user": "ann"}),
        ("ann", "login.success", {"user": "ann", "role": "rep", "rehashed": False}),
        ("ann", "login.failure", {"user": "ann", "reason": "wrong password", "attempt": 1}),
        ("ghost", "login.failure", {"user": "ghost", "reason": "unknown user"}),
    ]
    assert set(auth.read_audit(store)["at"].to_list()) == {T0}
    assert store.data_version() == version  # users and audit rows are not business data
    assert auth.read_audit(store, limit=2)["action"].to_list() == ["login.failure", "login.failure"]
    assert auth.read_audit(store, since=T0.date() + timedelta(days=1)).height == 0


def test_audit_writes_in_the_callers_transaction_and_refuses_secrets(store):
    store.ensure_schema()
    with pytest.raises(RuntimeError), store.transaction() as conn:
        auth.audit(conn, "boss", "settings.changed", {"key": "sla_targets"})
        raise RuntimeError("the change failed")
    assert auth.read_audit(store).height == 0  # rolled back with the change
    auth.audit(store, "boss", "export", {"rows": 3, "filters": {"region": ["Europe"]}})
    assert _actions(store) == [("boss", "export", {"rows": 3, "filters": {"region": ["Europe"]}})]
    with pytest.raises(ValueError, match="must not hold password"):
        auth.audit(store, "boss", "user.added", {"user": "x", "Password": "hunter2hunter2"})


def test_a_hash_made_with_older_parameters_is_remade_at_the_next_login(store, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    auth.add_user(store, "ann", "analyst", PASSWORD)
    old = _hash_of(store, "ann")
    assert "m=1024,t=1,p=1" in old
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    auth.authenticate(store, "ann", PASSWORD, now=T0)
    new = _hash_of(store, "ann")
    assert new.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert _actions(store)[-1][2]["rehashed"] is True
    auth.authenticate(store, "ann", PASSWORD, now=T0)
    assert _hash_of(store, "ann") == new and _actions(store)[-1][2]["rehashed"] is False


@pytest.mark.usefixtures("fast_hashes")
def test_list_users_shows_no_hashes(store):
    auth.add_user(store, "ann", "manager", PASSWORD, scope=Scope.parse(["region=Europe", "team=East", "owner=Bo Li"]))
    table = auth.list_users(store, now=T0)
    assert table.columns == ["name", "display_name", "role", "scope", "disabled", "locked", "locked_until",
                             "failed_attempts", "last_login_at", "password_changed_at", "created_at"]
    row = table.row(0, named=True)
    assert row["scope"] == "region=Europe; team=East; owner=Bo Li"
    assert not any("argon2" in str(v) for v in row.values())


def test_scope_parse_json_and_an_unreadable_scope_fails_closed(store, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    scope = Scope.parse(["region= Europe ", "REGION=Asia", "owner=Bo Li", "region=Europe"])
    assert scope == Scope(regions=("Asia", "Europe"), owners=("Bo Li",))
    assert Scope.from_json(scope.to_json()) == scope and Scope.from_json(None).unrestricted
    for bad in (["country=FR"], ["region"], ["owner="]):
        with pytest.raises(ScopeError, match="a scope is region=NAME"):
            Scope.parse(bad)
    with pytest.raises(ScopeError, match="unreadable scope"):
        Scope.from_json('{"regions": "Europe"}')
    auth.add_user(store, "ann", "analyst", PASSWORD)
    with store.transaction() as conn:
        conn.execute(schema.users.update().values(scope="{not json"))
    refused = _refusal(store, "ann", PASSWORD, T0)
    assert refused.reason == "scope" and "ask an admin" in str(refused)
    assert auth.list_users(store)["scope"].to_list() == ["(unreadable)"]


def test_the_demo_users_one_per_role_share_the_demo_password(store):
    started = time.perf_counter()
    assert auth.add_demo_users(store) == ["exec", "manager", "analyst", "rep", "admin"]
    took = time.perf_counter() - started
    print(f"add_demo_users (one default argon2 hash for five users): {took * 1000:.0f} ms")
    table = auth.list_users(store)
    assert sorted(table["role"].to_list()) == sorted(auth.ROLES)
    assert dict(zip(table["name"], table["scope"], strict=True)) == {
        "admin": "all", "analyst": "all", "exec": "all", "manager": "region=Europe", "rep": f"owner={auth.DEMO_OWNER}"}
    assert auth.DEMO_OWNER in demo.SALES_TEAMS[demo.REGION_TEAM["Europe"]]  # the demo rep owns real demo deals
    for name in table["name"]:
        assert auth.authenticate(store, name, auth.DEMO_PASSWORD).name == name
    assert auth.add_demo_users(store) == []  # idempotent; existing users are left alone
    assert [a[:2] for a in _actions(store)][:5] == [("demo", "user.added")] * 5


@pytest.mark.usefixtures("fast_hashes")
def test_an_older_store_gains_the_new_user_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (username VARCHAR(120) PRIMARY KEY, display_name VARCHAR(200), "
                     "role VARCHAR(20), password_hash VARCHAR(300), created_at DATETIME)")
        conn.execute("CREATE TABLE crm_meta (key VARCHAR(60) PRIMARY KEY, value VARCHAR(400))")
        conn.execute("INSERT INTO crm_meta VALUES ('data_version', '3')")
        conn.execute("INSERT INTO users (username, role) VALUES ('legacy', 'analyst')")
    with Store(f"sqlite:///{path}") as store:
        auth.add_user(store, "ann", "analyst", PASSWORD)
        assert auth.list_users(store)["name"].to_list() == ["ann", "legacy"]
        assert str(_refusal(store, "legacy", PASSWORD, T0)) == "wrong user name or password"  # no hash: no login
        assert store.data_version() == 3


@pytest.mark.usefixtures("fast_hashes")
def test_a_store_busy_writing_does_not_end_a_page_view(tmp_path, monkeypatch, caplog):
    import crm.store

    monkeypatch.setattr(crm.store, "SQLITE_BUSY_SECONDS", 0.2)  # read when the Store opens its engine
    path = tmp_path / "crm.db"
    with Store(f"sqlite:///{path}") as store:
        auth.add_user(store, "ann", "analyst", PASSWORD)
        start = datetime.now() + timedelta(seconds=1)  # after the password was set: the session stays valid
        token = auth.create_session(store, "ann", start)
        other = sqlite3.connect(path)  # another writer (an import, another server) holds the write lock
        other.execute("BEGIN IMMEDIATE")
        try:
            later = start + timedelta(minutes=5)  # past the touch interval: the check would write last_seen_at
            assert auth.check_session(store, token, later).user.name == "ann"  # reads still work
        finally:
            other.rollback()
            other.close()
        assert "could not note session activity (database is locked)" in caplog.text
        with store.connect() as conn:
            seen = conn.execute(sa.select(schema.auth_sessions.c.last_seen_at)).scalar()
        assert seen == start  # not touched while locked
        assert auth.check_session(store, token, start + timedelta(minutes=6)).user.name == "ann"
        with store.connect() as conn:
            assert conn.execute(sa.select(schema.auth_sessions.c.last_seen_at)).scalar() == start + timedelta(minutes=6)


def test_sqlite_waits_for_a_lock_longer_than_pythons_five_seconds(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as store, store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == int(crm_store.SQLITE_BUSY_SECONDS * 1000) > 5000
