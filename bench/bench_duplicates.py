"""Duplicate customers: how long ``duplicate_candidates`` takes at demo size and beyond, and a merge and its undo.

    python bench/bench_duplicates.py                    # 2k, 10k and 100k customers; merge on SQLite and PostgreSQL
    python bench/bench_duplicates.py --scales 1 5 --skip-postgres

Customers are the demo's (``crm.demo``, seed 7; scale 1 = 2,000 customers in 21 cities) plus 1% planted
duplicates: a copy of a customer under a new id with its name upper-cased and a period added, its email
upper-cased with spaces around, and its phone written with spaces instead of dashes. Every planted pair
must be found (the exit status is 1 otherwise). Times are the median of ``--runs`` warm runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from crm import demo  # noqa: E402
from crm.duplicates import _prepared, _similar_names, duplicate_candidates, merge_customers, undo_merge  # noqa: E402
from crm.store import Store  # noqa: E402

PG_DB = "crm_bench_duplicates"


def planted(scale: float) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The demo frames with 1% duplicate customers added, and the planted (original, copy) id pairs."""
    frames = demo.generate(demo.DemoSpec(seed=7, scale=scale))
    customers = frames["customers"]
    originals = customers.gather_every(100)
    copies = originals.with_columns(
        ("D" + pl.col("customer_id")).alias("customer_id"),
        (pl.col("name").str.to_uppercase() + ".").alias("name"),
        ("  " + pl.col("email").str.to_uppercase() + " ").alias("email"),
        pl.col("phone").str.replace_all("-", " ").alias("phone"))
    frames["customers"] = pl.concat([customers, copies])
    pairs = originals.select(pl.col("customer_id"), ("D" + pl.col("customer_id")).alias("other_id"))
    return frames, pairs


def timed(runs: int, work) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _pg_database(admin: str, create: bool) -> str:
    """Drop the benchmark's database (and create it again when ``create``); its URL."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{PG_DB}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 5, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test",
                        help=f"where to create (and drop at the end) the database {PG_DB}")
    args = parser.parse_args()
    duplicate_candidates(pl.DataFrame({"customer_id": ["a"], "email": ["a@b.co"], "phone": ["+1 555 0100"]}))  # imports
    ok = True
    print("| customers | normal forms | names | candidates (total) | pairs | planted found |")
    print("|---:|---:|---:|---:|---:|---:|")
    stores: list[tuple[str, float]] = []
    for scale in args.scales:
        frames, pairs = planted(scale)
        customers = frames["customers"]
        prepare, prepared = timed(args.runs, lambda c=customers: _prepared(c))
        names, _ = timed(args.runs, lambda p=prepared: _similar_names(p, 90))
        total, found = timed(args.runs, lambda c=customers: duplicate_candidates(c))
        assert isinstance(found, pl.DataFrame)
        hit = pairs.join(found, on=["customer_id", "other_id"], how="semi").height
        ok &= hit == pairs.height
        print(f"| {customers.height:,} | {prepare:.2f} s | {names:.2f} s | {total:.2f} s | {found.height:,} | "
              f"{hit:,} of {pairs.height:,} |")
        if scale == args.scales[min(1, len(args.scales) - 1)]:
            stores.append(("sqlite", scale))
            if not args.skip_postgres:
                stores.append(("postgresql", scale))
    print("\n| store | customers | merge (kept + 1) | undo |")
    print("|---|---:|---:|---:|")
    for kind, scale in stores:
        frames, pairs = planted(scale)
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/crm.db" if kind == "sqlite" else _pg_database(args.pg_admin, create=True)
            with Store(url) as store:
                store.replace_business_data(frames)
                keep, other = pairs.row(0)
                merge, result = timed(1, lambda s=store, k=keep, o=other: merge_customers(s, k, [o]))
                undo, _ = timed(1, lambda s=store, r=result: undo_merge(s, r.merge_id))  # type: ignore[attr-defined]
                print(f"| {kind} | {frames['customers'].height:,} | {merge * 1000:.0f} ms | {undo * 1000:.0f} ms |")
            if kind == "postgresql":
                _pg_database(args.pg_admin, create=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
