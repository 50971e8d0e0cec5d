"""How long each rerun takes on the server, for load tests (bench/bench_load.py): one JSON line per rerun.

Off unless ``CRM_RERUN_LOG`` names a file. A line is written when the page's script ends, however it ends
(normally, ``st.stop``, ``st.rerun``, an error): by then every message of the rerun is queued for the browser,
so the wall time is the time from the rerun's start to its last message. Each line holds

- ``page``: the page's URL path; ``query``: the query string's parameters (what the filters were);
- ``seconds``: wall time of the rerun; ``thread_cpu_s``: CPU time of the script's own thread (Streamlit runs
  each session's script in a thread; Polars' worker threads are not in it);
- ``process_cpu_s``: CPU time of the whole server process at the end of the rerun (user + system, every
  thread): the difference between two lines is what the server spent between them, whoever it served;
- ``rss_mb`` / ``peak_rss_mb``: the server's resident memory at the end of the rerun, and its peak so far;
- ``ended``: Unix time at the end; ``outcome``: ``done``, ``stop``, ``rerun`` or the exception's name.

A deep link that is a fresh server's very first script run executes the page file without app.py (Streamlit's
legacy pages/ folder; see TESTING-NOTES), so that one run is not logged: a load test opens the cockpit first.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV = "CRM_RERUN_LOG"
_WRITE = threading.Lock()


def _memory_mb() -> tuple[float, float]:
    """Resident memory of this process now and its peak so far, in MB (VmRSS, VmHWM of /proc/self/status;
    zeros where that is not available)."""
    fields: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0]) * 1024 / 1e6  # kB
    except (OSError, IndexError, ValueError):
        pass
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "done"
    name = type(error).__name__
    return {"StopException": "stop", "RerunException": "rerun"}.get(name, name)


def record(path: Path, page: str, query: Mapping[str, Any], seconds: float, thread_cpu_s: float,
           error: BaseException | None = None) -> dict[str, Any]:
    """Append one rerun's line to ``path`` (one write under a lock: concurrent sessions do not interleave)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss, peak = _memory_mb()
    line = {
        "page": page, "query": dict(query), "seconds": round(seconds, 6), "thread_cpu_s": round(thread_cpu_s, 6),
        "process_cpu_s": round(usage.ru_utime + usage.ru_stime, 6), "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1), "ended": round(time.time(), 6), "outcome": _outcome(error),
    }
    with _WRITE, path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
    return line


@contextmanager
def timed_rerun(page: str, query: Mapping[str, Any]) -> Iterator[None]:
    """Time the body (a page's script) and log it when ``CRM_RERUN_LOG`` is set; re-raise whatever it raised
    (Streamlit's stop and rerun are exceptions it must see)."""
    target = os.environ.get(ENV, "").strip()
    if not target:
        yield
        return
    started, started_cpu = time.perf_counter(), time.thread_time()
    error: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        record(Path(target), page, query, time.perf_counter() - started, time.thread_time() - started_cpu, error)
