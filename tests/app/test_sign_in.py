"""AppTest: the login page, sessions, roles on pages, OIDC and the unreachable store (crm/ui/session.py, page_frame)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from crm import auth, schema
from crm.metrics import tiles
from crm.ui.pages import PAGES
from crm.ui.session import TOKEN_KEY, USER_KEY
from tests.app.conftest import new_app, open_page, shown

DATA_PAGES = ("Data", "Data quality", "Audit log")


def texts(at: AppTest) -> str:
    """Everything the page says in words (titles, alerts, Markdown, captions), escapes removed."""
    parts = [*at.title, *at.error, *at.info, *at.warning, *at.markdown, *at.caption, *at.subheader]
    return "\n".join(shown(str(p.value)) for p in parts)


def sidebar_links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.sidebar.get("page_link")]


def log_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def audit_actions(store, since: datetime) -> list[tuple[str | None, str, dict]]:
    rows = auth.read_audit(store, since=since).to_dicts()
    return [(r["actor"], r["action"], json.loads(r["detail"])) for r in rows]


def test_a_visitor_gets_the_login_form_and_no_data(app_store):
    at = new_app(None)
    at.query_params["period"] = "last_30"
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert at.text_input(key="login_name").label == "User name"
    assert at.text_input(key="login_password").label == "Password"
    assert not at.metric and not at.get("plotly_chart") and not at.dataframe
    assert sidebar_links(at) == []  # not even the page names
    assert USER_KEY not in at.session_state and TOKEN_KEY not in at.session_state


def test_a_wrong_password_is_refused_with_a_plain_message_and_audited(app_store):
    started = datetime.now()
    at = log_in(new_app(None).run(), "analyst", "not the password")
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == ["Wrong user name or password."]
    assert [t.value for t in at.title] == ["Sign in"] and not at.metric
    assert at.text_input(key="login_password").value == ""  # never kept
    assert at.text_input(key="login_name").value == "analyst"
    assert ("analyst", "login.failure", {"user": "analyst", "reason": "wrong password", "attempt": 1}) in audit_actions(
        app_store, started)
    auth.enable_user(app_store, "analyst")  # the failed attempt is counted: start the next test at zero


def test_signing_in_keeps_the_page_and_its_query(app_store):
    at = new_app(None)
    at.query_params.update({"period": "last_30", "region": "Europe"})
    at.run()
    at = log_in(at, "Exec", auth.DEMO_PASSWORD)  # names are case-insensitive
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Cockpit"]
    assert len(at.metric) == len(tiles()) + 1  # the registry's tiles and the at-risk revenue tile
    assert (at.query_params["period"], at.query_params["region"]) == ("last_30", "Europe")
    assert at.session_state[USER_KEY].name == "exec"
    assert auth.resume_session(app_store, at.session_state[TOKEN_KEY]).role == "executive"
    account = texts(at)
    assert "Demo executive" in account and "Executive · sees every row" in account
    # a later run of the same connection stays signed in
    at.selectbox(key="flt_preset").set_value("last_90").run()
    assert [t.value for t in at.title] == ["Cockpit"] and len(at.metric) == len(tiles()) + 1


def test_a_rep_opening_the_data_page_by_url_is_not_permitted_and_sees_no_data(app_store):
    at = open_page("pages/data.py", {}, role="rep")
    assert not at.exception, at.exception
    said = texts(at)
    assert "Not permitted: only admins may open the Data page (you are signed in as a rep)." in said
    assert not at.get("file_uploader") and not at.expander and not at.radio and not at.dataframe
    assert [t.value for t in at.title] == ["Data"]
    links = sidebar_links(at)
    assert links[0] == "Cockpit" and not set(DATA_PAGES) & set(links)
    assert "Go to the Cockpit" in [link.proto.label for link in at.main.get("page_link")]


@pytest.mark.parametrize("role", ["executive", "manager", "analyst", "rep"])
def test_the_sidebar_links_only_the_pages_a_role_may_open(app_store, role):
    at = open_page("pages/cockpit.py", {}, role=role)
    assert sidebar_links(at) == [p.title for p in PAGES if p.title not in DATA_PAGES]


def test_an_admin_sees_every_page_link(app_store):
    at = open_page("pages/cockpit.py", {}, role="admin")
    assert sidebar_links(at) == [p.title for p in PAGES]


def test_the_demo_store_offers_one_click_sign_in_per_role_leading_to_the_cockpit(app_store, monkeypatch):
    monkeypatch.delenv("CRM_DATABASE_URL")
    monkeypatch.setattr("crm.config.DEFAULT_DB_PATH", app_store.url.database)  # this store is the embedded one
    at = new_app(None).run()
    assert not at.exception, at.exception
    said = texts(at)
    assert "demo-only password: demo-only-password" in said
    for name, role, scope, _ in auth.DEMO_USERS:
        assert at.button(key=f"login_demo_{name}").label == f"Sign in as {role}"
        assert f"{name} · {role} · sees {scope.in_words()}" in said
    assert "rep · rep · sees owner Elena Rossi" in said
    at.button(key="login_demo_analyst").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Cockpit"]
    assert len(at.metric) == len(tiles()) + 1 and all(m.value != "—" for m in at.metric)
    assert at.session_state[USER_KEY].role == "analyst"


def test_a_store_the_app_fills_with_demo_data_offers_its_demo_users_too(app_store, monkeypatch):
    monkeypatch.setenv("CRM_DEMO_ON_EMPTY", "1")
    at = new_app(None).run()
    assert at.button(key="login_demo_rep").label == "Sign in as rep"


def test_no_demo_users_are_offered_on_another_store(app_store):
    at = new_app(None).run()
    assert "Demo users" not in texts(at) and not [b for b in at.button if b.key.startswith("login_demo_")]


def test_an_idle_session_shows_the_login_page_with_a_notice(app_store, monkeypatch):
    monkeypatch.setenv(auth.IDLE_HOURS_ENV, "8")
    at = new_app("analyst").run()
    assert [t.value for t in at.title] == ["Cockpit"]
    digest = auth.token_digest(at.session_state[TOKEN_KEY])
    with app_store.transaction() as conn:
        conn.execute(schema.auth_sessions.update().where(schema.auth_sessions.c.token_hash == digest)
                     .values(last_seen_at=datetime.now() - timedelta(hours=9)))
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Sign in"] and not at.metric
    assert "Your session ended after 8 idle hours; sign in again." in texts(at)


def test_signing_out_ends_the_session_and_shows_the_login_page(app_store):
    at = new_app("manager").run()
    token = at.session_state[TOKEN_KEY]
    at.button(key="account_sign_out").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Sign in"] and not at.metric
    assert "You are signed out." in texts(at)
    assert auth.check_session(app_store, token).ended == "signed_out"
    assert TOKEN_KEY not in at.session_state and "flt_preset" not in at.session_state


def test_a_disabled_user_is_signed_out_at_the_next_run(app_store, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    auth.add_user(app_store, "temp.analyst", "analyst", "a long enough password")
    at = new_app(None)
    try:
        at = log_in(at.run(), "temp.analyst", "a long enough password")
        assert [t.value for t in at.title] == ["Cockpit"]
        auth.disable_user(app_store, "temp.analyst")
        at.run()
        assert [t.value for t in at.title] == ["Sign in"] and not at.metric
    finally:
        with app_store.transaction() as conn:
            conn.execute(schema.users.delete().where(schema.users.c.username == "temp.analyst"))


# --- OIDC (st.login): AppTest plays the provider through at.user ---------------------------------------------


@pytest.fixture
def oidc(monkeypatch):
    """A configured provider called google (as [auth.google] in secrets.toml would give)."""
    monkeypatch.setattr("crm.ui.session.oidc_providers", lambda: (("google", "Google"),))


def test_the_login_page_offers_the_configured_provider(app_store, oidc):
    at = new_app(None)
    at.user = {"is_logged_in": False}
    at.run()
    assert at.button(key="login_oidc_google").label == "Sign in with Google"
    assert at.text_input(key="login_name")  # local users stay the default


def test_a_provider_s_address_signs_in_the_local_user_of_that_name(app_store, oidc, monkeypatch):
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    auth.add_user(app_store, "ada@example.com", "executive", "a long enough password", display_name="Ada")
    try:
        at = new_app(None)
        at.user = {"is_logged_in": True, "email": "Ada@Example.com"}
        at.run()
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Cockpit"] and len(at.metric) == len(tiles()) + 1
        assert at.session_state[USER_KEY].name == "ada@example.com"
        assert auth.resume_session(app_store, at.session_state[TOKEN_KEY]).name == "ada@example.com"
    finally:
        with app_store.transaction() as conn:
            conn.execute(schema.users.delete().where(schema.users.c.username == "ada@example.com"))


def test_a_provider_s_address_without_a_local_user_is_not_registered(app_store, oidc):
    at = new_app(None)
    at.user = {"is_logged_in": True, "email": "stranger@example.com"}
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Sign in"] and not at.metric
    assert [shown(e.value) for e in at.error] == ["Not registered here: ask an admin to add you."]
    assert at.button(key="login_oidc_logout")


# --- the store cannot be reached ---------------------------------------------------------------------------


def test_a_store_locked_by_another_writer_says_so_instead_of_failing(monkeypatch, tmp_path):
    import sqlite3

    import crm.store

    monkeypatch.setattr(crm.store, "SQLITE_BUSY_SECONDS", 0.2)  # the app's Store for this new URL waits 0.2 s
    path = tmp_path / "locked.db"
    crm.store.Store(f"sqlite:///{path}").ensure_schema()
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{path}")
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")  # e.g. a long import by another process: readers wait, then give up
    try:
        at = new_app(None).run()
    finally:
        other.rollback()
        other.close()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == [
        "The database cannot be reached right now, or is too busy to answer. The app retries every 15 seconds."]
    assert sidebar_links(at) == [p.title for p in PAGES]


def test_an_unreachable_store_says_so_without_its_address_and_keeps_the_links(monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm_owner:s3cret@127.0.0.1:1/crm_production")
    at = new_app(None).run()
    assert not at.exception, at.exception
    said = texts(at)
    assert [shown(e.value) for e in at.error] == [
        "The database cannot be reached right now, or is too busy to answer. The app retries every 15 seconds."]
    for secret in ("crm_owner", "s3cret", "127.0.0.1", "crm_production", "postgresql", ":1"):
        assert secret not in said
    assert sidebar_links(at) == [p.title for p in PAGES]

