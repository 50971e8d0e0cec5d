"""Scale benchmark: one server process on the demo store at 10M deals (scale 1000, about 155M rows).

    python bench/bench_scale.py                  # scale 1000, SQLite (the store takes ~15 min to build once)
    python bench/bench_scale.py --scale 100      # the same at 1M deals (a few minutes)
    python bench/bench_scale.py --keep --memory-limit 12   # each phase in a 12 GB memory cgroup (root)
    python bench/bench_scale.py --restart-only   # only the restart, over the snapshot --keep left

Each phase runs in a fresh Python process, as a server would:

- **first start**: ``load_frames(store)`` with an empty snapshot folder: every table read from the store and
  prepared, the snapshot written as it goes (crm.snapshot.SnapshotWriter);
- **restart**: ``load_frames(store)`` maps that snapshot; then every page's computations, as
  crm/ui/loaders.py asks for them, for the default view (cold: the first visitor) and for ``--warm``
  different filters (warm: a filter change, the frames in memory, no result cached).

Memory is sampled from /proc/self/status every 20 ms: resident anonymous memory (the process's own:
what no other process or the page cache can take back) and resident file pages (the memory-mapped
snapshot: page cache, shared by every process mapping it, dropped and read again under pressure), and
VmHWM (their sum's peak). The issue's targets: the server fits in 12 GB; a warm cockpit filter change
under 1.5 s, every other page under 3 s; a restart on unchanged data to the first cockpit under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

COCKPIT_TARGET_S = 1.5
PAGE_TARGET_S = 3.0
RESTART_TARGET_S = 10.0
MEMORY_TARGET_MB = 12 * 1024


class MemorySampler:
    """Peaks of RssAnon and RssFile (MB) while running, sampled every 20 ms by a thread."""

    def __init__(self) -> None:
        self.anon = self.file = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> dict[str, float]:
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        return {k: int(status[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile", "VmRSS", "VmHWM")}

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            now = self.now()
            self.anon, self.file = max(self.anon, now["RssAnon"]), max(self.file, now["RssFile"])

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def pages() -> dict[str, dict[str, Callable[..., Any]]]:
    """Every page's computations for one view (bench_pages.View), as crm/ui/loaders.py asks for them."""
    from bench_pages import FUNNEL_PAGE, SATISFACTION_PAGE, SERVICE_PAGE, kpi_trend_of, kpis_of, report

    from crm.metrics.churn import ACTIVE_WINDOW_DAYS
    from crm.narrowing import narrowing_scope, scores
    from crm.segment_rules import SegmentRule
    from crm.segments import customer_table

    def segment_grid(frames: Any, v: Any) -> Any:
        scored = scores(frames, SegmentRule.for_filters(v.filters), v.filters.period.end, narrowing_scope(v.filters))
        return customer_table(frames, scored, v.filters.period.end, limit=5_000)

    return {
        # the trends as a server computes them: a filter's whole months reused (crm.results.computed_trend)
        "cockpit": {"kpis + previous": kpis_of("cockpit"),
                    "kpi trend (12 months)": kpi_trend_of("cockpit", reuse_months=True),
                    "revenue_by_month": report("revenue_by_month")},
        "funnel": FUNNEL_PAGE,
        "satisfaction": {**SATISFACTION_PAGE, "kpi trend (12 months)": kpi_trend_of("satisfaction", reuse_months=True)},
        "service": {**SERVICE_PAGE, "kpi trend (12 months)": kpi_trend_of("service", reuse_months=True)},
        "churn & retention": {
            "churn_summary": report("churn_summary", window=ACTIVE_WINDOW_DAYS),
            "kpi trend (12 months)": kpi_trend_of("customers", reuse_months=True),
            "churn_trend": report("churn_trend", window=ACTIVE_WINDOW_DAYS),
            "cohort_retention": report("cohort_retention", window=ACTIVE_WINDOW_DAYS),
            "churn_by (region)": report("churn_by", window=ACTIVE_WINDOW_DAYS, by="region"),
        },
        "segments": {"scores + grid (5,000 rows)": segment_grid, "rfm_transitions": report("rfm_transitions")},
    }


