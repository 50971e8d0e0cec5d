"""Load test: many sessions changing filters against one `streamlit run`, timed on the server.

    python bench/bench_load.py                                    # 1M deals (scale 100), 20 sessions, cockpit + funnel
    python bench/bench_load.py --think 10                         # each session waits ~10 s between its views
    python bench/bench_load.py --client browser                   # 20 headless Chromium tabs instead
    python bench/bench_load.py --scale 10 --sessions 5 --steps 2   # smoke run, about a minute
    python bench/bench_load.py --out bench/last-load.md
    python bench/bench_load.py --scale 1000 --pg --snapshots bench/.cache/scale-snapshots-1000 --memory-limit 12
                                                                  # 10M deals, the server in a 12 GB cgroup (root)

Two kinds of client (``--client``):

- ``protocol`` (default): each session is one websocket speaking Streamlit's own protocol (tests/e2e/protocol.py):
  it sends the page runs a browser sends, reruns the app's timed fragments as a browser's timer does, and
  draws nothing. The server does all of its work (every script run, every message built and sent); the two
  cores are left to it instead of to 20 browsers. A session keeps its websocket and changes its filters
  through the query string, as a person following links or moving filters does.
- ``browser``: one headless Chromium context per session, each view a navigation (a new Streamlit session
  and the app's static files every time). On two cores the browsers take most of the CPU.

``--think S``: each session waits between 0.5 S and 1.5 S seconds (seeded) before each view, and starts at a
random point of the first S seconds: people reading a page before changing a filter. ``--think 0`` (default)
sends every session's next view the moment its last one ended: a burst, the worst case.

The server runs with ``CRM_RERUN_LOG`` (crm/ui/rerun_log.py): every rerun writes its wall time (from the
script's start to its last queued message), the script thread's CPU time, the server process's CPU time and
its memory. On this two-core machine the headless browsers of a loopback test take most of the CPU, so the
figures that count are the server's: the rerun times from that log, and the server's CPU time over the load
phase divided by the reruns it served.

Phases:

1. warm-up: one session opens the cockpit (always first: a fresh server's first run of a deep link skips
   app.py, see crm/ui/rerun_log.py), waits for the churn fit and quality check the cockpit starts in the
   background, then
   opens each other page with the default filters (the data is loaded or its snapshot mapped; the default
   view's results are cached);
2. load: ``--sessions`` sessions (each its own cookie and Streamlit session) start together; each opens
   each page of ``--pages`` ``--steps`` + 1 times: first with the default filters (the same for every
   session: computed once, then shared from the cache), then with ``--steps`` filters no other session
   asks for (the period's end moved back by a different number of days, every other one restricted to one
   region). The whole phase is bounded by ``--timeout``.

Reported: per page and kind of view (shared / own filter), the server's rerun wall time (median, p95,
max), thread CPU per rerun, the server process's CPU per rerun over the phase, its memory after the warm-up
and at the end (sessions must not multiply it), and the browser-side time from navigation to an idle page.
Target (issue 14): p95 per rerun under 2 s at 1M deals. The store is the Parquet-cached demo data that
bench/bench_restart.py writes to SQLite (bench/.cache/restart-scale{S}.db).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pages import print_and_write, quantile  # noqa: E402
from bench_restart import postgres_store, sqlite_store  # noqa: E402
from datagen import AS_OF  # noqa: E402

from crm import auth  # noqa: E402
from crm.demo import REGIONS  # noqa: E402
from crm.store import Store  # noqa: E402
from crm.ui.session import COOKIE  # noqa: E402
from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, run_streamlit, session_cookie  # noqa: E402
from tests.e2e.protocol import Session  # noqa: E402

PATHS = {"cockpit": "", "funnel": "funnel", "satisfaction": "satisfaction", "service": "service",
         "customers": "customers", "segments": "segments"}
TARGET_P95_S = 2.0
BACKGROUND_WORDS = ("computing…", "being checked in the background")
"""What the cockpit says while its background work (the churn fit, the quality check) is not done."""
DONE = """() => document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState === "notRunning"
    && !document.querySelector('[data-testid="stSkeleton"], [data-stale="true"]')"""
"""The run has ended and every element is drawn (the idle state alone comes before a new session's elements)."""


@dataclass(frozen=True)
class Visit:
    """One navigation of one session: which page, with which query string, and whether others share it."""

    session: int
    page: str
    query: str
    shared: bool


def own_query(session: int, step: int, steps: int) -> str:
    """A filter no other session asks for: a 90-day period ending ``k`` days before the data's last day (k
    unique per session and step), every other one restricted to one region."""
    k = 1 + session * steps + step
    end = AS_OF - timedelta(days=k)
    start = end - timedelta(days=89)
    query = f"from={start.isoformat()}&to={end.isoformat()}"
    if k % 2:
        query += "&region=" + REGIONS[k % len(REGIONS)].replace(" ", "+")
    return query


def plan(sessions: int, pages: list[str], steps: int) -> list[list[Visit]]:
    """Each session's visits in order: per page the shared default view, then ``steps`` filters of its own."""
    def for_page(session: int, page: str) -> list[Visit]:
        return [Visit(session, page, "", True),
                *(Visit(session, page, own_query(session, i, steps), False) for i in range(steps))]

    return [[v for page in pages for v in for_page(session, page)] for session in range(sessions)]


async def visit(page: Any, base: str, v: Visit, timeout_ms: float) -> float:
    """Open ``v`` and wait until its script run has ended; the seconds it took as the browser saw them."""
    started = time.perf_counter()
    url = f"{base}/{PATHS[v.page]}" + (f"?{v.query}" if v.query else "")
    await page.goto(url, timeout=timeout_ms)
    await page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=timeout_ms)  # the run has started
    await page.wait_for_function(DONE, timeout=timeout_ms, polling=100)
    if v.session < 0 and v.page == "cockpit":  # warm-up: wait for the work the cockpit starts in the background
        await page.wait_for_function(  # both at once: while a run redraws the page, neither words may show
            f"() => ({DONE})() && !{list(BACKGROUND_WORDS)!r}.some(w => document.body.innerText.includes(w))",
            timeout=timeout_ms)
    return time.perf_counter() - started


