"""Local users: argon2id password hashes, roles, row scope, lockout, browser sessions and the audit log.

Users live in the store's ``users`` table, so every app server and the CLI
agree. A password is only ever kept as an argon2id hash (argon2-cffi's default
parameters, RFC 9106's low-memory profile); it is never stored, logged or
audited in clear. Every change, and every login attempt, writes one
``audit_log`` row through :func:`audit`, in the same transaction as the change.
Neither users nor audit rows are business data: they never bump the data version.

Login refusals are :class:`AuthError` with a plain message meant for the person
at the login form: the same "wrong user name or password" for an unknown name
and a wrong password; "account locked until HH:MM" from the 5th failed attempt
in a row, for 15 minutes (a locked account is refused even with the right
password, and its password is not checked); "account disabled".

A signed-in browser holds a session token (:func:`create_session`): 256 random bits, kept by the browser
in a cookie so a reload or a link keeps the person signed in; the store keeps only its SHA-256 in
``auth_sessions``. :func:`resume_session` turns a token back into the user on every page run and ends the
session when it was idle ``CRM_SESSION_IDLE_HOURS`` (default 8), or its user was disabled, locked or
given a new password since.

No Streamlit here: the login page (crm.ui.session), roles on pages and the row-level scope build on this API.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import secrets
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from crm import schema
from crm.roles import ROLES
from crm.scope import Scope, ScopeError
from crm.store import Store

log = logging.getLogger(__name__)


SCOPE_REQUIRED: dict[str, str] = {"manager": "a region, team or owner", "rep": "an owner"}
"""Roles that must have a scope, and what it must hold: an empty scope means every row, which a manager
or a rep must never get by accident. The other roles see every row unless given a scope."""

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
"""Longer input is refused before hashing (a megabyte "password" is a way to burn CPU, not a password)."""
MAX_FAILED_ATTEMPTS = 5
LOCK_DURATION = timedelta(minutes=15)

IDLE_HOURS_ENV = "CRM_SESSION_IDLE_HOURS"
"""Environment variable: hours without activity after which a session ends (default 8)."""
DEFAULT_IDLE_HOURS = 8.0

WRONG_CREDENTIALS = "wrong user name or password"
DISABLED = "account disabled"
NOT_REGISTERED = "not registered here: ask an admin to add you"

SESSION_TOUCH_INTERVAL = timedelta(minutes=1)
"""A session's last activity is written at most this often: every click reruns the page, and a write per
rerun would cost more than it tells (idle limits are hours)."""
SESSION_KEEP = timedelta(days=30)
"""Ended sessions are deleted this long after they ended (the audit log keeps the logins and logouts)."""
_TOKEN_BYTES = 32

HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (t=3, m=64 MiB, p=4). Hashes made with other parameters are
re-made with these at the next successful login (``check_needs_rehash``)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,119}")
_SECRET_KEYS = frozenset({"password", "password_hash", "hash", "secret"})

# --- demo users -----------------------------------------------------------------

DEMO_PASSWORD = "demo-only-password"
"""The one password of the demo users: public (README, login page), for the embedded demo store only."""
DEMO_OWNER = "Elena Rossi"
"""The demo rep's own deals: a sales owner of crm.demo (Team Borealis, Europe)."""


