"""The browser-less client of the load test (tests/e2e/protocol.py) against a real `streamlit run`: its runs end
when the server's do, it is signed in by the cookie, a changed query string is a changed filter, and the
server's rerun log (crm/ui/rerun_log.py) sees what it asked for. No browser: these run without chromium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from crm.demo import REGIONS
from crm.ui.session import COOKIE
from tests.e2e.harness import SESSION_TOKEN, run_streamlit
from tests.e2e.protocol import ProtocolError, Session

TIMEOUT_S = 90


def run(scenario: Coroutine[Any, Any, Any]) -> Any:
    """Run ``scenario`` on an event loop of its own thread: the browser tests' Playwright (sync API) keeps an
    event loop running on the main thread for the whole session, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario).result()


@pytest.fixture
def logged_server(e2e_store, tmp_path, monkeypatch):
    """A fresh server that logs every rerun to ``tmp_path / "reruns.jsonl"``."""
    log = tmp_path / "reruns.jsonl"
    monkeypatch.setenv("CRM_RERUN_LOG", str(log))
    with run_streamlit(str(e2e_store.url), tmp_path / "server.log") as server:
        yield server, log


def _lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_runs_end_with_the_servers_and_a_query_string_is_a_filter(logged_server):
    server, log = logged_server
    region = REGIONS[1]

    async def scenario() -> tuple:
        async with Session(server.url, {COOKIE: SESSION_TOKEN}) as session:
            cockpit = await session.open("", "", timeout=TIMEOUT_S)
            cockpit_payload = session.last_payload
            funnel = await session.open("funnel", f"region={region}", timeout=TIMEOUT_S)
            return cockpit, cockpit_payload, funnel, session.last_payload

    cockpit, cockpit_payload, funnel, funnel_payload = run(scenario())

    assert cockpit.errors == 0 and funnel.errors == 0
    assert b"Sign in" not in cockpit_payload  # the cookie signed the session in
    assert b"Revenue won" in cockpit_payload  # a cockpit tile
    assert region.encode() in funnel_payload
    runs = [line for line in _lines(log) if line["outcome"] == "done"]
    # the cockpit, then the funnel with the region asked for, each run logged when it ended
    assert [r["page"] for r in runs][-2:] == ["", "funnel"]
    assert runs[-1]["query"].get("region") in (region, [region])
    assert runs[-2]["query"] == {}


def test_without_the_cookie_the_session_gets_the_sign_in_form(logged_server):
    server, _ = logged_server

    async def scenario() -> bytes:
        async with Session(server.url) as session:
            await session.open("", "", timeout=TIMEOUT_S)
            return session.last_payload

    assert b"Sign in" in run(scenario())


def test_a_stopped_server_is_an_error_not_a_hang(e2e_store, tmp_path):
    async def scenario() -> None:
        with run_streamlit(str(e2e_store.url), tmp_path / "server.log") as server:
            session = await Session(server.url, {COOKIE: SESSION_TOKEN}).__aenter__()
            await session.open("", "", timeout=TIMEOUT_S)
        try:  # the server is stopped now
            with pytest.raises(ProtocolError, match="closed"):
                await session.open("", "", timeout=TIMEOUT_S)
        finally:
            await session.__aexit__(None, None, None)

    run(scenario())