def run_phase(url: str, warm: int) -> dict[str, Any]:
    """One fresh process: load (snapshot or store), then (warm > 0 or the first cockpit) the pages."""
    started = time.perf_counter()
    from crm import results
    from crm.dataset import load_frames
    from crm.filters import Filters, Period
    from crm.metrics import compute_with_previous, monthly_trend
    from crm.metrics.kpis import METRIC_SETS
    from crm.narrowing import narrow
    from crm.reports import build_report
    from crm.scope import Scope
    from crm.store import Store

    imported = time.perf_counter()
    marks: list[tuple[float, str]] = []
    with MemorySampler() as load_memory:
        frames = load_frames(Store(url), progress=lambda f, text: marks.append((time.perf_counter(), text)))
    loaded = time.perf_counter()
    after_load = MemorySampler.now()
    preparing = next((t for t, text in marks if text.startswith("Preparing")), None)
    out: dict[str, Any] = {
        "import_s": imported - started, "load_s": loaded - imported,
        "read_s": (preparing or loaded) - imported, "prepare_s": loaded - preparing if preparing else 0.0,
        "from_snapshot": any("from the snapshot" in text for _, text in marks),
        "rows": sum(getattr(frames, n).height for n in ("customers", "opportunities", "stages", "tickets", "surveys",
                                                        "orders", "order_items", "interactions")),
        "load_anon_mb": load_memory.anon, "load_file_mb": load_memory.file, "after_load": after_load,
    }
    with MemorySampler() as page_memory:
        # the first cockpit as its page asks for it (loaders.get_kpis, get_trend, get_report: crm.results, which
        # reads what an earlier process kept for this data state), timed from the process's start: crm's
        # imports, the load, the numbers (not the benchmark's own imports below)
        anchor = frames.last_event_date()
        assert anchor is not None
        view = Filters.create(Period(anchor.fromordinal(anchor.toordinal() - 89), anchor), scope=Scope())
        kept_before = results.results_folder(frames.version, frames.stamp)
        out["kept_results"] = len(list(kept_before.glob("*-*.*"))) if kept_before and kept_before.is_dir() else 0
        results.kpis(frames, view, "cockpit")
        results.trend(frames, view.ending(), 12, "cockpit")
        results.report(frames, "revenue_by_month", view)
        out["first_cockpit_s"] = time.perf_counter() - started
        # the same numbers computed from the mapped tables (what a view no one asked for yet costs now)
        computing = time.perf_counter()
        compute_with_previous(narrow(frames, view), view.period, METRIC_SETS["cockpit"])
        monthly_trend(narrow(frames, view.ending()), view.ending().period, 12, METRIC_SETS["cockpit"])
        build_report("revenue_by_month", frames, view)
        out["first_cockpit_computed_s"] = time.perf_counter() - computing
        # Polars' size estimate reads every text column's views: after the first cockpit, not inside its time
        out["frames_mb"] = sum(getattr(frames, n).estimated_size("mb") for n in (
            "customers", "opportunities", "stages", "tickets", "surveys", "orders", "order_items", "deal_intervals",
            "interactions"))
        from bench_pages import cold_view, run_page, warm_views

        every = pages()
        out["cold"] = {"cockpit": run_page(every["cockpit"], frames, cold_view()).seconds}
        if warm:
            for page, panels in every.items():
                if page != "cockpit":
                    out["cold"][page] = run_page(panels, frames, cold_view()).seconds
            out["warm"] = {page: [run_page(panels, frames, view).seconds for view in warm_views(warm)]
                           for page, panels in every.items()}
    out["pages_anon_mb"], out["pages_file_mb"] = page_memory.anon, page_memory.file
    out["end"] = MemorySampler.now()
    return out


CGROUP_V1 = Path("/sys/fs/cgroup/memory")
PHASE_TIMEOUT_S = 1800
"""A phase that has not finished by then is reported as such (in a memory cgroup too small for its working
set the kernel drops and re-reads pages without end rather than killing it)."""