async def run_session(browser: Any, base: str, token: str, visits: list[Visit], timeout_ms: float,
                      seen: list[tuple[Visit, float]]) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_cookies([session_cookie(token)])
    page = await context.new_page()
    try:
        for v in visits:
            seen.append((v, await visit(page, base, v, timeout_ms)))
    finally:
        await context.close()


async def drive(base: str, tokens: list[str], pages: list[str], steps: int, timeout_s: float,
                log: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    timeout_ms = timeout_s * 1000
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        warm: list[tuple[Visit, float]] = []
        started = time.perf_counter()
        first = ["cockpit", *(p for p in pages if p != "cockpit")]
        await run_session(browser, base, tokens[0], [Visit(-1, p, "", True) for p in first], timeout_ms, warm)
        warm_s = time.perf_counter() - started
        mark = len(log.read_text().splitlines()) if log.exists() else 0
        seen: list[tuple[Visit, float]] = []
        visits = plan(len(tokens), pages, steps)
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(run_session(browser, base, tokens[i], visits[i], timeout_ms, seen)
                                                for i in range(len(tokens)))), timeout=timeout_s)
        load_s = time.perf_counter() - started
        await browser.close()
    return {"warm": warm, "warm_s": warm_s, "seen": seen, "load_s": load_s, "mark": mark}


def pause(rng: random.Random, think: float) -> float:
    """Seconds a person reads a page before the next view: uniform in [0.5, 1.5] × ``think``."""
    return rng.uniform(0.5, 1.5) * think if think > 0 else 0.0


async def protocol_session(base: str, token: str, visits: list[Visit], timeout_s: float, think: float,
                           seed: int, seen: list[tuple[Visit, float]], errors: list[str]) -> int:
    """One browser-less session (tests/e2e/protocol.py): its visits in order over one websocket; the fragment
    reruns its timers sent."""
    rng = random.Random(seed)
    async with Session(base, {COOKIE: token}) as session:
        await asyncio.sleep(rng.uniform(0, think) if think > 0 else 0.0)
        for i, v in enumerate(visits):
            if i:
                await asyncio.sleep(pause(rng, think))
            run = await session.open(PATHS[v.page], v.query, timeout=timeout_s)
            if run.errors:
                errors.append(f"{v.page}?{v.query}: {run.errors} error element(s)")
            seen.append((v, run.seconds))
        return session.fragment_runs


