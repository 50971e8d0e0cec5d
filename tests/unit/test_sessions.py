"""Browser sessions and the OIDC mapping (crm/auth.py): create, resume, idle expiry, sign-out, refused users."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from crm import auth, schema
from crm.auth import AuthError, Scope
from crm.store import Store

PASSWORD = "correct horse battery"
T0 = datetime(2026, 6, 1, 10, 0)
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    with Store(f"sqlite:///{tmp_path / 'crm.db'}") as s:
        auth.add_user(s, "ann", "analyst", PASSWORD, display_name="Ann Analyst", now=T0)
        auth.add_user(s, "root", "admin", PASSWORD, now=T0)
        yield s


def _session_rows(store: Store) -> list[dict]:
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.auth_sessions)).all()]


def _actions(store: Store) -> list[tuple[str | None, str, dict]]:
    return [(r["actor"], r["action"], json.loads(r["detail"])) for r in auth.read_audit(store).to_dicts()]


def test_a_session_keeps_only_the_sha256_of_a_random_token(store):
    token = auth.create_session(store, "Ann", now=T0)
    other = auth.create_session(store, "ann", now=T0)
    assert token != other and len(token) == 43  # 32 random bytes, URL-safe base64
    rows = _session_rows(store)
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(t.encode()).hexdigest() for t in (token, other)]
    assert rows[0] | {"token_hash": None} == {"token_hash": None, "username": "ann", "created_at": T0,
                                               "last_seen_at": T0, "ended_at": None, "end_reason": None}
    assert token not in repr(rows)


def test_a_live_session_resumes_as_its_user_read_afresh(store):
    token = auth.create_session(store, "ann", now=T0)
    user = auth.resume_session(store, token, now=T0 + timedelta(hours=1), idle_hours=8)
    assert user == auth.User("ann", "Ann Analyst", "analyst", Scope())
    auth.set_role(store, "ann", "manager", scope=Scope(regions=("Europe",)), now=T0)
    user = auth.resume_session(store, token, now=T0 + timedelta(hours=2), idle_hours=8)
    assert user is not None and (user.role, user.scope.regions) == ("manager", ("Europe",))


def test_last_seen_moves_at_most_once_a_minute(store):
    token = auth.create_session(store, "ann", now=T0)
    auth.resume_session(store, token, now=T0 + timedelta(seconds=59), idle_hours=8)
    assert _session_rows(store)[0]["last_seen_at"] == T0
    auth.resume_session(store, token, now=T0 + timedelta(seconds=60), idle_hours=8)
    assert _session_rows(store)[0]["last_seen_at"] == T0 + timedelta(seconds=60)
    auth.resume_session(store, token, now=T0 + timedelta(seconds=90), idle_hours=8)
    assert _session_rows(store)[0]["last_seen_at"] == T0 + timedelta(seconds=60)


def test_activity_keeps_a_session_alive_past_the_idle_limit_counted_from_its_start(store):
    token = auth.create_session(store, "ann", now=T0)
    for hour in (7, 14, 21):
        assert auth.resume_session(store, token, now=T0 + timedelta(hours=hour), idle_hours=8) is not None


def test_a_session_idle_for_the_limit_ends_for_good_and_says_so(store):
    token = auth.create_session(store, "ann", now=T0)
    late = T0 + timedelta(hours=8)
    assert auth.check_session(store, token, now=late, idle_hours=8) == auth.SessionCheck(None, "idle")
    row = _session_rows(store)[0]
    assert (row["ended_at"], row["end_reason"]) == (late, "idle")
    # coming back later (or from another tab) finds it over, with the same reason
    assert auth.check_session(store, token, now=late + timedelta(minutes=1), idle_hours=8) == auth.SessionCheck(None, "idle")
    assert _actions(store)[-1] == ("ann", "session.expired", {"user": "ann", "reason": "idle", "idle_hours": 8})


def test_the_idle_limit_comes_from_the_environment_by_default(store, monkeypatch):
    monkeypatch.setenv(auth.IDLE_HOURS_ENV, "0.5")
    token = auth.create_session(store, "ann", now=T0)
    assert auth.resume_session(store, token, now=T0 + timedelta(minutes=29)) is not None
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=59)).ended == "idle"  # 30 idle minutes


def test_signing_out_ends_the_session_once(store):
    token = auth.create_session(store, "ann", now=T0)
    assert auth.end_session(store, token, now=T0 + timedelta(minutes=5))
    assert not auth.end_session(store, token, now=T0 + timedelta(minutes=6))
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=7), idle_hours=8) == auth.SessionCheck(None, "signed_out")
    assert [a for a in _actions(store) if a[1] == "logout"] == [("ann", "logout", {"user": "ann"})]
    assert not auth.end_session(store, "no-such-token")
    assert not auth.end_session(store, "")


@pytest.mark.parametrize("token", ["", None, "not-a-token", "x" * 500])
def test_an_unknown_token_is_nobody(store, token):
    assert auth.check_session(store, token, now=T0, idle_hours=8) == auth.SessionCheck(None, "unknown")


def test_a_disabled_user_s_session_ends(store):
    token = auth.create_session(store, "ann", now=T0)
    auth.disable_user(store, "ann", now=T0)
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=1), idle_hours=8) == auth.SessionCheck(None, "disabled")
    auth.enable_user(store, "ann", now=T0)
    assert auth.resume_session(store, token, now=T0 + timedelta(minutes=2), idle_hours=8) is None  # ended for good


def test_a_locked_user_s_session_ends(store):
    token = auth.create_session(store, "ann", now=T0)
    for _ in range(auth.MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthError):
            auth.authenticate(store, "ann", "wrong password!", now=T0)
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=1), idle_hours=8).ended == "locked"


def test_a_new_password_ends_the_sessions_begun_before_it(store):
    before = auth.create_session(store, "ann", now=T0)
    auth.reset_password(store, "ann", "another long password", now=T0 + timedelta(hours=1))
    after = auth.create_session(store, "ann", now=T0 + timedelta(hours=2))
    at = T0 + timedelta(hours=3)
    assert auth.check_session(store, before, now=at, idle_hours=8).ended == "password_changed"
    assert auth.resume_session(store, after, now=at, idle_hours=8) is not None


def test_a_session_of_a_user_with_an_unreadable_scope_fails_closed(store):
    token = auth.create_session(store, "ann", now=T0)
    with store.transaction() as conn:
        conn.execute(schema.users.update().where(schema.users.c.username == "ann").values(scope="{broken"))
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=1), idle_hours=8).ended == "scope"


def test_a_session_of_a_deleted_user_ends(store):
    token = auth.create_session(store, "ann", now=T0)
    with store.transaction() as conn:
        conn.execute(schema.users.delete().where(schema.users.c.username == "ann"))
    assert auth.check_session(store, token, now=T0 + timedelta(minutes=1), idle_hours=8).ended == "unknown_user"


def test_sessions_ended_a_month_ago_are_deleted_when_a_new_one_starts(store):
    old = auth.create_session(store, "ann", now=T0)
    auth.end_session(store, old, now=T0)
    live = auth.create_session(store, "root", now=T0)
    auth.create_session(store, "ann", now=T0 + timedelta(days=31))
    assert {r["token_hash"] for r in _session_rows(store)} >= {auth.token_digest(live)}
    assert auth.token_digest(old) not in {r["token_hash"] for r in _session_rows(store)}


def test_an_older_store_gets_the_sessions_table(tmp_path):
    path = tmp_path / "old.db"
    with Store(f"sqlite:///{path}") as old:
        old.ensure_schema()
        with old.transaction() as conn:
            conn.execute(sa.text("DROP TABLE auth_sessions"))
    with Store(f"sqlite:///{path}") as reopened:
        token = auth.create_session(reopened, "anyone")
        assert len(_session_rows(reopened)) == 1 and token


# --- OIDC: the provider's e-mail address names the local user ----------------------------------------------


def test_an_oidc_address_maps_to_the_local_user_of_that_name(store):
    auth.add_user(store, "ada@example.com", "executive", PASSWORD, display_name="Ada", now=T0)
    user = auth.authenticate_oidc(store, "  Ada@Example.COM ", now=T0)
    assert (user.name, user.role) == ("ada@example.com", "executive")
    assert _actions(store)[-1] == ("ada@example.com", "login.success",
                                   {"user": "ada@example.com", "method": "oidc", "role": "executive"})
    assert auth.list_users(store).filter(name="ada@example.com")["last_login_at"].to_list() == [T0]


@pytest.mark.parametrize("email", ["stranger@example.com", "", None])
def test_an_oidc_address_without_a_local_user_is_not_registered(store, email):
    with pytest.raises(AuthError) as caught:
        auth.authenticate_oidc(store, email, now=T0)
    assert str(caught.value) == "not registered here: ask an admin to add you"
    assert _actions(store)[-1][1:] == ("login.failure", {"user": (email or "").lower(), "method": "oidc",
                                                         "reason": "not registered"})


def test_an_oidc_sign_in_is_refused_for_a_disabled_or_locked_user(store):
    auth.add_user(store, "bo@example.com", "analyst", PASSWORD, now=T0)
    auth.disable_user(store, "bo@example.com", now=T0)
    with pytest.raises(AuthError, match="account disabled"):
        auth.authenticate_oidc(store, "bo@example.com", now=T0)
    auth.enable_user(store, "bo@example.com", now=T0)
    for _ in range(auth.MAX_FAILED_ATTEMPTS):
        with pytest.raises(AuthError):
            auth.authenticate(store, "bo@example.com", "wrong password!", now=T0)
    with pytest.raises(AuthError, match="account locked until 10:15"):
        auth.authenticate_oidc(store, "bo@example.com", now=T0 + timedelta(minutes=1))
