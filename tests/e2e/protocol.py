"""A Streamlit client without a browser, for load tests: it speaks the app's own websocket protocol.

A browser session of the app is one websocket at ``/_stcore/stream`` over which the browser sends ``BackMsg``
protobufs (``rerun_script`` with the page, the query string and the widget states) and the server sends
``ForwardMsg`` protobufs (the new session, the page's elements as deltas, ``script_finished`` at the end of a
run, ``auto_rerun`` for a fragment that reruns every few seconds). :class:`Session` does what the browser does
there, and nothing it draws:

- it connects with the app's session cookie, as a signed-in browser does;
- :meth:`Session.open` asks for a run of a page with a query string (what following a link, Back/Forward or
  changing a filter in the URL does) and waits for that run's ``script_finished``; the run restarts when the
  script calls ``st.rerun`` (``FINISHED_EARLY_FOR_RERUN``), as in the browser;
- it reruns each ``auto_rerun`` fragment at its interval while no page run is waiting, as the browser's timer
  does (the app's data-refresh check and the churn tile's poll), so the server serves the same background
  load as for a browser.

What it leaves out, on purpose: rendering, the app's static files and component iframes (a browser fetches
them once per new tab), and widget interaction (the app restores filters from the URL, crm/ui/url.py, so a
changed query string is a changed filter). Message bodies are read only for what a run's end and its errors
need: an element that is an exception counts as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

_DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


class ProtocolError(RuntimeError):
    """The server closed the session or said the page does not exist."""


@dataclass
class RunResult:
    """One page run as this client saw it: seconds from the request to ``script_finished``, messages and bytes
    received, and how many of its elements were exceptions."""

    seconds: float
    messages: int
    received_bytes: int
    errors: int


@dataclass
class _Pending:
    done: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0
    received_bytes: int = 0
    errors: int = 0
    failure: str | None = None
    chunks: list[bytes] = field(default_factory=list)


class Session:
    """One browser-less session: ``async with Session(url, cookies) as s: await s.open("funnel", "region=X")``."""

    def __init__(self, base_url: str, cookies: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self._url = f"ws://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"
        self._cookies = cookies or {}
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: _Pending | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._query = ""
        self._page_hash = ""
        self.fragment_runs = 0
        self.last_payload = b""
        """Every message of the last page run, as received (to look for a text the page shows)."""
        self._closed: str | None = None
        """Every message of the last page run, as received (to look for a text the page shows)."""

    async def __aenter__(self) -> Session:
        from websockets.asyncio.client import connect

        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self._cookies.items())} if self._cookies else {}
        self._ws = await connect(self._url, subprotocols=["streamlit"], additional_headers=headers,  # type: ignore[list-item]
                                 max_size=None, open_timeout=60, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            await self._ws.close()

    async def open(self, page: str, query: str = "", timeout: float = 900) -> RunResult:
        """Run ``page`` (its URL path, "" for the main page) with ``query`` and wait for the run to end; a
        ProtocolError when the connection is closed or the page does not exist, TimeoutError after ``timeout``."""
        from websockets.exceptions import ConnectionClosed

        if self._closed:
            raise ProtocolError(self._closed)
        self._query = query
        pending = self._pending = _Pending()
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        started = time.perf_counter()
        try:
            await self._ws.send(msg.SerializeToString())
            await asyncio.wait_for(pending.done.wait(), timeout)
        except ConnectionClosed as exc:
            raise ProtocolError(f"connection closed: {exc}") from exc
        finally:
            self._pending = None
        self.last_payload = b"".join(pending.chunks)
        if pending.failure:
            raise ProtocolError(pending.failure)
        return RunResult(time.perf_counter() - started, pending.messages, pending.received_bytes, pending.errors)

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self._handle(data)
        except Exception as exc:  # the connection closed: whoever waits learns why
            self._closed = f"connection closed: {exc!r}"
        else:
            self._closed = "connection closed by the server"
        if self._pending is not None:
            self._pending.failure = self._closed
            self._pending.done.set()

    def _handle(self, data: bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        pending = self._pending
        if pending is not None:
            pending.messages += 1
            pending.received_bytes += len(data)
            pending.chunks.append(data)
        if kind == "new_session":
            self._page_hash = msg.new_session.page_script_hash
        elif kind == "delta" and pending is not None:
            if msg.delta.WhichOneof("type") == "new_element" and msg.delta.new_element.WhichOneof("type") == "exception":
                pending.errors += 1
        elif kind == "page_not_found" and pending is not None:
            pending.failure = f"page not found: {msg.page_not_found.page_name!r}"
            pending.done.set()
        elif kind == "script_finished" and pending is not None and msg.script_finished in _DONE:
            pending.done.set()
        elif kind == "auto_rerun":
            fragment, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fragment not in self._timers and interval > 0:
                self._timers[fragment] = asyncio.create_task(self._every(fragment, interval))
        elif kind == "stop_auto_rerun":
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    async def _every(self, fragment: str, interval: float) -> None:
        """The browser's timer for an ``auto_rerun`` fragment: rerun it every ``interval`` seconds, skipping a
        tick while a page run is waiting (the browser does not send fragment reruns during a full run)."""
        while True:
            await asyncio.sleep(interval)
            if self._pending is not None:
                continue
            msg = BackMsg()
            msg.rerun_script.query_string = self._query
            msg.rerun_script.page_script_hash = self._page_hash
            msg.rerun_script.fragment_id = fragment
            msg.rerun_script.is_auto_rerun = True
            self.fragment_runs += 1
            await self._ws.send(msg.SerializeToString())