async def protocol_warm_up(base: str, token: str, pages: list[str], timeout_s: float,
                           seen: list[tuple[Visit, float]]) -> None:
    """The first session: the cockpit, until the work it starts in the background is done (the churn fit:
    its tile no longer says "computing…"; the quality check: its footer no longer says the tables are being
    checked), then every other page."""
    async with Session(base, {COOKIE: token}) as session:
        deadline = time.perf_counter() + timeout_s
        while True:
            run = await session.open("", "", timeout=timeout_s)
            if not any(w.encode() in session.last_payload for w in BACKGROUND_WORDS) or time.perf_counter() > deadline:
                break
            await asyncio.sleep(2)
        seen.append((Visit(-1, "cockpit", "", True), run.seconds))
        for page in pages:
            if page != "cockpit":
                run = await session.open(PATHS[page], "", timeout=timeout_s)
                seen.append((Visit(-1, page, "", True), run.seconds))


async def drive_protocol(base: str, tokens: list[str], pages: list[str], steps: int, timeout_s: float,
                         log: Path, think: float) -> dict[str, Any]:
    warm: list[tuple[Visit, float]] = []
    started = time.perf_counter()
    await protocol_warm_up(base, tokens[0], pages, timeout_s, warm)
    warm_s = time.perf_counter() - started
    mark = len(log.read_text().splitlines()) if log.exists() else 0
    seen: list[tuple[Visit, float]] = []
    errors: list[str] = []
    visits = plan(len(tokens), pages, steps)
    started, cpu = time.perf_counter(), time.process_time()
    fragment_runs = await asyncio.wait_for(asyncio.gather(
        *(protocol_session(base, tokens[i], visits[i], timeout_s, think, 1000 + i, seen, errors)
          for i in range(len(tokens)))), timeout=timeout_s)
    return {"warm": warm, "warm_s": warm_s, "seen": seen, "load_s": time.perf_counter() - started, "mark": mark,
            "client_cpu_s": time.process_time() - cpu, "fragment_runs": sum(fragment_runs), "errors": errors}


def page_of(path: str) -> str:
    return next((name for name, p in PATHS.items() if p == path), path)


