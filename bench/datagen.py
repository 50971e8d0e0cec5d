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
from collections.abc import Callable
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


GENERATED: dict[str, int] = {}
"""Row counts before sampling of the last ``generate_service`` call (``survey_responses``)."""


def _cached(folder: Path, generate: Callable[[], dict[str, pl.DataFrame]], spec: dict[str, object],
            regenerate: bool, keeps_generated: bool = False) -> tuple[dict[str, pl.DataFrame], str, float]:
    """Frames from the Parquet cache in ``folder`` (checked against the canonical dtypes, so a stale
    cache cannot skew results), else ``generate()`` them and write the cache with ``spec`` and the
    row counts beside (and ``GENERATED`` with ``keeps_generated``); returns the frames, the source
    ("cache" or "generated") and the seconds."""
    marker = folder / "spec.json"
    started = time.perf_counter()
    if marker.exists() and not regenerate:
        written = json.loads(marker.read_text())
        frames = {name: pl.read_parquet(folder / f"{name}.parquet") for name in written["tables"]}
        for name, frame in frames.items():
            if dict(frame.schema) != schema.polars_schema(name):
                raise SystemExit(f"stale cache {folder}: {name} has other columns; rerun with --regenerate")
        if keeps_generated:
            GENERATED.update(written.get("generated", {}))
        return frames, "cache", time.perf_counter() - started
    frames = generate()
    elapsed = time.perf_counter() - started
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        frame.write_parquet(folder / f"{name}.parquet", compression="zstd")
    written = {**spec, "tables": list(frames), "rows": {k: v.height for k, v in frames.items()}}
    marker.write_text(json.dumps({**written, "generated": GENERATED} if keeps_generated else written, default=str))
    return frames, "generated", elapsed


def load_or_generate(scale: float, regenerate: bool = False, seed: int = SEED,
                     as_of: date = AS_OF) -> tuple[dict[str, pl.DataFrame], str, float]:
    """The demo frames for the spec, the source ("cache" or "generated") and the seconds it took."""
    return _cached(cache_dir(scale, seed, as_of), lambda: demo.generate(demo.DemoSpec(seed=seed, scale=scale, as_of=as_of)),
                   {"seed": seed, "scale": scale, "as_of": as_of}, regenerate)


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
    return _cached(service_cache_dir(tickets, surveys, seed, as_of), lambda: generate_service(tickets, surveys, seed, as_of),
                   {"seed": seed, "tickets": tickets, "surveys": surveys, "as_of": as_of}, regenerate, keeps_generated=True)


def segments_cache_dir(customers: int, orders: int, seed: int = SEED, as_of: date = AS_OF) -> Path:
    """Where the Parquet files of one segments dataset live."""
    return CACHE / f"segments-seed{seed}-customers{customers}-orders{orders}-{as_of.isoformat()}"


ORDER_CHANNELS = ("web", "sales", "partner")


