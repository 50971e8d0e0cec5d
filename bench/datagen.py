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
