"""Benchmark of the cockpit at ~1M opportunities and ~1M tickets: writes, reads, load, KPIs, memory.

    python bench/bench_cockpit.py [--scale 100] [--skip-postgres] [--warm 20] [--out FILE]

See bench/README.md for what is measured and how; bench/RESULTS.md for a run.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import pandas_reference as ref  # noqa: E402
import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from datagen import AS_OF, SEED, load_or_generate  # noqa: E402

from crm import schema  # noqa: E402
from crm.dataset import COLUMNS, Frames, enrich, load_frames  # noqa: E402
from crm.filters import Filters, Period  # noqa: E402
from crm.metrics import compute_with_previous, monthly_trend  # noqa: E402
from crm.narrowing import narrow  # noqa: E402
from crm.scope import Scope  # noqa: E402
from crm.store import Store, _conform  # noqa: E402

try:
    import duckdb_reference as dref
except ImportError:  # duckdb is not installed: the DuckDB reference is off (said in the report)
    dref = None  # type: ignore[assignment]

REGIONS = ("Europe", "North America", "Asia Pacific", "Latin America")
PG_ADMIN_URL = os.environ.get("CRM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


# --- memory -----------------------------------------------------------------


def _status(field_name: str) -> int:
    """A field of /proc/self/status in bytes (0 where unavailable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset the peak RSS (VmHWM) of this process; False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass
class Phase:
    """Wall time and peak resident memory of one phase of the run."""

    name: str
    seconds: float = 0.0
    rss_before: int = 0
    peak: int = 0
    exact_peak: bool = True


PHASES: list[Phase] = []


@contextlib.contextmanager
def phase(name: str) -> Iterator[Phase]:
    """Time a phase and record the process's peak RSS during it (VmHWM, reset at the start)."""
    record = Phase(name, rss_before=_status("VmRSS"))
    record.exact_peak = _reset_peak()
    started = time.perf_counter()
    try:
        yield record
    finally:
        record.seconds = time.perf_counter() - started
        record.peak = _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        PHASES.append(record)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def _rate(rows: int, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    r = rows / seconds
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def _ms(s: float) -> str:
    return f"{s * 1000:,.0f}"


# --- environment ------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def frames_size(frames: Frames) -> int:
    """Bytes the enriched frames hold (Polars' estimate, buffers shared between frames counted twice)."""
    return sum(v.estimated_size() for v in vars(frames).values() if isinstance(v, pl.DataFrame))


def environment(pg_version: str | None) -> list[tuple[str, str]]:
    """Machine and library versions for the report."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    load = os.getloadavg()
    return [
        ("python -VV", sys.version.replace("\n", " ")),
        ("uname -r", platform.release()),
        ("cpus / memory", f"{os.cpu_count()} / {mem / 2**30:.0f} GiB"),
        ("load average at start", " ".join(f"{x:.2f}" for x in load)),
        ("polars", pl.__version__), ("pandas", _version("pandas")), ("pyarrow", _version("pyarrow")),
        ("numpy", _version("numpy")), ("sqlalchemy", sa.__version__), ("connectorx", _version("connectorx")),
        ("adbc-driver-manager", _version("adbc-driver-manager")),
        ("adbc-driver-postgresql", _version("adbc-driver-postgresql")),
        ("adbc-driver-sqlite", _version("adbc-driver-sqlite")), ("psycopg", _version("psycopg")),
        ("duckdb", _version("duckdb")), ("sqlite3 (library)", sqlite3.sqlite_version),
        ("PostgreSQL server", pg_version or "not used"),
        ("POLARS_MAX_THREADS / pool", f"{os.environ.get('POLARS_MAX_THREADS', '-')} / {pl.thread_pool_size()}"),
    ]


# --- stores -----------------------------------------------------------------


def create_pg_database(admin_url: str, name: str) -> tuple[str, str]:
    """(Re)create database ``name``; its URL and the server version."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, str(version)


def drop_pg_database(admin_url: str, name: str) -> None:
    """Drop the benchmark database (connections of this process are closed first)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class WriteResult:
    store: str
    total_rows: int
    seconds: float
    per_table: dict[str, tuple[int, float]] = field(default_factory=dict)


def write_store(store: Store, label: str, frames: dict[str, pl.DataFrame]) -> WriteResult:
    """Store.replace_business_data, timed as a whole and per table (insert_frame wrapped)."""
    per_table: dict[str, tuple[int, float]] = {}
    inner = store.insert_frame

    def timed(conn: Any, name: str, frame: pl.DataFrame) -> None:
        started = time.perf_counter()
        inner(conn, name, frame)
        per_table[name] = (frame.height, time.perf_counter() - started)

    store.insert_frame = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        store.replace_business_data(frames)
    finally:
        del store.insert_frame
    return WriteResult(label, sum(f.height for f in frames.values()), time.perf_counter() - started, per_table)


# --- reads ------------------------------------------------------------------


def _query(store: Store, name: str, columns: list[str]) -> str:
    table = schema.table(name)
    query = sa.select(*[table.c[c] for c in columns])
    return str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))


def read_adbc_sqlite(store: Store, name: str, columns: list[str]) -> pl.DataFrame:
    """ADBC read of a SQLite file (Store offers ADBC on PostgreSQL only): pl.read_database over an
    ADBC connection, cast to the canonical dtypes like Store does (timestamps arrive as text)."""
    import adbc_driver_sqlite.dbapi as driver

    with driver.connect(str(Path(store.url.database or "").resolve())) as conn:
        frame = pl.read_database(_query(store, name, columns), conn)
    return _conform(frame, schema.polars_schema(name, columns))


def read_path(store: Store, path: str) -> Callable[[str, list[str]], tuple[pl.DataFrame, str]]:
    """A reader for one path: Store.read_table(path=...) (its adbc path is PostgreSQL only), or
    the benchmark's own ADBC read for SQLite. Returns the frame and the path that really read it."""
    if path == "adbc" and store.dialect == "sqlite":
        return lambda name, cols: (read_adbc_sqlite(store, name, cols), "adbc")

    def read(name: str, cols: list[str]) -> tuple[pl.DataFrame, str]:
        result = store.read_table(name, cols, path=path)
        return result.frame, result.path

    return read


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> str:
    """'' when both frames hold the same rows (any order) with the same dtypes, else why not."""
    if set(a.columns) == set(b.columns):
        b = b.select(a.columns)
    if a.schema != b.schema:
        diff = {c: (str(a.schema.get(c)), str(b.schema.get(c))) for c in set(a.columns) | set(b.columns)
                if a.schema.get(c) != b.schema.get(c)}
        return f"dtypes differ {diff}"
    if a.height != b.height:
        return f"{a.height} rows, expected {b.height}"
    if not a.hash_rows().sort().equals(b.hash_rows().sort()):
        return "values differ"
    return ""


@dataclass
class ReadResult:
    dialect: str
    path: str
    table: str
    rows: int
    seconds: float
    peak: int
    problem: str


def bench_reads(store: Store, label: str, source: dict[str, pl.DataFrame], paths: list[str]) -> list[ReadResult]:
    """Every table load_frames reads, through every path; checked against the source frames."""
    out: list[ReadResult] = []
    for path in paths:
        reader = read_path(store, path)
        for name, cols in COLUMNS.items():
            expected = source[name].select(cols)
            with phase(f"read {label} {path} {name}") as ph:
                started = time.perf_counter()
                try:
                    frame, used = reader(name, cols)
                    problem = "" if used == path else f"fell back to {used}"
                except Exception as exc:  # a path that cannot read a table is a finding, not a crash
                    frame, problem = None, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                seconds = time.perf_counter() - started
            PHASES.pop()  # per-table phases go to the read table, not the phase table
            if frame is not None:
                problem = "; ".join(x for x in (problem, same_rows(frame, expected)) if x)
            out.append(ReadResult(label, path, name, expected.height, seconds, ph.peak - ph.rss_before, problem))
            print(f"  read {label:10} {path:10} {name:18} {expected.height:>9,} rows {seconds:6.2f} s"
                  f" {problem or 'ok'}", flush=True)
            del frame
    return out


# --- KPIs ---------------------------------------------------------------------


def warm_filters(n: int) -> list[Filters]:
    """``n`` different filters around the default view: the 90 days ending 2026-06-30 shifted back by
    whole days, with no region or one region (the app caches identical filters, so every one differs)."""
    out = []
    for i in range(1, n + 1):
        end = AS_OF - timedelta(days=i // 5)
        regions = () if i % 5 == 0 else (REGIONS[i % 5 - 1],)
        out.append(Filters.create(Period(end - timedelta(days=89), end), regions=regions, scope=Scope()))
    return out


def cold_filter() -> Filters:
    """The default view: the 90 days ending on the data's last day, no dimension filter."""
    return Filters.create(Period(AS_OF - timedelta(days=89), AS_OF), preset="last_90", scope=Scope())


@dataclass
class Timing:
    kpis: float
    trend: float
    cpu: float

    @property
    def total(self) -> float:
        return self.kpis + self.trend


def time_polars(frames: Frames, filters: Filters) -> tuple[Timing, tuple[dict, dict], list[dict]]:
    """What the cockpit computes on a filter change (crm.ui.loaders): KPIs with the previous period,
    and the 12-month trend for the sparklines, each on freshly narrowed frames."""
    cpu = time.process_time()
    started = time.perf_counter()
    values = compute_with_previous(narrow(frames, filters), filters.period)
    middle = time.perf_counter()
    trend = monthly_trend(narrow(frames, filters), filters.period, 12)
    ended = time.perf_counter()
    return Timing(middle - started, ended - middle, time.process_time() - cpu), values, trend.to_dicts()


def time_reference(module: Any, data: Any, filters: Filters) -> tuple[Timing, tuple[dict, dict], list[dict]]:
    """The same with a reference implementation: ``module`` is pandas_reference (``data``: its PandasData) or
    duckdb_reference (``data``: its Engine; one query for both periods, one for the 12 months)."""
    cpu = time.process_time()
    started = time.perf_counter()
    values = module.compute_with_previous(data, filters)
    middle = time.perf_counter()
    trend = module.monthly_trend(data, filters)
    ended = time.perf_counter()
    return Timing(middle - started, ended - middle, time.process_time() - cpu), values, trend


def mismatches(filters: Filters, crm_values: tuple[dict, dict], crm_trend: list[dict],
               pd_values: tuple[dict, dict], pd_trend: list[dict], other: str = "pandas") -> list[str]:
    """Where crm and a reference (``other``: pandas or DuckDB) disagree (money: within a cent, as crm
    rounds to cents)."""
    pairs = [("current", crm_values[0], pd_values[0]), ("previous", crm_values[1], pd_values[1])]
    pairs += [(f"trend {a['month']}", a, b) for a, b in zip(crm_trend, pd_trend, strict=True)]
    out = []
    for where, c, p in pairs:
        for key in ref.KEYS:
            u, v = c.get(key), p.get(key)
            if isinstance(u, float) and math.isnan(u):
                u = None
            if u is None or v is None:
                if not (u is None and v is None):
                    out.append(f"{filters.describe()} {where} {key}: crm {u!r} {other} {v!r}")
                continue
            tolerance = 0.0051 if key in ref.MONEY else 1e-9 * max(1.0, abs(v))
            if abs(u - v) > tolerance:
                out.append(f"{filters.describe()} {where} {key}: crm {u!r} {other} {v!r}")
    return out


DUCKDB_LABELS = {"arrow": "DuckDB SQL over the Arrow buffers (zero copy)", "native": "DuckDB SQL over native tables"}


@dataclass
class DuckRuns:
    """The DuckDB reference's side of the KPI section: its set-up, timings per mode, value mismatches."""

    setup: Any
    """``duckdb_reference.Setup``: the engines and the set-up times."""
    cold: dict[str, Timing] = field(default_factory=dict)
    warm: dict[str, list[Timing]] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)
    checked: int = 0

    def run(self, f: Filters, crm_values: tuple[dict, dict], crm_trend: list[dict], cold: bool = False) -> None:
        """Time every mode on filter ``f`` and compare its values with crm's."""
        for mode, engine in self.setup.engines.items():
            timing, values, trend = time_reference(dref, engine, f)
            if cold:
                self.cold[mode] = timing
            else:
                self.warm.setdefault(mode, []).append(timing)
            self.found += mismatches(f, crm_values, crm_trend, values, trend, f"DuckDB ({mode})")
        self.checked += 1


def duckdb_lines(duck: DuckRuns, polars_cold: Timing, polars_warm: list[Timing]) -> list[str]:
    """The side-by-side table crm vs DuckDB, the verdict, the set-up times and the value check."""
    pw = summary(polars_warm)
    rows = [["crm (Polars)", _ms(polars_cold.total), f"**{_ms(pw['total'])}**", _ms(pw["p90"]), "", ""]]
    missed = []
    for mode, times in duck.warm.items():
        dw = summary(times)
        met = pw["total"] <= dw["total"]
        missed += [] if met else [DUCKDB_LABELS[mode]]
        rows.append([DUCKDB_LABELS[mode], _ms(duck.cold[mode].total), f"**{_ms(dw['total'])}**", _ms(dw["p90"]),
                     f"{dw['total'] / pw['total']:.2f}x", "met" if met else "**missed**"])
    setup = duck.setup
    return [
        "### crm vs DuckDB SQL over the same data", "",
        "The same filter changes, interleaved (crm, then DuckDB over Arrow, then DuckDB native, per filter): "
        "KPIs + previous period + 12-month trend. Milliseconds; ratio = DuckDB warm median / crm warm median.", "",
        table(["engine", "cold", f"warm median ({len(polars_warm)})", "warm p90", "DuckDB / crm",
               "crm at least as fast"], rows), "",
        "- Target 3, crm at least as fast as DuckDB SQL (warm median, both ways of feeding DuckDB): "
        + ("met." if not missed else f"**missed** against {', '.join(missed)}."),
        f"- DuckDB set-up, once per data version and not in the timings: prepare (Polars joins: the customer's "
        f"attributes onto the facts, the stages' onto the history) {setup.prepare_seconds:.2f} s; Arrow views "
        f"{setup.load_seconds['arrow'] * 1000:.0f} ms; native tables (CREATE TABLE AS, load) "
        f"{setup.load_seconds['native']:.2f} s. bench/duckdb_reference.py computes what pandas_reference.py "
        "computes (not the five business-hours metrics).",
        f"- Values: crm vs DuckDB on {duck.checked} filters × {len(setup.engines)} ways × 14 periods × "
        f"{len(ref.KEYS)} metrics: "
        + ("all agree." if not duck.found else f"**{len(duck.found)} mismatches** (first 20 below)."),
        *[f"  - {line}" for line in duck.found[:20]],
    ]


def summary(times: list[Timing]) -> dict[str, float]:
    def q(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]

    totals = [t.total for t in times]
    return {
        "kpis": statistics.median(t.kpis for t in times), "trend": statistics.median(t.trend for t in times),
        "total": statistics.median(totals), "p90": q(totals, 0.9), "max": max(totals), "min": min(totals),
        "cpu": statistics.median(t.cpu for t in times),
    }


# --- main ---------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def memory_section(level: str = "###") -> list[str]:
    """The report's peak-memory table of every phase so far, and the process peak, as lines."""
    return [
        f"{level} Peak memory (RSS from /proc/self/status: VmHWM reset per phase via /proc/self/clear_refs)", "",
        table(["phase", "seconds", "RSS before", "peak RSS", "peak − before"],
              [[p.name, f"{p.seconds:.1f}", _mb(p.rss_before), _mb(p.peak) + ("" if p.exact_peak else " (ru_maxrss)"),
                _mb(max(0, p.peak - p.rss_before))] for p in PHASES]), "",
        f"Process peak over the whole run (getrusage ru_maxrss): "
        f"{_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}.",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the CRM cockpit at about 1M opportunities and tickets.")
    parser.add_argument("--scale", type=float, default=100, help="demo scale: 1 = 10k opportunities / 10k tickets")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas reference (timing and value check)")
    parser.add_argument("--skip-duckdb", action="store_true",
                        help="no DuckDB reference (on by default when duckdb imports: timing and value check)")
    parser.add_argument("--kpis-only", action="store_true",
                        help="no stores: KPIs on frames enriched from the Parquet cache (a quick re-measure)")
    parser.add_argument("--warm", type=int, default=20, help="filters timed warm with Polars (default 20)")
    parser.add_argument("--pandas-warm", type=int, default=3, help="filters timed warm with pandas (default 3)")
    parser.add_argument("--paths", default="connectorx,sqlalchemy,adbc", help="read paths to time")
    parser.add_argument("--regenerate", action="store_true", help="ignore the Parquet cache in bench/.cache")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="an existing database to connect to for CREATE DATABASE")
    parser.add_argument("--pg-db", default="crm_bench", help="the database created (and dropped) for the run")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and the PostgreSQL database")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    args = parser.parse_args()

    report: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        report.append(text)

    pg_url = pg_version = None
    if not args.skip_postgres and not args.kpis_only:
        pg_url, pg_version = create_pg_database(args.pg_url, args.pg_db)
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    stores: dict[str, Store] = {} if args.kpis_only else {"SQLite": Store(f"sqlite:///{tmp / 'crm.db'}")}
    if pg_url:
        stores["PostgreSQL"] = Store(pg_url)
    run_started = time.perf_counter()
    try:
        env = environment(pg_version)
        with phase("demo data (Parquet cache or generate)"):
            frames, source, seconds = load_or_generate(args.scale, args.regenerate)
        rows = {k: v.height for k, v in frames.items()}
        print(f"data: {source} in {seconds:.1f} s: {rows}", flush=True)

        writes: list[WriteResult] = []
        for label, store in stores.items():
            with phase(f"write {label} (replace_business_data)"):
                writes.append(write_store(store, label, frames))
            print(f"write {label}: {writes[-1].seconds:.1f} s", flush=True)

        reads: list[ReadResult] = []
        auto_paths: dict[str, dict[str, str]] = {}
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        for label, store in stores.items():
            auto_paths[label] = {name: store.read_table(name, cols[:1], path="auto").path for name, cols in COLUMNS.items()}
            reads += bench_reads(store, label, frames, paths)

        loads: list[tuple[str, float]] = []
        loaded: dict[str, Frames] = {}
        for label, store in stores.items():
            with phase(f"load_frames {label}") as ph:
                started = time.perf_counter()
                loaded[label] = load_frames(store)
                loads.append((label, time.perf_counter() - started))
            print(f"load_frames {label}: {ph.seconds:.1f} s", flush=True)
        raw = {name: frames[name].select(cols) for name, cols in COLUMNS.items()}
        with phase("enrich only (from memory)"):
            started = time.perf_counter()
            enriched = enrich(raw)
            enrich_seconds = time.perf_counter() - started
        if not loaded:
            loaded["the Parquet cache (enrich, no store)"] = enriched
        del frames, enriched

        # KPIs on the frames loaded from the first store, as the app has them after load_frames
        kpi_label, kpi_frames = next(iter(loaded.items()))
        with phase("Polars KPIs, cold (first call)"):
            polars_cold, cold_values, cold_trend = time_polars(kpi_frames, cold_filter())
        store_differences = []
        for other, other_frames in list(loaded.items())[1:]:
            if compute_with_previous(narrow(other_frames, cold_filter()), cold_filter().period) != cold_values:
                store_differences.append(other)
            del loaded[other]
        duck = None
        if dref is not None and not args.skip_duckdb:
            with phase("DuckDB set-up (prepare, Arrow views, native tables)"):
                duck = DuckRuns(dref.set_up(raw, time.perf_counter))
            with phase("DuckDB KPIs, cold (first call, each way)"):
                duck.run(cold_filter(), cold_values, cold_trend, cold=True)
        warm = warm_filters(args.warm)
        polars_warm: list[Timing] = []
        polars_results: dict[Filters, tuple[tuple[dict, dict], list[dict]]] = {cold_filter(): (cold_values, cold_trend)}
        with phase(f"Polars KPIs, warm ({len(warm)} filters)" + (", DuckDB interleaved" if duck else "")):
            for f in warm:
                timing, values, trend = time_polars(kpi_frames, f)
                polars_warm.append(timing)
                polars_results[f] = (values, trend)
                if duck:
                    duck.run(f, values, trend)
        print(f"polars: cold {polars_cold.total * 1000:.0f} ms, warm median "
              f"{summary(polars_warm)['total'] * 1000:.0f} ms", flush=True)
        if duck:
            print("duckdb: warm median " + ", ".join(f"{mode} {summary(t)['total'] * 1000:.0f} ms"
                                                     for mode, t in duck.warm.items())
                  + f"; {len(duck.found)} mismatches", flush=True)

        pandas_cold = None
        pandas_warm: list[Timing] = []
        found: list[str] = []
        checked = 0
        if not args.skip_pandas:
            with phase("pandas prepare (to_pandas + joins)"):
                started = time.perf_counter()
                data = ref.prepare(raw)
                pandas_prepare = time.perf_counter() - started
            with phase("pandas KPIs, cold (first call)"):
                pandas_cold, values, trend = time_reference(ref, data, cold_filter())
            found += mismatches(cold_filter(), cold_values, cold_trend, values, trend)
            checked += 1
            with phase(f"pandas KPIs, warm ({args.pandas_warm} filters)"):
                for f in warm[:args.pandas_warm]:
                    timing, values, trend = time_reference(ref, data, f)
                    pandas_warm.append(timing)
                    found += mismatches(f, *polars_results[f], values, trend)
                    checked += 1
            print(f"pandas: cold {pandas_cold.total:.1f} s; {len(found)} mismatches", flush=True)
        load_end = os.getloadavg()
        total_seconds = time.perf_counter() - run_started

        # --- report -----------------------------------------------------------
        emit(f"# Cockpit benchmark: scale {args.scale:g}, seed {SEED}, as of {AS_OF}")
        emit()
        emit(f"Run {date.today().isoformat()}, {total_seconds / 60:.1f} min; load average at the end: "
             + " ".join(f"{x:.2f}" for x in load_end) + ".")
        emit()
        emit(table(["", ""], [[k, v] for k, v in env]))
        emit()
        emit(f"Data ({source}, {seconds:.1f} s): " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
             + f"; {sum(rows.values()):,} rows in all.")
        emit()
        if writes:
            emit("## Writes (Store.replace_business_data, one transaction, all tables)")
            emit()
        write_rows = []
        for w in writes:
            big = ", ".join(f"{n} {_rate(r, s)}/s" for n, (r, s) in w.per_table.items() if r >= 500_000)
            write_rows.append([w.store, f"{w.total_rows:,}", f"{w.seconds:.1f}", _rate(w.total_rows, w.seconds), big])
        if writes:
            emit(table(["store", "rows", "seconds", "rows/s", "per large table (rows/s)"], write_rows))
            emit()
            emit("## Reads (the columns load_frames reads, whole tables; checked against the source rows)")
            emit()
        for label in stores:
            emit(f"### {label} — `Store.read_table(path='auto')` uses: "
                 + ", ".join(sorted(set(auto_paths[label].values()))))
            emit()
            by = {(r.path, r.table): r for r in reads if r.dialect == label}
            headers = ["table", "rows", *[f"{p} s (rows/s)" for p in paths]]
            body = []
            for name in COLUMNS:
                cells = [name, f"{by[(paths[0], name)].rows:,}"]
                for p in paths:
                    r = by[(p, name)]
                    cells.append(("FAILED " if r.problem.startswith("failed") else "")
                                 + f"{r.seconds:.2f} ({_rate(r.rows, r.seconds)})" + (f" — {r.problem}" if r.problem else ""))
                body.append(cells)
            totals = ["all", f"{sum(by[(paths[0], n)].rows for n in COLUMNS):,}"]
            for p in paths:
                sec = sum(by[(p, n)].seconds for n in COLUMNS)
                ok = all(not by[(p, n)].problem for n in COLUMNS)
                totals.append(f"**{sec:.1f} ({_rate(sum(by[(p, n)].rows for n in COLUMNS), sec)})**"
                              + ("" if ok else " (not all correct)"))
            body.append(totals)
            emit(table(headers, body))
            emit()
            peaks = ", ".join(f"{p} {_mb(max(r.peak for r in reads if r.dialect == label and r.path == p))}"
                              for p in paths)
            emit(f"Largest extra RSS during one table read: {peaks}.")
            emit()
        emit("## load_frames (read every table via 'auto' + enrich)")
        emit()
        emit(table(["store", "seconds"], [[lbl, f"{s:.1f}"] for lbl, s in loads]
                   + [["enrich alone (from memory)", f"{enrich_seconds:.1f}"]]))
        emit()
        emit(f"The enriched frames hold {_mb(frames_size(kpi_frames))} (Polars' estimated_size).")
        emit()
        emit(f"## Cockpit KPIs on a filter change ({kpi_label} frames in memory)")
        emit()
        for other in store_differences:
            emit(f"**The frames loaded from {other} give other KPIs than those from {kpi_label}.**")
            emit()
        emit("One filter change = `compute_with_previous(narrow(frames, f), f.period)` + "
             "`monthly_trend(narrow(frames, f), f.period, 12)` (what crm/ui/loaders.py computes). Cold: the first "
             "call after load_frames (default 90-day view). Warm: frames in memory, each call a different filter "
             "(end date shifted back 0–4 days, no region or one region), so no result cache helps. Milliseconds.")
        emit()
        pw = summary(polars_warm)
        rows_kpi = [
            ["Polars (crm), cold", _ms(polars_cold.kpis), _ms(polars_cold.trend), _ms(polars_cold.total), "", "", "",
             _ms(polars_cold.cpu)],
            [f"Polars (crm), warm, median of {len(polars_warm)}", _ms(pw["kpis"]), _ms(pw["trend"]), f"**{_ms(pw['total'])}**",
             _ms(pw["min"]), _ms(pw["p90"]), _ms(pw["max"]), _ms(pw["cpu"])],
        ]
        if pandas_cold is not None:
            dw = summary(pandas_warm) if pandas_warm else None
            rows_kpi.append(["pandas reference, cold", _ms(pandas_cold.kpis), _ms(pandas_cold.trend),
                             _ms(pandas_cold.total), "", "", "", _ms(pandas_cold.cpu)])
            if dw:
                rows_kpi.append([f"pandas reference, warm, median of {len(pandas_warm)}", _ms(dw["kpis"]), _ms(dw["trend"]),
                                 _ms(dw["total"]), _ms(dw["min"]), _ms(dw["p90"]), _ms(dw["max"]), _ms(dw["cpu"])])
        for mode, times in (duck.warm.items() if duck else []):
            c, dw = duck.cold[mode], summary(times)
            rows_kpi.append([f"{DUCKDB_LABELS[mode]}, cold", _ms(c.kpis), _ms(c.trend), _ms(c.total), "", "", "",
                             _ms(c.cpu)])
            rows_kpi.append([f"{DUCKDB_LABELS[mode]}, warm, median of {len(times)}", _ms(dw["kpis"]), _ms(dw["trend"]),
                             _ms(dw["total"]), _ms(dw["min"]), _ms(dw["p90"]), _ms(dw["max"]), _ms(dw["cpu"])])
        emit(table(["", "KPIs + previous", "12-month trend", "total", "min", "p90", "max", "CPU (process)"], rows_kpi))
        emit()
        target_ms = 300
        verdict = "met" if pw["total"] * 1000 < target_ms else "**missed**"
        emit(f"- Target 1, warm filter change under {target_ms} ms: {verdict} (median {_ms(pw['total'])} ms, "
             f"p90 {_ms(pw['p90'])} ms).")
        if pandas_cold is not None and pandas_warm:
            ratio_warm = summary(pandas_warm)["total"] / pw["total"]
            ratio_cold = pandas_cold.total / polars_cold.total
            emit(f"- Target 2, at least 3x faster than pandas: {'met' if ratio_warm >= 3 else '**missed**'} "
                 f"(warm: pandas/Polars = {ratio_warm:.0f}x; cold: {ratio_cold:.0f}x). pandas prepare "
                 f"(to_pandas + joins, once per data version): {pandas_prepare:.1f} s vs enrich {enrich_seconds:.1f} s.")
            emit(f"- Values: crm vs the pandas reference on {checked} filters × 14 periods × {len(ref.KEYS)} metrics: "
                 + ("all agree." if not found else f"**{len(found)} mismatches** (first 20 below)."))
            for line in found[:20]:
                emit(f"  - {line}")
        emit()
        if duck and polars_warm:
            for line in duckdb_lines(duck, polars_cold, polars_warm):
                emit(line)
            emit()
        elif dref is None and not args.skip_duckdb:
            emit("DuckDB reference: not run (duckdb does not import; `pip install -r requirements-dev.txt`).")
            emit()
        for line in memory_section("##"):
            emit(line)
        if args.out:
            args.out.write_text("\n".join(report) + "\n")
        return 1 if found or (duck and duck.found) else 0
    finally:
        for store in stores.values():
            store.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
            if pg_url:
                drop_pg_database(args.pg_url, args.pg_db)
        else:
            print(f"kept: {tmp / 'crm.db'}" + (f", PostgreSQL database {args.pg_db}" if pg_url else ""))


if __name__ == "__main__":
    sys.exit(main())
