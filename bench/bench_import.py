"""Import throughput (issue 10): a 1M-row CSV export through crm's importer, against plain pandas.

    python bench/bench_import.py                       # 1M rows, SQLite and PostgreSQL, ~3 min
    python bench/bench_import.py --smoke               # 20k rows: does the script work (~30 s)
    python bench/bench_import.py --rows 200000 --stores sqlite
    python bench/bench_import.py --out bench/last-import.md

The file is an opportunities export as a CRM would write it (12 columns: ids, owner, team,
region, product, plain-decimal amounts with blanks, US dates ``%m/%d/%Y``, a status spelled
Won/Lost/Open, two columns the mapping does not use, one with quoted commas), generated with
numpy and cached with its mapping TOML under ``bench/.cache/``. Every measurement runs in a
child process of its own on a fresh store (schema created, tables empty), so its peak RSS
(``ru_maxrss``: Polars' and Arrow's allocations included, which ``tracemalloc`` does not see) is
that path's alone. See bench/README.md; bench/RESULTS.md for a run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402

CACHE = BENCH / ".cache"
SEED = 7
PG_ADMIN_URL = os.environ.get("CRM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_DB = "crm_bench_import"
TABLE = "opportunities"
CSV_NAME = "opportunities_export.csv"
PANDAS_CHUNK = 50_000
MULTI_CHUNK = 5_000  # method="multi": one INSERT of chunk x 10 parameters (PostgreSQL allows 65,535)
TARGET_ROWS_PER_S = {"sqlite": 200_000, "postgresql": 250_000}
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 1_000.0

# --- the export --------------------------------------------------------------------------------

FIRST = ("Anna", "Vicki", "Darcel", "Jonathan", "Cecily", "Versie", "Moses", "Zane", "Maureen", "Gladys",
         "Kami", "Hayden", "Wilburn", "Rosalina", "Elease", "Cassey", "Lajuana", "Donn", "Reed", "Boris")
LAST = ("Snelling", "Laflamme", "Schlecht", "Berthelot", "Lampkin", "Hillebrand", "Frye", "Levitsky",
        "Kindel", "Jardine")
TEAMS = ("Central East", "Central West", "Nordics", "DACH", "Benelux", "UK & Ireland", "Iberia", "ANZ",
         "Japan", "Brazil", "Mexico", "US West")
TEAM_REGION = ("North America", "North America", "Europe", "Europe", "Europe", "Europe", "Europe",
               "Asia Pacific", "Asia Pacific", "Latin America", "Latin America", "North America")
PRODUCTS = ("GTX Basic", "GTX Pro", "GTX Plus Basic", "GTX Plus Pro", "MG Special", "MG Advanced", "GTK 500",
            "Cloud Suite")
PRODUCT_P = (0.18, 0.16, 0.14, 0.12, 0.14, 0.13, 0.03, 0.10)
SOURCES = ("Web", "Partner", "Event", "Outbound", "Referral", "Trade show")
NOTES = ("", "", "", "Follow up next week", "Budget approved, waiting for PO", "Champion left; re-qualify",
         'Asked for "enterprise" pricing', "Renewal, multi-year", "Needs security review", "Lost to competitor, price")
STATUSES = ("Won", "Lost", "Open")
STATUS_P = (0.30, 0.45, 0.25)
STATUS_MAP = {"Won": "won", "Lost": "lost", "Open": "open"}
COLUMNS = ("Opportunity ID", "Account ID", "Owner", "Team", "Region", "Product", "Amount", "Created Date",
           "Close Date", "Status", "Lead Source", "Notes")
RENAME = {"Opportunity ID": "opportunity_id", "Account ID": "customer_id", "Owner": "owner", "Team": "team",
          "Region": "region", "Product": "product", "Amount": "amount", "Created Date": "created_at",
          "Close Date": "closed_at", "Status": "status"}
DATE_FORMAT = "%m/%d/%Y"

MAPPING = f"""# bench/bench_import.py: the benchmark export's mapping (generated)
[[import]]
table = "{TABLE}"
file = "{CSV_NAME}"
date_formats = ["{DATE_FORMAT}"]
unmapped = "ignore"                 # Lead Source and Notes are not loaded

