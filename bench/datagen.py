"""Benchmark data: the seeded demo data at a given scale, cached as Parquet under ``bench/.cache/``.

Generating scale 100 (about 1M opportunities, 1M tickets, 15.5M rows in all)
takes ~30 s; reading the Parquet cache back takes about a second. The cache key
is seed, scale and as-of date; delete the folder (or pass ``--regenerate``) to
rebuild it, e.g. after crm/demo.py changes.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from crm import demo, schema

CACHE = Path(__file__).resolve().parent / ".cache"
AS_OF = date(2026, 6, 30)
SEED = 7


def cache_dir(scale: float, seed: int = SEED, as_of: date = AS_OF) -> Path:
    """Where the Parquet files for one spec live."""
    return CACHE / f"demo-seed{seed}-scale{scale:g}-{as_of.isoformat()}"


def load_or_generate(scale: float, regenerate: bool = False, seed: int = SEED,
                     as_of: date = AS_OF) -> tuple[dict[str, pl.DataFrame], str, float]:
    """The demo frames for the spec, the source ("cache" or "generated") and the seconds it took."""
    folder = cache_dir(scale, seed, as_of)
    marker = folder / "spec.json"
    started = time.perf_counter()
    if marker.exists() and not regenerate:
        names = json.loads(marker.read_text())["tables"]
        frames = {name: pl.read_parquet(folder / f"{name}.parquet") for name in names}
        # Parquet keeps the dtypes; check anyway so a stale cache cannot skew results
        for name, frame in frames.items():
            if dict(frame.schema) != schema.polars_schema(name):
                raise SystemExit(f"stale cache {folder}: {name} has other columns; rerun with --regenerate")
        return frames, "cache", time.perf_counter() - started
    frames = demo.generate(demo.DemoSpec(seed=seed, scale=scale, as_of=as_of))
    elapsed = time.perf_counter() - started
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet", compression="zstd")
    marker.write_text(json.dumps({"seed": seed, "scale": scale, "as_of": as_of.isoformat(),
                                  "tables": list(frames), "rows": {k: v.height for k, v in frames.items()}}))
    return frames, "generated", elapsed


GENERATED: dict[str, int] = {}
"""Row counts before sampling of the last ``generate_service`` call (``survey_responses``)."""


def service_cache_dir(tickets: int, surveys: int | None, seed: int = SEED, as_of: date = AS_OF) -> Path:
    """Where the Parquet files of one service dataset live."""
    return CACHE / f"service-seed{seed}-tickets{tickets}-surveys{surveys or 'all'}-{as_of.isoformat()}"


def generate_service(tickets: int, surveys: int | None, seed: int = SEED, as_of: date = AS_OF) -> dict[str, pl.DataFrame]:
    """Only the tables the Satisfaction and Service pages read, from crm.demo's own generators.

    ``demo.generate`` at the scale giving ``tickets`` would also build every other table (at 5M
    tickets: 5M opportunities, 15M stage rows, 10M orders, 25M order items, 11M interactions),
    too much memory and time for a page benchmark. So this calls the demo's customer, ticket and
    survey generators directly, with the customer count of that scale (``scale = tickets / 10,000``,
    customers = 2,000 x scale). The random stream differs from ``demo.generate`` (which draws orders
    and opportunities in between), so the rows are not the same as generate's, but they come from
    the same distributions. The other business tables are empty (with their columns).

    The demo answers about 0.37 CSAT surveys per ticket and ~1.9 NPS surveys per customer (~0.75
    responses per ticket in all); with ``surveys`` set, a seeded uniform sample of that many
    responses is kept (both kinds in their generated proportion), else all of them.
    """
    scale = tickets / demo.BASE_TICKETS
    rng = np.random.default_rng(seed)
    clock = demo._Clock(as_of, rng)
    customers = demo._customers(rng, clock, max(20, round(demo.BASE_CUSTOMERS * scale)))
    ticket_frame = demo._tickets(rng, clock, customers, tickets)
    responses = demo._surveys(rng, clock, customers, ticket_frame)
    GENERATED["survey_responses"] = responses.height
    if surveys is not None and surveys < responses.height:
        responses = responses.sample(surveys, seed=seed).sort("responded_at", "response_id")
    frames = {name: pl.DataFrame(schema=schema.polars_schema(name)) for name in schema.BUSINESS_TABLES}
    frames.update({
        "customers": customers.drop("primary_product"),
        "pipeline_stages": pl.DataFrame(list(demo.PIPELINE), schema=["stage", "position", "win_probability", "kind"],
                                        orient="row"),
        "tickets": ticket_frame,
        "survey_responses": responses,
    })
    return {name: demo._conform(name, frame) for name, frame in frames.items()}


def load_or_generate_service(tickets: int = 5_000_000, surveys: int | None = 2_000_000, regenerate: bool = False,
                             seed: int = SEED, as_of: date = AS_OF) -> tuple[dict[str, pl.DataFrame], str, float]:
    """The service dataset (``generate_service``), cached as Parquet like ``load_or_generate``."""
    folder = service_cache_dir(tickets, surveys, seed, as_of)
    marker = folder / "spec.json"
    started = time.perf_counter()
    if marker.exists() and not regenerate:
        names = json.loads(marker.read_text())["tables"]
        frames = {name: pl.read_parquet(folder / f"{name}.parquet") for name in names}
        for name, frame in frames.items():
            if dict(frame.schema) != schema.polars_schema(name):
                raise SystemExit(f"stale cache {folder}: {name} has other columns; rerun with --regenerate")
        GENERATED.update(json.loads(marker.read_text()).get("generated", {}))
        return frames, "cache", time.perf_counter() - started
    frames = generate_service(tickets, surveys, seed, as_of)
    elapsed = time.perf_counter() - started
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet", compression="zstd")
    marker.write_text(json.dumps({"seed": seed, "tickets": tickets, "surveys": surveys, "as_of": as_of.isoformat(),
                                  "tables": list(frames), "rows": {k: v.height for k, v in frames.items()},
                                  "generated": GENERATED}))
    return frames, "generated", elapsed