def summary_rows(reruns: list[dict[str, Any]], seen: list[tuple[Visit, float]]) -> list[str]:
    rows = []
    for page in sorted({page_of(r["page"]) for r in reruns}):
        for shared in (True, False):
            mine = [r for r in reruns if page_of(r["page"]) == page and (not r["query"]) == shared]
            clicks = [s for v, s in seen if v.page == page and v.shared == shared]
            if not mine:
                continue
            wall = [r["seconds"] for r in mine]
            cpu = [r["thread_cpu_s"] for r in mine]
            rows.append(f"| {page} | {'default (shared)' if shared else 'own filter'} | {len(mine)} | "
                        f"{statistics.median(wall):.2f} | {quantile(wall, 0.95):.2f} | {max(wall):.2f} | "
                        f"{statistics.median(cpu):.2f} | "
                        f"{statistics.median(clicks) if clicks else float('nan'):.1f} / "
                        f"{quantile(clicks, 0.95) if clicks else float('nan'):.1f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100, help="demo scale (100 = 1M deals)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2, help="filters of its own per session and page")
    parser.add_argument("--pages", nargs="+", default=["cockpit", "funnel"], choices=sorted(PATHS))
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole load phase")
    parser.add_argument("--client", choices=["protocol", "browser"], default="protocol",
                        help="browser-less sessions over Streamlit's websocket protocol, or headless Chromium")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a session reads a page before its next view (0: a burst)")
    parser.add_argument("--pg", action="store_true", help="the demo store on PostgreSQL instead of SQLite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--snapshots", type=Path, metavar="DIR",
                        help="serve from this snapshot folder (e.g. the one bench_scale.py --keep left for the "
                             "same store) instead of a new one of the run's own, which is removed at the end")
    parser.add_argument("--memory-limit", type=float, metavar="GB",
                        help="run the server in a memory cgroup of GB gigabytes, its page cache included (root): "
                             "the page cache is dropped first, the cgroup's peak is reported")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    url = postgres_store(args.scale, args.pg_url) if args.pg else sqlite_store(args.scale)
    with Store(url) as store:
        auth.add_demo_users(store)
        tokens = [auth.create_session(store, "exec") for _ in range(args.sessions)]
    work = Path(tempfile.mkdtemp(prefix="crm-bench-load-"))
    log = work / "reruns.jsonl"
    os.environ["CRM_RERUN_LOG"] = str(log)
    snapshots = args.snapshots.resolve() if args.snapshots else work / "snapshots"
    os.environ["CRM_SNAPSHOT_DIR"] = str(snapshots)
    limit = None
    if args.memory_limit:
        from bench_scale import MemoryLimit

        limit = MemoryLimit(args.memory_limit)
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("1")  # pages cached already would be charged elsewhere
    try:
        with run_streamlit(url, work / "server.log", admit_session=False) as server:
            if limit:  # a fresh server (about 200 MB, left uncounted): everything it takes from now on is charged
                (limit.path / "cgroup.procs").write_text(str(server.pid))
            if args.client == "protocol":
                result = asyncio.run(drive_protocol(server.url, tokens, args.pages, args.steps, args.timeout, log,
                                                    args.think))
            else:
                result = asyncio.run(drive(server.url, tokens, args.pages, args.steps, args.timeout, log))
    finally:  # the run's own snapshot: 3.3 GB at 1M deals; the rerun log and server log stay in `work`
        shutil.rmtree(work / "snapshots", ignore_errors=True)
        held = limit.report() if limit else None
        if limit:
            print(f"# the server's memory cgroup: {held}", file=sys.stderr)
            limit.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    warm, load = lines[:result["mark"]], lines[result["mark"]:]
    reruns = [r for r in load if r["outcome"] == "done"]
    wall = [r["seconds"] for r in reruns]
    cpu_phase = load[-1]["process_cpu_s"] - warm[-1]["process_cpu_s"] if warm and load else float("nan")
    p95 = quantile(wall, 0.95)
    script_cpu = sum(r["thread_cpu_s"] for r in load)
    static = ", the static files for each new browser" if args.client == "browser" else ""
    report = [
        f"# Load test: demo scale {args.scale:g} on {'PostgreSQL' if args.pg else 'SQLite'}, "
        f"{args.sessions} sessions × {len(args.pages)} pages × "
        f"(1 shared + {args.steps} own filters), {args.client} clients, think time {args.think:g} s, "
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
        "",
        f"- warm-up (first session, every page once, data loaded or snapshot mapped): {result['warm_s']:.1f} s; "
        f"server RSS after it {warm[-1]['rss_mb'] if warm else float('nan'):,.0f} MB",
        f"- load phase: {result['load_s']:.1f} s wall, {len(load)} reruns logged ({len(reruns)} ran to the end; "
        f"{sum(1 for r in load if r['outcome'] == 'rerun')} asked for a rerun)",
        f"- server CPU over the load phase: {cpu_phase:.1f} s, **{cpu_phase / max(len(load), 1):.2f} s per rerun**; "
        f"of it the scripts' own threads {script_cpu:.1f} s ({script_cpu / max(len(load), 1):.2f} s per rerun), the "
        f"rest (Polars' worker threads, the websockets{static}) "
        f"{cpu_phase - script_cpu:.1f} s",
        f"- the server's CPU use over the load phase: {cpu_phase / result['load_s'] / (os.cpu_count() or 1):.0%} "
        f"of the machine's {os.cpu_count()} cores"
        + (f"; the load test's own clients: {result['client_cpu_s']:.1f} s of CPU, "
           f"{result['fragment_runs']} timed fragment reruns sent" if "client_cpu_s" in result else ""),
        *(f"- **errors shown**: {e}" for e in result.get("errors", [])),
        f"- server RSS at the end {load[-1]['rss_mb'] if load else float('nan'):,.0f} MB, peak "
        f"{max((r['peak_rss_mb'] for r in lines), default=float('nan')):,.0f} MB",
        *([f"- the server in a {args.memory_limit:g} GB memory cgroup (page cache included): peak "
           f"{held['peak_mb'] / 1024:.1f} GB, limit reached {held['limit_hits']:,} times, OOM kills "
           f"{held['oom_kills']}"] if held else []),
        f"- rerun wall time on the server: median {statistics.median(wall):.2f} s, **p95 {p95:.2f} s**, max "
        f"{max(wall):.2f} s: target p95 < {TARGET_P95_S:.0f} s **{'met' if p95 < TARGET_P95_S else 'missed'}**",
        "",
        "| page | view | reruns | server wall median s | p95 s | max s | script thread CPU median s | "
        "client: request → run ended median / p95 s |",
        "|---|---|---|---|---|---|---|---|",
        *summary_rows(reruns, result["seen"]),
    ]
    print_and_write(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