def _segment_orders(rng: np.random.Generator, clock: demo._Clock, customers: pl.DataFrame, n_orders: int) -> pl.DataFrame:
    """Exactly ``n_orders`` orders over ``customers``, drawn with numpy (not crm.demo's ``_orders``).

    demo's generator builds Python lists of ids and 2.5 order items per order: at 20M orders that is
    ~50M Python strings (several GB, minutes). This keeps its shape in vectorised form: each customer
    buys during an activity spell from shortly after their creation, of exponential length (mean
    1,100 / 700 / 420 days for Enterprise / Mid-Market / SMB), 18% come back for a second spell
    after a gap; spells end at the data's end. The orders are shared out over the customers by a
    multinomial draw ∝ (days in their spells x the segment's rate x a log-normal(0, 1) propensity), so
    a few customers order very often and many rarely (some never); within the spells uniformly.
    Amounts: the customer's log-normal ticket size (4,800 / 1,400 / 320) x log-normal(0, 0.5),
    rounded to cents. Channel web / sales / partner 55 / 30 / 15%. Sorted by ordered_at, then customer.
    """
    n = customers.height
    segment = customers["segment"].to_numpy()
    seg_idx = np.select([segment == "Enterprise", segment == "Mid-Market"], [0, 1], 2)
    created = customers["created_at"].to_numpy().astype("datetime64[us]")
    end = clock.end64
    day_us = 86_400_000_000
    first = np.minimum(created + (rng.exponential(14, n) * day_us).astype("timedelta64[us]"), end)
    life1 = rng.exponential(np.array([1100.0, 700.0, 420.0])[seg_idx])
    comeback = rng.random(n) < 0.18
    start2 = first + ((life1 + rng.exponential(150, n) + 60) * day_us).astype("timedelta64[us]")
    life2 = np.where(comeback, rng.exponential(np.array([1100.0, 700.0, 420.0])[seg_idx]), 0.0)

    def days_until_end(start: np.ndarray, life: np.ndarray) -> np.ndarray:
        left = (end - np.minimum(start, end)).astype(np.float64) / day_us
        return np.clip(np.minimum(life, left), 0.0, None)

    len1, len2 = days_until_end(first, life1), days_until_end(start2, life2)
    # a spell cut to nothing at the data's end still allows an order on its first day
    len1 = np.where((len1 == 0) & (first < end), 1 / 24, len1)
    weight = (len1 + len2) * np.array([0.050, 0.045, 0.035])[seg_idx] * rng.lognormal(0.0, 1.0, n)
    counts = rng.multinomial(n_orders, weight / weight.sum())
    cust = np.repeat(np.arange(n, dtype=np.int64), counts)
    offset = rng.random(cust.size) * (len1 + len2)[cust]  # days into the customer's spells
    in_first = offset < len1[cust]
    base = np.where(in_first, first[cust], start2[cust])
    offset = np.where(in_first, offset, offset - len1[cust])
    ordered = (base + (offset * day_us).astype("timedelta64[us]")).astype("datetime64[s]").astype("datetime64[us]")
    ordered = np.minimum(ordered, end - np.timedelta64(1, "s"))
    del base, offset, in_first
    ticket_size = np.array([4_800.0, 1_400.0, 320.0])[seg_idx] * rng.lognormal(0.0, 0.35, n)
    amount = np.round(ticket_size[cust] * rng.lognormal(0.0, 0.5, cust.size), 2)
    channel = rng.choice(len(ORDER_CHANNELS), size=cust.size, p=[0.55, 0.30, 0.15]).astype(np.uint8)
    frame = pl.DataFrame({"_cust": cust, "ordered_at": ordered, "amount": amount, "_channel": channel})
    del cust, ordered, amount, channel
    frame = frame.sort("ordered_at", "_cust")
    return frame.select(
        order_id=pl.concat_str(pl.lit("O"), pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)),
        customer_id=customers["customer_id"].gather(frame["_cust"]),
        ordered_at="ordered_at",
        amount="amount",
        channel=pl.col("_channel").replace_strict(dict(enumerate(ORDER_CHANNELS)), return_dtype=pl.String),
    )


def generate_segments(customers: int, orders: int, seed: int = SEED, as_of: date = AS_OF) -> dict[str, pl.DataFrame]:
    """The tables the Segments and Churn pages read: crm.demo's customer generator (``customers``
    of them) and ``orders`` orders from ``_segment_orders`` (numpy); every other business table
    empty with its columns (order_items too: RFM and churn read orders only)."""
    rng = np.random.default_rng(seed)
    clock = demo._Clock(as_of, rng)
    people = demo._customers(rng, clock, customers)
    frames = {name: pl.DataFrame(schema=schema.polars_schema(name)) for name in schema.BUSINESS_TABLES}
    frames.update({
        "customers": people.drop("primary_product"),
        "pipeline_stages": pl.DataFrame(list(demo.PIPELINE), schema=["stage", "position", "win_probability", "kind"],
                                        orient="row"),
        "orders": _segment_orders(rng, clock, people, orders),
    })
    return {name: demo._conform(name, frame) for name, frame in frames.items()}


def load_or_generate_segments(customers: int = 2_000_000, orders: int = 20_000_000, regenerate: bool = False,
                              seed: int = SEED, as_of: date = AS_OF) -> tuple[dict[str, pl.DataFrame], str, float]:
    """The segments dataset (``generate_segments``), cached as Parquet like ``load_or_generate``."""
    return _cached(segments_cache_dir(customers, orders, seed, as_of),
                   lambda: generate_segments(customers, orders, seed, as_of),
                   {"seed": seed, "customers": customers, "orders": orders, "as_of": as_of}, regenerate)
