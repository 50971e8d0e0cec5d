"""Data-quality checks of a whole store: time and memory of the piecewise scan against reading every table whole.

    python bench/bench_quality.py --scale 100            # 1M deals on SQLite (the store from bench_restart's cache)
    python bench/bench_quality.py --scale 1000 --pg       # 10M deals on PostgreSQL
    python bench/bench_quality.py --scale 1000 --pg --no-whole --memory-limit 12

The cockpit's footer shows a link when a table scores below 95 (crm.quality.store_scores); the Data quality page
shows findings, completeness, freshness and the scores (crm.quality.store_report). Both read the store a piece
of ``--rows`` rows at a time (Store.read_batches); duplicate keys and ids that name no row are found by the
database (crm.quality.Stored). The reference is what the
app did before: every business table read whole (crm.quality.read_tables), then the same checks over the frames
(crm.quality.quality_scores, crm.quality.report). Each way runs in a fresh Python process (as a server's first
check would), its peak resident anonymous memory sampled every 20 ms (bench_scale.MemorySampler); with
``--memory-limit`` each runs in a memory cgroup of that many GB (root; a way that does not fit is reported as
killed). The values of the two ways are compared: they must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

WAYS = {
    "scores, in pieces (the cockpit's footer)": "store_scores",
    "scores, every table whole (before)": "whole_scores",
    "report, in pieces (the Data quality page)": "store_report",
    "report, every table whole (before)": "whole_report",
}


def run_way(url: str, way: str, rows: int) -> dict[str, Any]:
    """In this (fresh) process: one way's result, seconds and peak anonymous memory (MB)."""
    from bench_scale import MemorySampler

    from crm import quality
    from crm.store import Store

    store = Store(url)
    with MemorySampler() as memory:
        started = time.perf_counter()
        if way == "store_scores":
            result = {"scores": quality.store_scores(store, rows=rows)}
        elif way == "whole_scores":
            result = {"scores": quality.quality_scores(quality.read_tables(store))}
        else:
            got = (quality.store_report(store, rows=rows) if way == "store_report"
                   else quality.report(quality.InMemory(quality.read_tables(store))))
            result = {"scores": got.scores, "findings": got.findings, "completeness": got.completeness,
                      "latest": got.latest}
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "anon_mb": memory.anon, "rows": int(result["scores"]["rows"].sum()),
            "values": {k: v.write_json() for k, v in result.items()}}


def in_fresh_process(url: str, way: str, rows: int, limit_gb: float | None) -> dict[str, Any] | None:
    """``run_way`` in a new Python process (in a memory cgroup of ``limit_gb`` GB when given); None when it
    was killed."""
    from bench_scale import MemoryLimit

    command = [sys.executable, __file__, "--child", way, "--url", url, "--rows", str(rows)]
    limit = MemoryLimit(limit_gb) if limit_gb else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              preexec_fn=limit.enter if limit else None)
    finally:
        if limit:
            limit.close()
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--pg-url", default=os.environ.get("CRM_TEST_PG_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per piece")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-table reference")
    parser.add_argument("--memory-limit", type=float, metavar="GB", help="each way in a memory cgroup (root)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_way(args.url, args.child, args.rows)))
        return 0

    from bench_pages import loadavg, print_and_write, table
    from bench_restart import postgres_store, sqlite_store

    started = time.perf_counter()
    url = postgres_store(args.scale, args.pg_url) if args.pg else sqlite_store(args.scale)
    got: dict[str, dict[str, Any] | None] = {}
    for title, way in WAYS.items():
        if args.no_whole and way.startswith("whole"):
            continue
        print(f"# {title} …", file=sys.stderr)
        got[title] = in_fresh_process(url, way, args.rows, args.memory_limit)
    rows: list[list[str]] = []
    for title, result in got.items():
        if result is None:
            rows.append([title, "killed" if args.memory_limit else "failed", "", "", ""])
            continue
        whole = got.get(title.split(", ")[0] + ", every table whole (before)")
        compared = whole is not None and whole is not result
        rows.append([title, f"{result['seconds']:.1f} s", f"{result['anon_mb'] / 1024:.2f} GB",
                     f"{whole['seconds'] / result['seconds']:.2f}× / {whole['anon_mb'] / result['anon_mb']:.1f}×"
                     if compared and whole else "",
                     ("equal" if whole["values"] == result["values"] else "**DIFFERENT**") if compared and whole else ""])
    store = f"{'PostgreSQL' if args.pg else 'SQLite'}, scale {args.scale:g}"
    total = next((r["rows"] for r in got.values() if r), 0)
    lines = [f"# Data-quality checks of the whole store ({store}, {total:,} rows, pieces of {args.rows:,} rows)", "",
             table(["way", "time", "peak anonymous memory", "whole ÷ pieces: time / memory", "values"], rows), "",
             f"Run {time.strftime('%Y-%m-%d')}, {(time.perf_counter() - started) / 60:.1f} min; load average at the "
             f"end {loadavg()}; {os.cpu_count()} cores"
             + (f"; each way in a {args.memory_limit:g} GB memory cgroup" if args.memory_limit else "") + "."]
    print_and_write(lines, args.out)
    return 0 if all(r is not None for r in got.values()) or args.memory_limit else 1


if __name__ == "__main__":
    sys.exit(main())