class MemoryLimit:
    """A memory cgroup (cgroup v1, as on this machine) holding a phase's process: ``limit_gb`` of memory in
    all, the page cache of the mapped snapshot included, so the kernel drops and re-reads file pages above
    it and kills the process if its own memory does not fit. Reports the cgroup's peak and how often it hit
    the limit."""

    def __init__(self, limit_gb: float) -> None:
        self.path = CGROUP_V1 / f"crm-bench-{os.getpid()}-{time.monotonic_ns()}"
        try:
            self.path.mkdir()
            (self.path / "memory.limit_in_bytes").write_text(str(int(limit_gb * 1024**3)))
            (self.path / "memory.memsw.limit_in_bytes").write_text(str(int(limit_gb * 1024**3)))
        except OSError as exc:
            raise SystemExit(f"--memory-limit needs a writable memory cgroup at {CGROUP_V1} ({exc})") from exc

    def enter(self) -> None:
        """In the child, before exec: join the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def report(self) -> dict[str, float]:
        def read(name: str) -> int:
            return int((self.path / name).read_text())

        return {"peak_mb": read("memory.max_usage_in_bytes") / 1024**2, "limit_hits": read("memory.failcnt"),
                "oom_kills": int(dict(line.split() for line in (self.path / "memory.oom_control").read_text()
                                      .splitlines()).get("oom_kill", 0))}

    def close(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def phase(url: str, folder: Path, warm: int, limit_gb: float | None = None, cold: bool = False) -> dict[str, Any]:
    env = {**os.environ, "CRM_SNAPSHOT_DIR": str(folder)}
    command = [sys.executable, str(Path(__file__)), "--phase", "--url", url, "--warm", str(warm)]
    limit = MemoryLimit(limit_gb) if limit_gb else None
    if limit or cold:  # pages already cached are charged to whoever read them first: start from a cold page cache
        subprocess.run(["sync"], check=False)
        try:
            Path("/proc/sys/vm/drop_caches").write_text("1")
        except OSError as exc:
            raise SystemExit(f"--memory-limit needs to drop the page cache first ({exc})") from exc
    try:
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                                  preexec_fn=limit.enter if limit else None, timeout=PHASE_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            held = f" (cgroup: {limit.report()})" if limit else ""
            raise SystemExit(f"phase did not finish in {PHASE_TIMEOUT_S} s{held}") from exc
        if done.returncode:
            killed = f" (cgroup: {limit.report()})" if limit else ""
            raise SystemExit(f"phase failed ({done.returncode}){killed}:\n{done.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if limit:
            result["cgroup"] = {"limit_gb": limit_gb, **limit.report()}
        return result
    finally:
        if limit:
            limit.close()


def _s(seconds: float) -> str:
    return f"{seconds:.2f}"


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report_lines(scale: float, store: str, first: dict[str, Any], restart: dict[str, Any]) -> list[str]:
    lines = [f"### Scale {scale:g} on {store}: {restart['rows']:,} rows read, prepared frames "
             f"{_gb(restart['frames_mb'])} GB (Polars' estimate)", "",
             "| phase | load s (read / prepare) | first cockpit s | results kept before | the same computed s | "
             "peak anon GB | peak file GB | VmHWM GB | anon / file GB after |", "|---|---|---|---|---|---|---|---|---|"]
    for name, run in (("first start (store → snapshot)", first), ("restart (snapshot mapped)", restart)):
        peak_anon = max(run["load_anon_mb"], run["pages_anon_mb"])
        peak_file = max(run["load_file_mb"], run["pages_file_mb"])
        computed = _s(run["first_cockpit_computed_s"]) if "first_cockpit_computed_s" in run else "–"
        lines.append(f"| {name} | {_s(run['load_s'])} ({_s(run['read_s'])} / {_s(run['prepare_s'])}) | "
                     f"{_s(run['first_cockpit_s'])} | {run.get('kept_results', '–')} | {computed} | "
                     f"{_gb(peak_anon)} | {_gb(peak_file)} | {_gb(run['end']['VmHWM'])} | "
                     f"{_gb(run['end']['RssAnon'])} / {_gb(run['end']['RssFile'])} |")
    lines += ["", "Per page, seconds: cold (default view) and warm (each filter different; median, max).", "",
              "| page | cold | warm median | warm max | target | |", "|---|---|---|---|---|---|"]
    for page, runs in restart["warm"].items():
        totals = [sum(r.values()) for r in runs]
        target = COCKPIT_TARGET_S if page == "cockpit" else PAGE_TARGET_S
        median = statistics.median(totals)
        lines.append(f"| {page} | {_s(sum(restart['cold'][page].values()))} | {_s(median)} | {_s(max(totals))} | "
                     f"< {target:g} | {verdict(median < target)} |")
    lines += ["", "Slowest parts (warm median, seconds):", ""]
    parts = []
    for page, runs in restart["warm"].items():
        for part in runs[0]:
            parts.append((statistics.median(r[part] for r in runs), page, part))
    lines += [f"- {page} / {part}: {_s(s)}" for s, page, part in sorted(parts, reverse=True)[:8]]
    server_peak = max(restart["load_anon_mb"], restart["pages_anon_mb"]) + max(restart["load_file_mb"],
                                                                                restart["pages_file_mb"])
    computed = restart.get("first_cockpit_computed_s")
    lines += ["", f"- Restart to the first cockpit: {_s(restart['first_cockpit_s'])} s (target < {RESTART_TARGET_S:g} s): "
              f"{verdict(restart['first_cockpit_s'] < RESTART_TARGET_S)}; it read {restart.get('kept_results', 0)} "
              "results the first start kept (crm.results)" + (
                  f"; computing the same numbers from the mapped tables then took {_s(computed)} s." if computed else "."),
              f"- Server memory serving every page: peak {_gb(server_peak)} GB resident (anon + mapped file pages; "
              f"target 12 GB): {verdict(server_peak < MEMORY_TARGET_MB)}. First start: peak anon "
              f"{_gb(first['load_anon_mb'])} GB, VmHWM {_gb(first['end']['VmHWM'])} GB."]
    for name, run in (("first start", first), ("restart", restart)):
        if "cgroup" in run:
            c = run["cgroup"]
            lines.append(f"- {name} in a memory cgroup of {c['limit_gb']:g} GB (page cache included): peak "
                         f"{_gb(c['peak_mb'])} GB, the limit reached {c['limit_hits']:,} times (file pages dropped "
                         f"and read again), processes killed for memory: {c['oom_kills']}.")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1000)
    parser.add_argument("--warm", type=int, default=3, help="different filters per page (default 3)")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true",
                        help="keep the snapshot in bench/.cache/scale-snapshots-S (for --restart-only runs)")
    parser.add_argument("--memory-limit", type=float, metavar="GB",
                        help="run each phase in a memory cgroup of GB gigabytes (page cache included)")
    parser.add_argument("--cold-restart", action="store_true",
                        help="drop the page cache before the restart (a restart after a reboot; root)")
    parser.add_argument("--restart-only", action="store_true",
                        help="only the restart phase, over the snapshot a --keep run left")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.url, args.warm)))
        return 0
    from bench_restart import postgres_store, sqlite_store

    started = time.perf_counter()
    url = postgres_store(args.scale, args.pg_url) if args.pg else sqlite_store(args.scale)
    print(f"# store ready after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    kept = BENCH / ".cache" / f"scale-snapshots-{args.scale:g}"
    folder = kept if args.keep or args.restart_only else Path(tempfile.mkdtemp(prefix="crm-scale-"))
    try:
        if args.restart_only:
            first = json.loads((kept / "first-start.json").read_text())
        else:
            shutil.rmtree(folder, ignore_errors=True)
            first = phase(url, folder, 0, args.memory_limit)
            (folder / "first-start.json").write_text(json.dumps(first))
        print(f"# first start: {first['load_s']:.0f} s", file=sys.stderr)
        subprocess.run(["sync"], check=False)
        restart = phase(url, folder, args.warm, args.memory_limit, cold=args.cold_restart)
    finally:
        if folder != kept:
            shutil.rmtree(folder, ignore_errors=True)
    from bench_pages import loadavg, print_and_write

    lines = report_lines(args.scale, "PostgreSQL" if args.pg else "SQLite", first, restart)
    lines += ["", f"Run {time.strftime('%Y-%m-%d')}, {(time.perf_counter() - started) / 60:.1f} min; "
              f"load average at the end {loadavg()}; {os.cpu_count()} cores."]
    print_and_write(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