class AuthError(Exception):
    """A refused login; ``str()`` is the message for the person, ``reason`` is for code and the audit log
    (``credentials``, ``locked``, ``disabled`` or ``scope``)."""

    def __init__(self, message: str, reason: str, locked_until: datetime | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.locked_until = locked_until


class UserError(ScopeError):
    """A user change that cannot be made (unknown user, bad name, short password, ...); nothing was written."""


@dataclass(frozen=True)
class User:
    """A signed-in (or looked-up) person; never holds the password or its hash."""

    name: str
    display_name: str
    role: str
    scope: Scope
    disabled: bool = False


# --- audit ----------------------------------------------------------------------------


def audit(target: Store | Connection, actor: str | None, action: str, detail: Mapping[str, Any] | None = None,
          *, at: datetime | None = None) -> None:
    """Append one audit row: who (``actor``), what (``action``, e.g. ``user.added``), ``detail`` as JSON.

    Given a Connection it writes inside the caller's transaction (so the row and the change it records
    commit or roll back together); given a Store it writes in a transaction of its own. Audit rows do
    not bump the data version. A detail naming a password or hash is refused: secrets never reach the log.
    """
    detail = dict(detail or {})
    leaked = _SECRET_KEYS & {k.lower() for k in detail}
    if leaked:
        raise ValueError(f"an audit detail must not hold {', '.join(sorted(leaked))}")
    row = {"at": at or _now(), "actor": None if actor is None else actor[:_ACTOR_LENGTH], "action": action,
           "detail": json.dumps(detail, sort_keys=True, default=_json_value, ensure_ascii=False)}
    if isinstance(target, Store):
        _ready(target)
        with target.transaction() as conn:
            conn.execute(schema.audit_log.insert().values(**row))
    else:
        target.execute(schema.audit_log.insert().values(**row))


def read_audit(store: Store, limit: int | None = None, since: date | datetime | None = None) -> pl.DataFrame:
    """The audit log, oldest first: ``id``, ``at``, ``actor``, ``action``, ``detail`` (JSON text).

    ``since`` keeps entries at or after it (a date: from its midnight); ``limit`` keeps the newest N.
    """
    columns = {"id": pl.Int64(), "at": pl.Datetime("us"), "actor": pl.String(), "action": pl.String(),
               "detail": pl.String()}
    if not store.has_schema():
        return pl.DataFrame(schema=columns)
    log_table = schema.audit_log
    query = sa.select(*[log_table.c[c] for c in columns]).order_by(log_table.c.id.desc())
    if since is not None:
        start = since if isinstance(since, datetime) else datetime.combine(since, datetime.min.time())
        query = query.where(log_table.c.at >= start)
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        if not sa.inspect(conn).has_table("audit_log"):
            return pl.DataFrame(schema=columns)
        rows = [tuple(r) for r in conn.execute(query).all()]
    return pl.DataFrame(list(reversed(rows)), schema=columns, orient="row")


# --- validation -----------------------------------------------------------------------


def normal_name(name: str) -> str:
    """A user name as stored: stripped and lower-cased (names are case-insensitive)."""
    return name.strip().lower()


def check_name(name: str) -> str:
    """The stored form of a new user name, or UserError."""
    normal = normal_name(name)
    if not _NAME.fullmatch(normal):
        raise UserError(f"bad user name {name!r}: use 1-120 letters, digits, '.', '_', '@' or '-', "
                        "starting with a letter or digit")
    return normal


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def check_role_scope(role: str, scope: Scope) -> None:
    """A manager needs some scope, a rep an owner (SCOPE_REQUIRED)."""
    need = SCOPE_REQUIRED.get(role)
    if need is None:
        return
    has = bool(scope.owners) if role == "rep" else not scope.unrestricted
    if not has:
        raise UserError(f"a {role} needs a scope with {need} (e.g. --scope "
                        f"{'owner' if role == 'rep' else 'region'}=NAME); an empty scope would show every row")


def check_password(password: str) -> None:
    """At least MIN_PASSWORD_LENGTH characters (and at most MAX_PASSWORD_LENGTH), not only spaces."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters "
                        f"(this one has {len(password)}); nothing was changed")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password has at most {MAX_PASSWORD_LENGTH} characters; nothing was changed")
    if not password.strip():
        raise UserError("a password cannot be only spaces; nothing was changed")


def hash_password(password: str) -> str:
    """An argon2id hash (``$argon2id$...``) with a fresh random salt."""
    check_password(password)
    return HASHER.hash(password)


# --- user changes ---------------------------------------------------------------------


def add_user(store: Store, name: str, role: str, password: str, scope: Scope | None = None,
             display_name: str | None = None, actor: str | None = None, now: datetime | None = None) -> User:
    """Create a user; UserError (nothing written) for a taken or bad name, an unknown role, a role without the
    scope it needs, or a short password. Audited as ``user.added``."""
    normal = check_name(name)
    check_role(role)
    scope = scope or Scope()
    check_role_scope(role, scope)
    digest = hash_password(password)  # slow: before the transaction
    at = now or _now()
    shown = (display_name or "").strip() or normal
    if len(shown) > 200:
        raise UserError("a display name has at most 200 characters; nothing was changed")
    _ready(store)
    with store.transaction() as conn:
        if _row(conn, normal) is not None:
            raise UserError(f"a user named {normal!r} exists; nothing was changed")
        conn.execute(schema.users.insert().values(
            username=normal, display_name=shown, role=role, password_hash=digest, created_at=at,
            scope=scope.to_json(), disabled=False, failed_attempts=0, locked_until=None,
            password_changed_at=at, last_login_at=None))
        audit(conn, actor, "user.added", {"user": normal, "role": role, "scope": scope.describe(),
                                          "display_name": shown}, at=at)
    return User(normal, shown, role, scope)


def disable_user(store: Store, name: str, actor: str | None = None, now: datetime | None = None) -> User:
    """Refuse every future login of a user (the row stays: the audit log names it). The last enabled admin
    cannot be disabled. Audited as ``user.disabled``."""
    with _change(store, name) as (conn, row):
        if _is_enabled_admin(row) and _enabled_admins(conn) <= 1:
            raise UserError(f"{row.username} is the last enabled admin; add or enable another admin first")
        _update(conn, row.username, disabled=True)
        audit(conn, actor, "user.disabled", {"user": row.username}, at=now)
    return _user(row, disabled=True)


def enable_user(store: Store, name: str, actor: str | None = None, now: datetime | None = None) -> User:
    """Allow logins again; also lifts a lockout and clears the failed attempts. Audited as ``user.enabled``."""
    with _change(store, name) as (conn, row):
        _update(conn, row.username, disabled=False, failed_attempts=0, locked_until=None)
        audit(conn, actor, "user.enabled", {"user": row.username}, at=now)
    return _user(row, disabled=False)


def reset_password(store: Store, name: str, password: str, actor: str | None = None, now: datetime | None = None) -> User:
    """Set a new password (hashed); lifts a lockout. Audited as ``user.password_reset`` (never the password)."""
    digest = hash_password(password)
    at = now or _now()
    with _change(store, name) as (conn, row):
        _update(conn, row.username, password_hash=digest, password_changed_at=at, failed_attempts=0, locked_until=None)
        audit(conn, actor, "user.password_reset", {"user": row.username}, at=at)
    return _user(row)


def set_role(store: Store, name: str, role: str, scope: Scope | None = None, actor: str | None = None,
             now: datetime | None = None) -> User:
    """Change a user's role (and, given ``scope``, the scope with it, checked together). The last enabled
    admin keeps its role. Audited as ``user.role_changed``."""
    check_role(role)
    with _change(store, name) as (conn, row):
        new_scope = scope if scope is not None else _scope(row)
        check_role_scope(role, new_scope)
        if role != "admin" and _is_enabled_admin(row) and _enabled_admins(conn) <= 1:
            raise UserError(f"{row.username} is the last enabled admin; make another user admin first")
        _update(conn, row.username, role=role, scope=new_scope.to_json())
        detail: dict[str, Any] = {"user": row.username, "from": row.role, "to": role}
        if scope is not None:
            detail["scope"] = new_scope.describe()
        audit(conn, actor, "user.role_changed", detail, at=now)
    return User(row.username, row.display_name or row.username, role, new_scope, bool(row.disabled))


def set_scope(store: Store, name: str, scope: Scope, actor: str | None = None, now: datetime | None = None) -> User:
    """Replace a user's scope (an empty one: every row, refused for managers and reps). Audited as
    ``user.scope_changed``."""
    with _change(store, name) as (conn, row):
        check_role_scope(row.role, scope)
        before = _scope_text(row)
        _update(conn, row.username, scope=scope.to_json())
        audit(conn, actor, "user.scope_changed", {"user": row.username, "from": before, "to": scope.describe()}, at=now)
    return User(row.username, row.display_name or row.username, row.role, scope, bool(row.disabled))


def get_user(store: Store, name: str) -> User | None:
    """The user called ``name`` (disabled ones too), or None. The login UI re-reads this on each rerun, so a
    disabled user or a changed role or scope takes effect at once."""
    if not store.has_schema():
        return None
    _ready(store)
    with store.connect() as conn:
        row = _row(conn, normal_name(name))
    return None if row is None else _user(row)


def list_users(store: Store, now: datetime | None = None) -> pl.DataFrame:
    """One row per user, by name, without hashes: name, display_name, role, scope (``describe()``), disabled,
    locked (at ``now``), locked_until, failed_attempts, last_login_at, password_changed_at, created_at."""
    columns = {"name": pl.String(), "display_name": pl.String(), "role": pl.String(), "scope": pl.String(),
               "disabled": pl.Boolean(), "locked": pl.Boolean(), "locked_until": pl.Datetime("us"),
               "failed_attempts": pl.Int64(), "last_login_at": pl.Datetime("us"),
               "password_changed_at": pl.Datetime("us"), "created_at": pl.Datetime("us")}
    if not store.has_schema():
        return pl.DataFrame(schema=columns)
    _ready(store)
    at = now or _now()
    users = schema.users
    picked = [users.c[c] for c in ("username", "display_name", "role", "scope", "disabled", "locked_until",
                                   "failed_attempts", "last_login_at", "password_changed_at", "created_at")]
    with store.connect() as conn:
        rows = conn.execute(sa.select(*picked).order_by(users.c.username)).all()
    records = [(r.username, r.display_name or r.username, r.role, _scope_text(r), bool(r.disabled),
                r.locked_until is not None and at < r.locked_until, r.locked_until, int(r.failed_attempts or 0),
                r.last_login_at, r.password_changed_at, r.created_at) for r in rows]
    return pl.DataFrame(records, schema=columns, orient="row")


# --- login ----------------------------------------------------------------------------


def authenticate(store: Store, name: str, password: str, now: datetime | None = None) -> User:
    """The user with this name and password, or AuthError with a plain message. Audited: ``login.success``,
    ``login.failure`` (with the reason) and ``login.lockout`` (the attempt that locks the account).

    A locked account is refused without checking the password; the failed attempt that reaches
    MAX_FAILED_ATTEMPTS locks it for LOCK_DURATION and starts the count again. A right password resets the
    count. A hash made with older argon2 parameters is re-made with the current ones.
    """
    at = now or _now()
    normal = normal_name(name)
    _ready(store)
    refusal: AuthError | None = None
    user: User | None = None
    with store.transaction() as conn:
        row = _row(conn, normal, lock=True) if normal else None
        if row is None:
            _verify(_dummy_hash(), password)  # the same work as for a known name: timing tells nothing
            audit(conn, normal or None, "login.failure", {"user": normal, "reason": "unknown user"}, at=at)
            refusal = AuthError(WRONG_CREDENTIALS, "credentials")
        elif row.locked_until is not None and at < row.locked_until:
            audit(conn, normal, "login.failure", {"user": normal, "reason": "locked"}, at=at)
            refusal = _locked(row.locked_until)
        elif not _verify(row.password_hash, password):
            failures = int(row.failed_attempts or 0) + 1
            if failures >= MAX_FAILED_ATTEMPTS:
                until = at + LOCK_DURATION
                _update(conn, normal, failed_attempts=0, locked_until=until)
                audit(conn, normal, "login.failure", {"user": normal, "reason": "wrong password", "attempt": failures},
                      at=at)
                audit(conn, normal, "login.lockout", {"user": normal, "until": until, "attempts": failures}, at=at)
                refusal = _locked(until)
            else:
                _update(conn, normal, failed_attempts=failures, locked_until=None)
                audit(conn, normal, "login.failure", {"user": normal, "reason": "wrong password", "attempt": failures},
                      at=at)
                refusal = AuthError(WRONG_CREDENTIALS, "credentials")
        elif row.disabled:
            audit(conn, normal, "login.failure", {"user": normal, "reason": "disabled"}, at=at)
            refusal = AuthError(DISABLED, "disabled")
        else:
            try:
                user = _user(row)
            except ScopeError:  # fail closed: an unreadable scope is never "every row"
                audit(conn, normal, "login.failure", {"user": normal, "reason": "unreadable scope"}, at=at)
                refusal = AuthError("account scope unreadable; ask an admin to set it again", "scope")
            else:
                changes: dict[str, Any] = {"failed_attempts": 0, "locked_until": None, "last_login_at": at}
                rehashed = HASHER.check_needs_rehash(row.password_hash)
                if rehashed:
                    changes["password_hash"] = HASHER.hash(password)
                _update(conn, normal, **changes)
                audit(conn, normal, "login.success", {"user": normal, "role": row.role, "rehashed": rehashed}, at=at)
    if refusal is not None:  # raised after the commit, so the failure, the count and the lock are kept
        raise refusal
    assert user is not None
    return user


def session_idle_hours(environ: Mapping[str, str] | None = None) -> float:
    """Idle hours before a session ends: ``CRM_SESSION_IDLE_HOURS`` (a positive number), else 8."""
    raw = (os.environ if environ is None else environ).get(IDLE_HOURS_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 365:
        log.warning("%s=%r is not a positive number of hours; using %g", IDLE_HOURS_ENV, raw, DEFAULT_IDLE_HOURS)
        return DEFAULT_IDLE_HOURS
    return hours


def session_expired(last_seen: datetime | None, now: datetime, idle_hours: float = DEFAULT_IDLE_HOURS) -> bool:
    """True when a session last active at ``last_seen`` has been idle ``idle_hours`` or more at ``now``
    (no ``last_seen``: expired). Pure: the UI passes ``session_idle_hours()``."""
    if last_seen is None:
        return True
    return now - last_seen >= timedelta(hours=idle_hours)


# --- browser sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionCheck:
    """What :func:`check_session` found: the signed-in ``user``, or None and why (``ended``): ``idle``,
    ``signed_out``, ``disabled``, ``locked``, ``password_changed``, ``unknown_user``, ``scope`` (its user's
    scope is unreadable) or ``unknown`` (no such token)."""

    user: User | None
    ended: str | None = None


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored; the token itself never is."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(store: Store, name: str, now: datetime | None = None) -> str:
    """Start a session for ``name`` (who has just signed in); returns its token for the browser's cookie.

    The token is ``secrets.token_urlsafe`` of 32 bytes (43 URL-safe characters); the store keeps its
    SHA-256, so a copy of the store lets nobody in. Sessions that ended more than SESSION_KEEP ago are
    deleted on the way.
    """
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    at = now or _now()
    sessions = schema.auth_sessions
    _ready(store)
    with store.transaction() as conn:
        conn.execute(sessions.delete().where(sessions.c.ended_at < at - SESSION_KEEP))
        conn.execute(sessions.insert().values(token_hash=token_digest(token), username=normal_name(name),
                                              created_at=at, last_seen_at=at))
    return token


def check_session(store: Store, token: str | None, now: datetime | None = None,
                  idle_hours: float | None = None) -> SessionCheck:
    """The user a session token belongs to, or why there is none (SessionCheck).

    A live session is refused, and ended for good, when it was idle ``idle_hours`` (default
    ``session_idle_hours()``) or more, or when its user is gone, disabled, locked, has an unreadable scope or
    a password changed after the session began. A live session's ``last_seen_at`` moves to ``now`` when it
    is SESSION_TOUCH_INTERVAL or more behind. The user is read afresh, so a new role or scope applies at once.
    """
    if not token or len(token) > 200:
        return SessionCheck(None, "unknown")
    at = now or _now()
    hours = session_idle_hours() if idle_hours is None else idle_hours
    digest = token_digest(token)
    sessions = schema.auth_sessions
    _ready(store)
    with store.connect() as conn:
        session = conn.execute(sa.select(sessions).where(sessions.c.token_hash == digest)).first()
        if session is None:
            return SessionCheck(None, "unknown")
        if session.ended_at is not None:
            return SessionCheck(None, session.end_reason or "signed_out")
        row = _row(conn, session.username)
    user: User | None = None
    if session_expired(session.last_seen_at, at, hours):
        reason = "idle"
    elif row is None:
        reason = "unknown_user"
    elif row.disabled:
        reason = "disabled"
    elif row.locked_until is not None and at < row.locked_until:
        reason = "locked"
    elif row.password_changed_at is not None and row.password_changed_at > session.created_at:
        reason = "password_changed"
    else:
        try:
            user = _user(row)
        except ScopeError:  # fail closed, as authenticate does
            reason = "scope"
    if user is None:
        detail: dict[str, Any] = {"user": session.username, "reason": reason}
        if reason == "idle":
            detail["idle_hours"] = hours
        _end_session(store, digest, reason, at, "session.expired" if reason == "idle" else "session.ended", detail)
        return SessionCheck(None, reason)
    if session.last_seen_at is None or at - session.last_seen_at >= SESSION_TOUCH_INTERVAL:
        try:
            with store.transaction() as conn:
                conn.execute(sessions.update().where(sessions.c.token_hash == digest, sessions.c.ended_at.is_(None))
                             .values(last_seen_at=at))
        except sa.exc.OperationalError as exc:  # the session is valid: a busy store costs its idle clock a touch
            log.warning("could not note session activity (%s); the next page view tries again",
                        str(exc.orig or exc).splitlines()[0])
    return SessionCheck(user)


def resume_session(store: Store, token: str | None, now: datetime | None = None,
                   idle_hours: float | None = None) -> User | None:
    """The user of a live session token, or None (unknown, ended, idle too long, user disabled or locked):
    :func:`check_session` without the reason."""
    return check_session(store, token, now, idle_hours).user


def end_session(store: Store, token: str | None, now: datetime | None = None) -> bool:
    """Sign out: end the session of ``token`` (audited as ``logout``); False when it was unknown or over."""
    if not token:
        return False
    at = now or _now()
    digest = token_digest(token)
    _ready(store)
    with store.connect() as conn:
        name = conn.execute(sa.select(schema.auth_sessions.c.username)
                            .where(schema.auth_sessions.c.token_hash == digest)).scalar()
    if name is None:
        return False
    return _end_session(store, digest, "signed_out", at, "logout", {"user": name})


def authenticate_oidc(store: Store, email: str | None, now: datetime | None = None) -> User:
    """The local user for a person an OpenID Connect provider has signed in: the user whose name is the
    e-mail address (lower-cased). AuthError ``not registered here: ask an admin to add you`` when there is
    none, and the same refusals as :func:`authenticate` for a disabled or locked account. Audited as
    ``login.success`` / ``login.failure`` with ``"method": "oidc"``."""
    at = now or _now()
    normal = normal_name(email or "")
    _ready(store)
    refusal: AuthError | None = None
    user: User | None = None
    with store.transaction() as conn:
        row = _row(conn, normal) if normal else None
        base = {"user": normal, "method": "oidc"}
        if row is None:
            audit(conn, normal or None, "login.failure", {**base, "reason": "not registered"}, at=at)
            refusal = AuthError(NOT_REGISTERED, "unregistered")
        elif row.locked_until is not None and at < row.locked_until:
            audit(conn, normal, "login.failure", {**base, "reason": "locked"}, at=at)
            refusal = _locked(row.locked_until)
        elif row.disabled:
            audit(conn, normal, "login.failure", {**base, "reason": "disabled"}, at=at)
            refusal = AuthError(DISABLED, "disabled")
        else:
            try:
                user = _user(row)
            except ScopeError:
                audit(conn, normal, "login.failure", {**base, "reason": "unreadable scope"}, at=at)
                refusal = AuthError("account scope unreadable; ask an admin to set it again", "scope")
            else:
                _update(conn, normal, last_login_at=at)
                audit(conn, normal, "login.success", {**base, "role": row.role}, at=at)
    if refusal is not None:
        raise refusal
    assert user is not None
    return user


def _end_session(store: Store, digest: str, reason: str, at: datetime, action: str, detail: dict[str, Any]) -> bool:
    """Mark a live session ended (once: a second tab ending it too changes nothing) and audit it."""
    sessions = schema.auth_sessions
    with store.transaction() as conn:
        ended = conn.execute(sessions.update().where(sessions.c.token_hash == digest, sessions.c.ended_at.is_(None))
                             .values(ended_at=at, end_reason=reason)).rowcount
        if ended:
            audit(conn, detail.get("user"), action, detail, at=at)
    return bool(ended)


# --- demo users -----------------------------------------------------------------------

DEMO_USERS: tuple[tuple[str, str, Scope, str], ...] = (
    ("exec", "executive", Scope(), "Demo executive"),
    ("manager", "manager", Scope(regions=("Europe",)), "Demo manager (Europe)"),
    ("analyst", "analyst", Scope(), "Demo analyst"),
    ("rep", "rep", Scope(owners=(DEMO_OWNER,)), f"Demo rep ({DEMO_OWNER})"),
    ("admin", "admin", Scope(), "Demo admin"),
)
"""One demo user per role: name, role, scope, display name. Their password is DEMO_PASSWORD."""


def add_demo_users(store: Store, now: datetime | None = None) -> list[str]:
    """Add the DEMO_USERS that are missing (existing users are left alone); returns the names added.

    Called when a store is filled with demo data (``init-demo``, the app's first run on the embedded store).
    The five share one argon2id hash of the public DEMO_PASSWORD (one hash instead of five: ~0.2 s here).
    """
    _ready(store)
    at = now or _now()
    with store.connect() as conn:
        present = set(conn.execute(sa.select(schema.users.c.username)).scalars())
    missing = [u for u in DEMO_USERS if u[0] not in present]
    if not missing:
        return []
    digest = HASHER.hash(DEMO_PASSWORD)
    with store.transaction() as conn:
        for name, role, scope, shown in missing:
            conn.execute(schema.users.insert().values(
                username=name, display_name=shown, role=role, password_hash=digest, created_at=at,
                scope=scope.to_json(), disabled=False, failed_attempts=0, password_changed_at=at))
            audit(conn, "demo", "user.added", {"user": name, "role": role, "scope": scope.describe(),
                                               "display_name": shown, "demo": True}, at=at)
    return [u[0] for u in missing]


# --- helpers --------------------------------------------------------------------------

_READY: weakref.WeakSet[Store] = weakref.WeakSet()
_ACTOR_LENGTH = 120
"""audit_log.actor is VARCHAR(120): a longer name typed at the login form is cut, never an error."""


def _ready(store: Store) -> None:
    """Store.ensure_schema once per Store object (it adds the user columns to an older store); the login UI
    calls get_user on every rerun, which must not re-inspect the schema each time."""
    if store not in _READY:
        store.ensure_schema()
        _READY.add(store)


def _now() -> datetime:
    return datetime.now()


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _locked(until: datetime) -> AuthError:
    shown = until if until.second == 0 and until.microsecond == 0 else (
        until.replace(second=0, microsecond=0) + timedelta(minutes=1))  # never earlier than the lock ends
    return AuthError(f"account locked until {shown:%H:%M}", "locked", until)


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash("not-a-password-of-anyone")


def _verify(digest: str | None, password: str) -> bool:
    if not digest or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def _row(conn: Connection, name: str, lock: bool = False) -> Any:
    query = sa.select(schema.users).where(schema.users.c.username == name)
    if lock:
        query = query.with_for_update()  # PostgreSQL: concurrent attempts count one after another
    return conn.execute(query).first()


def _update(conn: Connection, name: str, **values: Any) -> None:
    conn.execute(schema.users.update().where(schema.users.c.username == name).values(**values))


def _scope(row: Any) -> Scope:
    return Scope.from_json(row.scope)


def _scope_text(row: Any) -> str:
    try:
        return _scope(row).describe()
    except ScopeError:
        return "(unreadable)"


def _user(row: Any, disabled: bool | None = None) -> User:
    return User(row.username, row.display_name or row.username, row.role, _scope(row),
                bool(row.disabled) if disabled is None else disabled)


def _is_enabled_admin(row: Any) -> bool:
    return bool(row.role == "admin" and not row.disabled)


def _enabled_admins(conn: Connection) -> int:
    users = schema.users
    query = sa.select(sa.func.count()).select_from(users).where(
        users.c.role == "admin", sa.or_(users.c.disabled.is_(None), users.c.disabled.is_(False)))
    return int(conn.execute(query).scalar() or 0)


@contextmanager
def _change(store: Store, name: str) -> Iterator[tuple[Connection, Any]]:
    """One transaction over an existing user's row (locked on PostgreSQL); UserError for an unknown name."""
    normal = normal_name(name)
    _ready(store)
    with store.transaction() as conn:
        row = _row(conn, normal, lock=True)
        if row is None:
            raise UserError(f"no user named {normal!r}")
        yield conn, row


__all__ = [
    "DEMO_PASSWORD", "DEMO_USERS", "ROLES", "AuthError", "Scope", "ScopeError", "SessionCheck", "User", "UserError",
    "add_demo_users", "add_user", "audit", "authenticate", "authenticate_oidc", "check_session", "create_session", "disable_user",
    "enable_user", "end_session", "get_user", "list_users", "read_audit", "reset_password", "resume_session",
    "session_expired", "session_idle_hours", "set_role", "set_scope", "token_digest",
]
