"""Browser: signing in through the form and staying signed in across a reload, signing out, a locked account,
a session ending after its idle hours, a role refused a page by URL, and a store that comes back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from crm import auth, schema
from crm.ui.session import COOKIE
from tests.conftest import PG_ADMIN_URL, require
from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.harness import VIEWPORT, run_streamlit, sign_in, wait_until_idle
from tests.e2e.screen import assert_no_errors, expect, open_cockpit, wait_for_tiles

pytestmark = pytest.mark.browser


@pytest.fixture
def visitor(browser):
    """A page in a browser context that nobody has signed in to (no session cookie)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


def heading(page, name: str):
    """A page title; not one a run is replacing (stale, kept on screen until the run ends)."""
    live = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])')
    return live.get_by_role("heading", level=1, name=name, exact=True)


def session_cookie_of(page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == COOKIE), None)


def submit(page, name: str, password: str) -> None:
    """Type a name and password and press Enter in the password field (the keyboard path submits the form)."""
    page.get_by_label("User name").fill(name)
    field = page.get_by_label("Password", exact=True)
    field.fill(password)
    field.press("Enter")


def test_signing_in_through_the_form_keeps_the_page_and_survives_a_reload(visitor, server, e2e_store):
    visitor.goto(f"{server.url}/funnel?period=last_30")
    expect(heading(visitor, "Sign in")).to_be_visible()
    expect(visitor.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")).to_have_count(0)
    submit(visitor, "analyst", auth.DEMO_PASSWORD)
    expect(heading(visitor, "Sales funnel")).to_be_visible()
    wait_until_idle(visitor)
    assert "period=last_30" in visitor.url
    cookie = session_cookie_of(visitor)
    assert cookie is not None and (cookie["sameSite"], cookie["path"], cookie["httpOnly"]) == ("Strict", "/", False)
    user = auth.resume_session(e2e_store, cookie["value"])
    assert user is not None and user.name == "analyst"

    visitor.reload()
    expect(heading(visitor, "Sales funnel")).to_be_visible()
    wait_until_idle(visitor)
    expect(heading(visitor, "Sign in")).to_have_count(0)
    expect(visitor.get_by_test_id("stSidebar").get_by_text("Demo analyst")).to_be_visible()


def test_a_demo_store_leads_in_one_click_to_a_full_cockpit(visitor, e2e_store, tmp_path):
    with run_streamlit(str(e2e_store.url), tmp_path / "server.log", demo=True) as server:
        visitor.goto(server.url)
        expect(visitor.get_by_text("demo-only password: demo-only-password")).to_be_visible()
        expect(visitor.get_by_text("rep · rep · sees owner Elena Rossi")).to_be_visible()
        visitor.get_by_role("button", name="Sign in as executive").click()
        expect(heading(visitor, "Cockpit")).to_be_visible()
        wait_for_tiles(visitor)
        assert_no_errors(visitor)
        expect(visitor.get_by_test_id("stSidebar").get_by_text("Executive · sees every row")).to_be_visible()


def test_signing_out_ends_the_session_and_forgets_the_cookie(visitor, server, e2e_store):
    token = sign_in(visitor.context, str(e2e_store.url), "exec")
    open_cockpit(visitor, server.url)
    visitor.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    expect(heading(visitor, "Sign in")).to_be_visible()
    expect(visitor.get_by_text("You are signed out.")).to_be_visible()
    visitor.wait_for_function(f"() => !document.cookie.includes('{COOKIE}=')")
    assert auth.check_session(e2e_store, token).ended == "signed_out"
    visitor.reload()
    expect(heading(visitor, "Sign in")).to_be_visible()
    wait_until_idle(visitor)
    expect(visitor.get_by_test_id("stMetric")).to_have_count(0)


@pytest.fixture
def lockable_user(e2e_store) -> Iterator[str]:
    """A user of its own (locking a shared one would end the other tests' sessions); removed afterwards."""
    name = f"lock.{uuid.uuid4().hex[:8]}"
    auth.add_user(e2e_store, name, "analyst", "the right password")
    yield name
    with e2e_store.transaction() as conn:
        conn.execute(schema.users.delete().where(schema.users.c.username == name))


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(visitor, server, e2e_store, lockable_user):
    started = datetime.now() - timedelta(seconds=1)
    visitor.goto(server.url)
    expect(heading(visitor, "Sign in")).to_be_visible()
    alert = visitor.get_by_test_id("stAlertContentError").locator("p")  # the words, not the icon's name
    password = visitor.get_by_label("Password", exact=True)
    for attempt in range(1, auth.MAX_FAILED_ATTEMPTS + 1):
        submit(visitor, lockable_user, f"wrong password {attempt}")
        expect(password).to_have_value("")
        wait_until_idle(visitor)
        if attempt < auth.MAX_FAILED_ATTEMPTS:
            expect(alert).to_have_text("Wrong user name or password.")
    expect(alert).to_have_text(f"Account locked until {_lock_end(e2e_store, lockable_user)}.")

    submit(visitor, lockable_user, "the right password")
    expect(password).to_have_value("")
    wait_until_idle(visitor)
    expect(heading(visitor, "Sign in")).to_be_visible()
    expect(alert).to_have_text(f"Account locked until {_lock_end(e2e_store, lockable_user)}.")
    actions = [(r["action"], r["detail"]) for r in auth.read_audit(e2e_store, since=started).to_dicts()
               if r["actor"] == lockable_user]
    assert [a for a, _ in actions] == ["login.failure"] * 5 + ["login.lockout", "login.failure"]
    assert '"reason": "locked"' in actions[-1][1]


def _lock_end(store, name: str) -> str:
    until = auth.list_users(store).filter(name=name)["locked_until"].item()
    if until.second or until.microsecond:  # shown rounded up: never earlier than the lock ends
        until = until.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{until:%H:%M}"


def test_a_session_idle_past_the_limit_ends_with_a_notice(visitor, server, e2e_store):
    token = sign_in(visitor.context, str(e2e_store.url), "manager")
    open_cockpit(visitor, server.url)
    sessions = schema.auth_sessions
    with e2e_store.transaction() as conn:
        conn.execute(sessions.update().where(sessions.c.token_hash == auth.token_digest(token))
                     .values(last_seen_at=datetime.now() - timedelta(hours=9)))
    visitor.reload()
    expect(heading(visitor, "Sign in")).to_be_visible()
    expect(visitor.get_by_text("Your session ended after 8 idle hours; sign in again.")).to_be_visible()
    expect(visitor.get_by_test_id("stMetric")).to_have_count(0)
    visitor.wait_for_function(f"() => !document.cookie.includes('{COOKIE}=')")
    assert auth.check_session(e2e_store, token).ended == "idle"


def test_a_rep_opening_the_data_page_by_url_on_a_fresh_server_is_not_permitted(visitor, fresh_server, e2e_store):
    server = fresh_server()  # its first run is the page file alone (legacy pages/ mode): the guard is in page_frame
    sign_in(visitor.context, str(e2e_store.url), "rep")
    visitor.goto(f"{server.url}/data")
    expect(visitor.get_by_text("Not permitted: only admins may open the Data page")).to_be_visible()
    wait_until_idle(visitor)
    expect(visitor.get_by_test_id("stFileUploader")).to_have_count(0)
    links = visitor.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
    expect(links.first.locator("p")).to_have_text("Cockpit")
    expect(links.filter(has_text="Data quality")).to_have_count(0)
    visitor.get_by_role("link", name="Go to the Cockpit").click()
    expect(heading(visitor, "Cockpit")).to_be_visible()


@pytest.fixture
def missing_database() -> Iterator[tuple[str, str]]:
    """The URL of a PostgreSQL database that does not exist yet, and its name (dropped afterwards if made)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in requirements
        require("postgres", "psycopg is not installed")
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(admin, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        require("postgres", f"no PostgreSQL at {admin}: {str(exc).strip().splitlines()[0]}")
    name = f"crm_later_{uuid.uuid4().hex[:10]}"
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_store_that_cannot_be_reached_is_reported_without_its_address_and_retried(visitor, missing_database, tmp_path):
    import psycopg

    url, name = missing_database
    with run_streamlit(url, tmp_path / "server.log", admit_session=False) as server:
        visitor.goto(f"{server.url}/funnel")
        message = visitor.get_by_text("The database cannot be reached right now, or is too busy to answer. "
                                      "The app retries every 15 seconds.")
        expect(message).to_be_visible()
        wait_until_idle(visitor)
        shown = visitor.get_by_test_id("stApp").inner_text()
        for secret in (name, "postgres", "127.0.0.1", "5432", "psycopg"):
            assert secret not in shown
        links = visitor.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink")
        expect(links.first.locator("p")).to_have_text("Cockpit")
        assert "does not exist" in server.log.read_text()  # the whole error went to the server log

        with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        expect(heading(visitor, "Sign in")).to_be_visible()  # within a retry or two, no reload
        expect(message).to_have_count(0)
