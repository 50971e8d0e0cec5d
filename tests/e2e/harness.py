"""Run the app and a browser for tests and docs: `streamlit run` on a free port, Debian chromium via Playwright.

Plain functions (no pytest) so ``docs/screenshot.py`` starts the app exactly as the browser tests do.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm import auth, schema
from crm.store import Store
from crm.ui.session import COOKIE

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these Chromium keeps calling home on a network it cannot reach.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
STARTUP_TIMEOUT_S = 90.0

SESSION_TOKEN = secrets.token_urlsafe(32)
"""The session token a browser context starts with (tests/e2e/conftest.py ``page``, docs/screenshot.py): every
server ``run_streamlit`` starts has it as a live session of the demo admin, so a page opens signed in, as after
the login form. A test that signs out, expires or locks a session makes its own (``sign_in``)."""


@dataclass(frozen=True)
class Server:
    """A running `streamlit run app.py`: its base URL (no trailing slash) and its log file."""

    url: str
    log: Path
    pid: int = 0
    """The server's process id."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_streamlit(database_url: str, log: Path, admit_session: bool = True, demo: bool = False,
                  snapshots: bool = True) -> Iterator[Server]:
    """Start the app (cwd = repo root) against ``database_url``; yield once healthy; stop its process group.
    ``admit_session``: make SESSION_TOKEN a session of the demo admin there first (``admit``); ``demo``: run it
    as a demo store (CRM_DEMO_ON_EMPTY=1: filled when empty, its demo users offered on the login page);
    ``snapshots=False``: no prepared snapshots (CRM_SNAPSHOT_DIR=off), so the first page reads the store."""
    if admit_session:
        admit(database_url)
    port = free_port()
    env = {**os.environ, "CRM_DATABASE_URL": database_url}
    env.pop("CRM_DEMO_ON_EMPTY", None)
    if demo:
        env["CRM_DEMO_ON_EMPTY"] = "1"
    if not snapshots:
        env["CRM_SNAPSHOT_DIR"] = "off"
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        # The sources may change while a run is under way: no watcher, no "source changed" prompts.
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, base, log)
        yield Server(base, log, proc.pid)
    finally:
        _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"streamlit not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (streamlit and anything it spawned), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def admit(database_url: str, token: str = SESSION_TOKEN, user: str = "admin") -> None:
    """Make ``token`` a live session of ``user`` on the store at ``database_url``, as a sign-in would
    (crm.auth.create_session, with a token chosen here so one browser cookie works on every test server);
    the demo users are added when missing. A session that exists already is left as it is."""
    with Store(database_url) as store:
        auth.add_demo_users(store)
        sessions = schema.auth_sessions
        digest = auth.token_digest(token)
        with store.transaction() as conn:
            if conn.execute(sa.select(sessions.c.token_hash).where(sessions.c.token_hash == digest)).first() is None:
                now = datetime.now()
                conn.execute(sessions.insert().values(token_hash=digest, username=user, created_at=now, last_seen_at=now))


def session_cookie(token: str = SESSION_TOKEN, url: str = "http://127.0.0.1") -> dict[str, Any]:
    """The app's session cookie for Playwright's ``context.add_cookies`` (a cookie is not per port: one for every
    server on the host), as the app writes it: path /, SameSite=Strict."""
    return {"name": COOKIE, "value": token, "url": url, "sameSite": "Strict"}


def sign_in(context: Any, database_url: str, user: str) -> str:
    """Sign a browser context in as ``user`` (a new session on that store, as the login form makes it); the token."""
    with Store(database_url) as store:
        auth.add_demo_users(store)
        token = auth.create_session(store, user)
    context.add_cookies([session_cookie(token)])
    return token


def launch_chromium(playwright: Any) -> Any:
    """Headless Debian chromium; Playwright gives every launch a fresh temporary user-data directory."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def wait_until_idle(page: Any) -> None:
    """Wait for the script run to finish. Call it only after something showed that the run started
    (the expected content appeared or changed): right after a click the app is still idle for ~50 ms."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")