[import.columns]
opportunity_id = "Opportunity ID"
customer_id = "Account ID"
owner = "Owner"
team = "Team"
region = "Region"
product = "Product"
amount = {{ from = "Amount", default = 0 }}   # blank on some open deals
created_at = "Created Date"
closed_at = "Close Date"
status = {{ from = "Status", values = {{ Won = "won", Lost = "lost", Open = "open" }} }}
"""


def export_dir(rows: int, shuffled: bool = False, seed: int = SEED) -> Path:
    return CACHE / f"import-seed{seed}-rows{rows}{'-shuffled' if shuffled else ''}"


def generate_export(rows: int, seed: int = SEED) -> pl.DataFrame:
    """The export's text columns: ``rows`` deals, drawn with numpy."""
    rng = np.random.default_rng(seed)
    owners = [f"{f} {last}" for f in FIRST for last in LAST][:160]
    owner = rng.integers(0, len(owners), rows)
    team = owner % len(TEAMS)
    status = rng.choice(len(STATUSES), size=rows, p=STATUS_P)
    created = np.datetime64("2022-01-01") + rng.integers(0, 4 * 365, rows).astype("timedelta64[D]")
    closed = created + rng.integers(3, 240, rows).astype("timedelta64[D]")
    cents = np.round(rng.lognormal(np.log(12_000), 1.0, rows) * 100).astype(np.int64)
    blank_amount = (status == 2) & (rng.random(rows) < 0.2)
    frame = pl.DataFrame({
        "_n": np.arange(1, rows + 1), "_account": rng.integers(1, max(2, rows // 5), rows), "_owner": owner,
        "_team": team, "_product": rng.choice(len(PRODUCTS), size=rows, p=PRODUCT_P), "_cents": cents,
        "_blank": blank_amount, "_created": created, "_closed": closed, "_status": status,
        "_source": rng.integers(0, len(SOURCES), rows), "_note": rng.integers(0, len(NOTES), rows),
    })

    def pick(values: tuple[str, ...] | list[str], column: str) -> pl.Expr:
        return pl.col(column).replace_strict(dict(enumerate(values)), return_dtype=pl.String)

    amount = pl.format("{}.{}", pl.col("_cents") // 100, (pl.col("_cents") % 100).cast(pl.String).str.zfill(2))
    return frame.select(
        pl.concat_str(pl.lit("OPP-"), pl.col("_n").cast(pl.String).str.zfill(8)).alias("Opportunity ID"),
        pl.concat_str(pl.lit("ACC-"), pl.col("_account").cast(pl.String).str.zfill(6)).alias("Account ID"),
        pick(owners, "_owner").alias("Owner"),
        pick(TEAMS, "_team").alias("Team"),
        pick(TEAM_REGION, "_team").alias("Region"),
        pick(PRODUCTS, "_product").alias("Product"),
        pl.when(~pl.col("_blank")).then(amount).alias("Amount"),
        pl.col("_created").dt.strftime(DATE_FORMAT).alias("Created Date"),
        pl.when(pl.col("_status") != 2).then(pl.col("_closed").dt.strftime(DATE_FORMAT)).alias("Close Date"),
        pick(STATUSES, "_status").alias("Status"),
        pick(SOURCES, "_source").alias("Lead Source"),
        pick(NOTES, "_note").alias("Notes"),
    )


def load_or_generate_export(rows: int, regenerate: bool = False, shuffled: bool = False) -> tuple[Path, Path, str, float]:
    """The CSV and mapping paths (generated and cached under bench/.cache when missing), the source, seconds.
    ``shuffled``: the same rows in a random order (ids no longer ascending)."""
    folder = export_dir(rows, shuffled)
    csv_path, mapping_path, marker = folder / CSV_NAME, folder / "mapping.toml", folder / "spec.json"
    started = time.perf_counter()
    if marker.exists() and csv_path.exists() and not regenerate:
        mapping_path.write_text(MAPPING)  # always the current mapping
        return csv_path, mapping_path, "cache", time.perf_counter() - started
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    frame = generate_export(rows)
    if shuffled:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=SEED)
    frame.write_csv(csv_path, null_value="")
    mapping_path.write_text(MAPPING)
    marker.write_text(json.dumps({"seed": SEED, "rows": rows, "shuffled": shuffled, "columns": list(COLUMNS)}))
    return csv_path, mapping_path, "generated", time.perf_counter() - started


# --- the measurements (each in a child process) --------------------------------------------------


def _rss_now() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child_importer(spec: dict[str, Any]) -> dict[str, Any]:
    """run_import of the mapping into the store (schema created beforehand), with a phase breakdown."""
    from crm import ingest
    from crm.mapping import load_mapping_file
    from crm.store import Store

    store = Store(spec["url"])
    store.ensure_schema()
    mapping = load_mapping_file(Path(spec["mapping"]))
    spent: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
        return wrapper

    # the breakdown: wrappers around the module-level functions run_import and plan_import call
    ingest.read_source = timed("read (read_source)", ingest.read_source)  # type: ignore[assignment]
    ingest.plan_block = timed("plan_block", ingest.plan_block)  # type: ignore[assignment]
    ingest._store_keys = timed("existing keys (_store_keys)", ingest._store_keys)  # type: ignore[assignment]
    ingest.warnings_for = timed("warnings (warnings_for)", ingest.warnings_for)  # type: ignore[assignment]
    ingest.plan_import = timed("plan_import", ingest.plan_import)  # type: ignore[assignment]
    ingest._write_block = timed("write (_write_block)", ingest._write_block)  # type: ignore[assignment]
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    plan, result = ingest.run_import(store, mapping, actor="bench")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    assert result is not None
    store.close()
    breakdown = {
        "read (read_source)": spent.get("read (read_source)", 0.0),
        "map + validate (plan_block without the read)": spent.get("plan_block", 0.0) - spent.get("read (read_source)", 0.0),
        "existing keys (_store_keys)": spent.get("existing keys (_store_keys)", 0.0),
        "warnings (warnings_for)": spent.get("warnings (warnings_for)", 0.0),
        "write (_write_block: insert_frame per 100k rows)": spent.get("write (_write_block)", 0.0),
    }
    breakdown["rest (schema check, transaction, bookkeeping, commit)"] = seconds - sum(breakdown.values())
    return {"rows": result.loaded, "seconds": seconds, "cpu": cpu, "breakdown": breakdown, "problems": plan.problem_count(),
            "warnings": list(plan.warnings)}


def _child_writer(spec: dict[str, Any]) -> dict[str, Any]:
    """Store.insert_frame alone, on the typed frame run_import would write (planned beforehand, untimed), inside
    Store.bulk_insert as _write_block calls it (where this checkout of crm has it)."""
    import contextlib

    from crm import schema
    from crm.ingest import plan_import
    from crm.mapping import load_mapping_file
    from crm.store import Store

    store = Store(spec["url"])
    store.ensure_schema()
    plan = plan_import(store, load_mapping_file(Path(spec["mapping"])))
    frame = plan.blocks[0].good_rows().drop("_line").with_columns(pl.lit(None, dtype=pl.Int64).alias(schema.IMPORT_BATCH))
    del plan
    started, cpu = time.perf_counter(), time.process_time()
    bulk = getattr(store, "bulk_insert", None)
    with store.transaction() as conn, (bulk(conn, TABLE, frame.height) if bulk else contextlib.nullcontext()):
        store.insert_frame(conn, TABLE, frame)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    return {"rows": frame.height, "seconds": seconds, "cpu": cpu}


def _child_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    """The plain pandas path: read_csv, the same value map, default and date parsing, to_sql in one transaction."""
    import pandas as pd

    engine = sa.create_engine(spec["url"])
    from crm import schema

    with engine.begin() as conn:  # the schema crm creates (same table, same column types)
        schema.metadata.create_all(conn)
    method = spec.get("method")
    chunk = MULTI_CHUNK if method == "multi" else PANDAS_CHUNK
    started, cpu = time.perf_counter(), time.process_time()
    df = pd.read_csv(spec["csv"], dtype={c: str for c in COLUMNS if c != "Amount"})
    df = df[list(RENAME)].rename(columns=RENAME)
    df["amount"] = df["amount"].fillna(0.0)
    df["status"] = df["status"].map(STATUS_MAP)
    df["created_at"] = pd.to_datetime(df["created_at"], format=DATE_FORMAT)
    df["closed_at"] = pd.to_datetime(df["closed_at"], format=DATE_FORMAT)
    with engine.begin() as conn:
        df.to_sql(TABLE, conn, if_exists="append", index=False, chunksize=chunk, method=method)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {"rows": len(df), "seconds": seconds, "cpu": cpu}


CHILDREN = {"importer": _child_importer, "writer": _child_writer, "pandas": _child_pandas}


def child_main(raw: str) -> int:
    spec = json.loads(raw)
    baseline = _rss_now()
    out = CHILDREN[spec["kind"]](spec)
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["baseline"] = baseline
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --- stores ---------------------------------------------------------------------------------------


def _psycopg_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_reachable(admin_url: str) -> tuple[bool, str]:
    """(True, server version) or (False, why not)."""
    try:
        import psycopg

        with psycopg.connect(_psycopg_url(admin_url), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return True, str(row[0]) if row else "?"
    except Exception as exc:  # any failure means: skip PostgreSQL with a note
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def fresh_store(kind: str, admin_url: str, tmp: Path, label: str) -> str:
    """The URL of an empty store: a new SQLite file, or PostgreSQL database ``crm_bench_import`` dropped and created."""
    if kind == "sqlite":
        path = tmp / f"{label}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    with psycopg.connect(_psycopg_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return sa.make_url(admin_url).set(database=PG_DB).render_as_string(hide_password=False)


def drop_store(kind: str, admin_url: str, url: str) -> None:
    if kind == "sqlite":
        Path(sa.make_url(url).database or "").unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(_psycopg_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')


def store_values(url: str) -> dict[str, Any]:
    """What a path wrote, from the store: rows, sum(amount), count per status, closed deals, created_at range."""
    engine = sa.create_engine(url)
    t = sa.table(TABLE, sa.column("amount"), sa.column("status"), sa.column("closed_at"), sa.column("created_at"))
    try:
        with engine.connect() as conn:
            rows, total, closed, first, last = conn.execute(sa.select(
                sa.func.count(), sa.func.sum(t.c.amount), sa.func.count(t.c.closed_at),
                sa.func.min(t.c.created_at), sa.func.max(t.c.created_at))).one()
            statuses: dict[Any, Any] = dict(conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all())
    finally:
        engine.dispose()
    return {"rows": int(rows), "sum(amount)": f"{float(total or 0):,.2f}",
            "count per status": ", ".join(f"{k}: {int(v):,}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))),
            "count(closed_at)": f"{int(closed):,}", "created_at range": f"{str(first)[:10]} .. {str(last)[:10]}"}


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Measure:
    store: str
    path: str
    rows: int
    seconds: float
    cpu: float
    peak: int
    baseline: int
    values: dict[str, Any] | None
    breakdown: dict[str, float] | None = None
    runs: int = 1


def run_child(spec: dict[str, Any], profile: bool = False) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps({**spec, "profile": profile})],
                          capture_output=True, text=True, check=False)
    if profile:
        sys.stderr.write(proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"child {spec['kind']} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure(kind: str, admin_url: str, tmp: Path, path: str, spec: dict[str, Any], repeat: int, profile: bool,
            check: bool) -> Measure:
    """``repeat`` runs, each on a fresh store; the median seconds, the highest peak, the last run's values."""
    results, values = [], None
    for _ in range(repeat):
        url = fresh_store(kind, admin_url, tmp, path.split()[0])
        try:
            results.append(run_child({**spec, "url": url}, profile))
            if check:
                values = store_values(url)
        finally:
            drop_store(kind, admin_url, url)
    secs = statistics.median(r["seconds"] for r in results)
    breakdown = None
    if results[0].get("breakdown"):
        breakdown = {k: statistics.median(r["breakdown"][k] for r in results) for k in results[0]["breakdown"]}
    label = "SQLite" if kind == "sqlite" else "PostgreSQL"
    m = Measure(label, path, results[0]["rows"], secs, statistics.median(r["cpu"] for r in results),
                max(r["peak"] for r in results),
                min(r["baseline"] for r in results), values, breakdown, repeat)
    print(f"  {label:10} {path:34} {m.rows:>10,} rows {secs:7.2f} s (cpu {m.cpu:6.2f} s) {m.rows / secs / 1e3:7.0f}k rows/s "
          f"peak {m.peak / 1e6:,.0f} MB", flush=True)
    return m


def main() -> int:
    parser = argparse.ArgumentParser(description="Import throughput: crm's importer against plain pandas (issue 10).")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the export (default 1,000,000)")
    parser.add_argument("--smoke", action="store_true", help="20,000 rows: check that the script works")
    parser.add_argument("--stores", default="sqlite,postgresql", help="sqlite,postgresql (default both)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, each on a fresh store (median)")
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas reference")
    parser.add_argument("--pandas-multi", action="store_true",
                        help='PostgreSQL: also time to_sql(method="multi") (slow: ~4k rows/s, 10x slower than the default)')
    parser.add_argument("--skip-writer", action="store_true", help="do not time insert_frame alone")
    parser.add_argument("--profile", action="store_true", help="cProfile the importer run (to stderr)")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL,
                        help="where to CREATE DATABASE (default $CRM_TEST_PG_ADMIN_URL or postgres@127.0.0.1:5432/test)")
    parser.add_argument("--shuffle", action="store_true",
                        help="the export's rows in a random order (ids not ascending: random primary-key inserts)")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the cached CSV in bench/.cache")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        return child_main(sys.argv[2])
    args = parser.parse_args()
    rows = 20_000 if args.smoke else args.rows
    kinds = [k.strip().lower() for k in args.stores.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown store(s) {', '.join(sorted(unknown))}: use sqlite,postgresql")

    from bench_cockpit import _rate, environment, phase, table
    from bench_pages import finish_report

    body: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        body.append(text)

    started = time.perf_counter()
    notes: list[str] = []
    pg_version = None
    if "postgresql" in kinds:
        ok, info = pg_reachable(args.pg_url)
        if ok:
            pg_version = info
        else:
            kinds.remove("postgresql")
            notes.append(f"PostgreSQL skipped: {sa.make_url(args.pg_url).render_as_string(hide_password=True)} "
                         f"is unreachable ({info}).")
            print(notes[-1], flush=True)
    env = environment(pg_version)
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "crm"], capture_output=True, text=True).stdout
    env.append(("crm at", f"{commit or '?'}{' + uncommitted changes in crm/' if dirty.strip() else ''}"))
    with phase("export (CSV cache or generate)"):
        csv_path, mapping_path, source, seconds = load_or_generate_export(rows, args.regenerate, args.shuffle)
    size = csv_path.stat().st_size
    print(f"export: {source} in {seconds:.1f} s: {csv_path} ({size / 1e6:,.1f} MB)", flush=True)

    spec = {"csv": str(csv_path), "mapping": str(mapping_path)}
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-import-"))
    results: list[Measure] = []
    try:
        for kind in kinds:
            results.append(measure(kind, args.pg_url, tmp, "importer (run_import)", {**spec, "kind": "importer"},
                                   args.repeat, args.profile, True))
            if not args.skip_pandas:
                results.append(measure(kind, args.pg_url, tmp, f"pandas to_sql (chunksize {PANDAS_CHUNK:,})",
                                       {**spec, "kind": "pandas"}, args.repeat, False, True))
                if kind == "postgresql" and args.pandas_multi:
                    results.append(measure(kind, args.pg_url, tmp, f'pandas to_sql method="multi" ({MULTI_CHUNK:,})',
                                           {**spec, "kind": "pandas", "method": "multi"}, args.repeat, False, True))
            if not args.skip_writer:
                results.append(measure(kind, args.pg_url, tmp, "writer alone (insert_frame)", {**spec, "kind": "writer"},
                                       args.repeat, False, False))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # --- report
    emit(f"## Import throughput: {rows:,} rows" + (" (in random order: --shuffle)" if args.shuffle else ""))
    emit()
    emit(f"Export: `{csv_path.relative_to(ROOT)}` ({size / 1e6:,.1f} MB, {len(COLUMNS)} columns: "
         f"{', '.join(COLUMNS)}; {source}); mapping `{mapping_path.relative_to(ROOT)}` (10 columns mapped, "
         f"dates `{DATE_FORMAT}`, status value map, amount default 0, Lead Source and Notes unmapped). "
         f"Each measurement: a child process on a fresh store with the schema created; "
         f"{args.repeat} run(s), median seconds, highest peak.")
    emit()
    found: list[str] = []
    rows_out = []
    for m in results:
        pandas = [p for p in results if p.store == m.store and p.path.startswith("pandas")]
        best = min(pandas, key=lambda p: p.seconds) if pandas else None
        ratio = f"{best.seconds / m.seconds:.1f}x" if best else "–"
        rows_out.append([m.store, m.path, f"{m.rows:,}", f"{m.seconds:.2f}", _rate(m.rows, m.seconds),
                         f"{m.peak / 1e6:,.0f}", ratio, f"{m.cpu:.2f}"])
    emit(table(["store", "path", "rows", "seconds", "rows/s", "peak MB", "ratio vs pandas", "client CPU s"], rows_out))
    emit()
    emit("Ratio: the fastest pandas path's seconds over this path's, per store. Client CPU: the child process's "
         "CPU time (all its threads) over the same span; the PostgreSQL server's is not in it. Peak MB: the child's "
         f"`ru_maxrss` (whole process; after imports, before the work, it held "
         f"{min(m.baseline for m in results) / 1e6:,.0f}–{max(m.baseline for m in results) / 1e6:,.0f} MB).")
    emit()

    for m in results:
        if m.breakdown:
            emit(f"**Where the importer's time goes, {m.store}** (seconds, median of {m.runs}):")
            emit()
            emit(table(["step", "seconds", "share"],
                       [[k, f"{v:.2f}", f"{v / m.seconds:.0%}"] for k, v in m.breakdown.items()]
                       + [["**run_import**", f"**{m.seconds:.2f}**", "100%"]]))
            emit()

    checked = [m for m in results if m.values is not None]
    if checked:
        keys = list(checked[0].values or {})
        emit("**What each path wrote** (read back from the store):")
        emit()
        emit(table(["store", "path", *keys], [[m.store, m.path, *[str((m.values or {})[k]) for k in keys]] for m in checked]))
        emit()
        for label in dict.fromkeys(m.store for m in checked):
            group = [m for m in checked if m.store == label]
            for other in group[1:]:
                for k in keys:
                    if (other.values or {})[k] != (group[0].values or {})[k]:
                        found.append(f"{label}: {other.path} wrote {k} {other.values[k]!r}, "  # type: ignore[index]
                                     f"{group[0].path} {group[0].values[k]!r}")  # type: ignore[index]
        emit("- Values: " + ("**differ**: " + "; ".join(found) if found else
                             "every path wrote the same rows, sum(amount), count per status, closed deals and date range."))

    if rows < 1_000_000:
        emit(f"- Targets (issue 10) are set for a 1,000,000-row file: not judged at {rows:,} rows.")
    for m in results:
        if not m.path.startswith("importer") or rows < 1_000_000:
            continue
        key = "sqlite" if m.store == "SQLite" else "postgresql"
        rate = m.rows / m.seconds
        pandas = [p for p in results if p.store == m.store and p.path.startswith("pandas")]
        verdict = "met" if rate >= TARGET_ROWS_PER_S[key] else "**missed**"
        emit(f"- Target, {m.store} end to end at least {TARGET_ROWS_PER_S[key] / 1e3:.0f}k rows/s: {verdict} "
             f"({rate / 1e3:,.0f}k rows/s).")
        if pandas:
            best = min(pandas, key=lambda p: p.seconds)
            speedup = best.seconds / m.seconds
            emit(f"- Target, {m.store} at least {TARGET_RATIO:.0f}x the pandas path: "
                 f"{'met' if speedup >= TARGET_RATIO else '**missed**'} ({speedup:.1f}x the fastest, {best.path}).")
        emit(f"- Target, {m.store} peak memory under {TARGET_PEAK_MB:,.0f} MB: "
             f"{'met' if m.peak / 1e6 < TARGET_PEAK_MB else '**missed**'} ({m.peak / 1e6:,.0f} MB)"
             + ("" if rows == 1_000_000 else f" (the target is for 1,000,000 rows; this run has {rows:,})") + ".")
    for note in notes:
        emit(f"- {note}")
    emit()
    finish_report(f"Import benchmark: seed {SEED}, {rows:,} rows", started, env, body, args.out)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
