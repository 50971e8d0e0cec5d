"""A prepared snapshot of the enriched frames next to the store, so a restart does not re-read the database.

``load_frames`` (crm.dataset) reads every table and enriches it: 17 s at 1M deals (bench/RESULTS.md).
When nothing changed since the last load, a restarted server (or the CLI) can memory-map the frames it
prepared then instead: each table is one uncompressed Arrow IPC file, memory-mapped, so
the load is a few system calls and the pages share the operating system's page cache (``_mapped``).

A snapshot is named by the store's data state, ``(data_version, data_stamp)`` (crm.store: every version
bump writes a new random stamp, so a re-created store or a restored backup never meets an old snapshot),
and by a fingerprint of the code that prepares the frames (a change of crm/dataset.py and its helpers
makes old snapshots unused). It is written to a temporary folder and renamed into place (readers never
see half a snapshot); the newest ``KEEP`` are kept.

Where: ``CRM_SNAPSHOT_DIR`` (``off`` turns snapshots off), else ``data/snapshots`` in the app's folder.
The folder holds a copy of the business data: it needs the same protection as the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from crm.config import ROOT

log = logging.getLogger(__name__)

SNAPSHOT_ENV = "CRM_SNAPSHOT_DIR"
DEFAULT_DIR = ROOT / "data" / "snapshots"
KEEP = 2
_PREPARING_CODE = ("dataset.py", "quality.py", "business_hours.py", "settings.py", "money.py", "snapshot.py")
"""The modules whose code shapes the prepared frames (their bytes are part of a snapshot's name)."""


def snapshot_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where snapshots live, or None when they are off (``CRM_SNAPSHOT_DIR=off``)."""
    raw = (os.environ if environ is None else environ).get(SNAPSHOT_ENV, "").strip()
    if raw.lower() in {"off", "none", "0", "false"}:
        return None
    return Path(raw).expanduser() if raw else DEFAULT_DIR


def code_fingerprint() -> str:
    """A short hash of the preparing code (see _PREPARING_CODE)."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _PREPARING_CODE:
        digest.update((here / name).read_bytes())
    digest.update(pl.__version__.encode())
    return digest.hexdigest()[:12]


def snapshot_name(version: int, stamp: str) -> str:
    """The folder name of one data state's snapshot."""
    safe = "".join(c for c in stamp if c.isalnum())[:40]
    return f"v{version}-{safe}-{code_fingerprint()}"


def table_fields() -> list[str]:
    """The Frames fields that are tables (each one IPC file)."""
    from crm.dataset import Frames

    return [f.name for f in dataclasses.fields(Frames) if f.type in ("pl.DataFrame", pl.DataFrame)]


def read_snapshot(folder: Path | None, version: int, stamp: str | None) -> dict[str, pl.DataFrame] | None:
    """The tables of the snapshot of ``(version, stamp)``, memory-mapped; None when there is none (or it
    cannot be read: the caller then loads from the store, which is always right)."""
    if folder is None or stamp is None:
        return None
    path = folder / snapshot_name(version, stamp)
    if not (path / "complete").is_file():
        return None
    try:
        tables = {name: _mapped(path / f"{name}.arrow") for name in table_fields()}
    except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
        log.warning("snapshot %s could not be read (%s); loading from the store", path, exc)
        return None
    return tables


def _mapped(path: Path) -> pl.DataFrame:
    """One table memory-mapped: pyarrow maps the file and Polars takes the Arrow buffers without a copy
    (pl.read_ipc copies: 1.0 s against 0.1 s for the 1M-deal snapshot); the pages then read the
    operating system's page cache, shared by every process that maps the same snapshot."""
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source).read_all()
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def unchanged_raw(folder: Path | None, stamps: Mapping[str, str]) -> dict[str, pl.DataFrame]:
    """The raw tables (as read from the store, before preparing) that a snapshot of this code holds with
    the store's current table stamp: those tables did not change since, and need not be read again
    (memory-mapped, from the newest snapshot holding each)."""
    if folder is None or not folder.is_dir() or not stamps:
        return {}
    found: dict[str, pl.DataFrame] = {}
    fingerprint = code_fingerprint()
    done = sorted((p for p in folder.iterdir() if p.name.endswith(fingerprint) and (p / "complete").is_file()),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for path in done:
        try:
            held = json.loads((path / "raw" / "stamps.json").read_text())
            for name, table_stamp in held.items():
                if name not in found and stamps.get(name) == table_stamp:
                    found[name] = _mapped(path / "raw" / f"{name}.arrow")
        except (OSError, ValueError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
            log.warning("raw tables of snapshot %s could not be read (%s)", path, exc)
    return found


def write_snapshot(folder: Path | None, version: int, stamp: str | None, tables: Mapping[str, pl.DataFrame],
                   raw: Mapping[str, pl.DataFrame] | None = None, raw_stamps: Mapping[str, str] | None = None
                   ) -> Path | None:
    """Write one data state's tables (atomically: a temporary folder renamed into place), then keep the
    newest KEEP snapshots; with ``raw`` and their ``raw_stamps``, the raw tables too (the next load
    re-reads only the tables whose stamp changed: ``unchanged_raw``). Returns the folder, or None when
    snapshots are off or the write failed (a snapshot is an optimisation: failing to write one is
    logged, never an error for the person)."""
    if folder is None or stamp is None:
        return None
    final = folder / snapshot_name(version, stamp)
    if (final / "complete").is_file():
        return final
    temporary = folder / f".tmp-{final.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        temporary.mkdir(parents=True)
        for name, frame in tables.items():
            frame.write_ipc(temporary / f"{name}.arrow", compression="uncompressed")
        if raw and raw_stamps:
            kept = {name: raw_stamps[name] for name in raw if name in raw_stamps}
            (temporary / "raw").mkdir()
            for name in kept:
                raw[name].write_ipc(temporary / "raw" / f"{name}.arrow", compression="uncompressed")
            (temporary / "raw" / "stamps.json").write_text(json.dumps(kept, sort_keys=True))
        (temporary / "complete").write_text(f"{version}\n")
        try:
            temporary.rename(final)
        except OSError:  # another process wrote the same snapshot first: theirs is as good
            shutil.rmtree(temporary, ignore_errors=True)
        _prune(folder)
        return final
    except OSError as exc:
        log.warning("could not write the snapshot %s (%s); the next start reads the store again", final, exc)
        shutil.rmtree(temporary, ignore_errors=True)
        return None


def _prune(folder: Path) -> None:
    """Remove all but the KEEP newest complete snapshots (a process that mapped an older one keeps its
    mapping: on Linux a removed file lives on while mapped)."""
    done = sorted((p for p in folder.iterdir() if (p / "complete").is_file()), key=lambda p: p.stat().st_mtime,
                  reverse=True)
    for old in done[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
