"""A prepared snapshot of the enriched frames next to the store, so a restart does not re-read the database.

``load_frames`` (crm.dataset) reads every table and enriches it: 17 s at 1M deals (bench/RESULTS.md).
When nothing changed since the last load, a restarted server (or the CLI) can memory-map the frames it
prepared then instead: each table is one uncompressed Arrow IPC file, memory-mapped, so
the load is a few system calls and the pages share the operating system's page cache (``_mapped``).

A snapshot is named by the store's data state, ``(data_version, data_stamp)`` (crm.store: every version
bump writes a new random stamp, so a re-created store or a restored backup never meets an old snapshot),
and by a fingerprint of the code that prepares the frames (a change of crm/dataset.py and its helpers
makes old snapshots unused). ``SnapshotWriter`` writes it to a temporary folder renamed into place at
the end (readers never see half a snapshot): a large store's table by table while it loads, so the load
holds only the table it works on in memory; a smaller one's after the load. The newest ``KEEP`` are kept.

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
from collections.abc import Iterable, Mapping
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


def code_fingerprint(modules: Iterable[str] | None = None) -> str:
    """A short hash of crm modules (names relative to the package; default: the preparing code,
    _PREPARING_CODE) and the Polars version."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _PREPARING_CODE if modules is None else modules:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
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


def one_chunk(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` itself when every column is one chunk (a table mapped from a snapshot: no copy), else
    rechunked: every query pays for extra chunks, and a file written from one chunk maps back as one."""
    return frame.rechunk() if any(n > 1 for n in frame.n_chunks("all")) else frame


def _mapped(path: Path) -> pl.DataFrame:
    """One table memory-mapped: pyarrow maps the file and Polars takes the Arrow buffers without a copy
    (pl.read_ipc copies: 1.0 s against 0.1 s for the 1M-deal snapshot); the pages then read the
    operating system's page cache, shared by every process that maps the same snapshot."""
    with pa.memory_map(str(path)) as source:
        table = ipc.open_file(source).read_all()
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def unchanged_raw(folder: Path | None, stamps: Mapping[str, str]) -> dict[str, Path]:
    """The files of the raw tables (as read from the store, before preparing) that a snapshot of this code
    holds with the store's current table stamp: those tables did not change since, and need not be read
    again (the newest snapshot holding each)."""
    if folder is None or not folder.is_dir() or not stamps:
        return {}
    found: dict[str, Path] = {}
    fingerprint = code_fingerprint()
    done = sorted((p for p in folder.iterdir() if p.name.endswith(fingerprint) and (p / "complete").is_file()),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for path in done:
        try:
            held = json.loads((path / "raw" / "stamps.json").read_text())
        except (OSError, ValueError) as exc:
            log.warning("raw tables of snapshot %s could not be read (%s)", path, exc)
            continue
        for name, table_stamp in held.items():
            if name not in found and stamps.get(name) == table_stamp and (path / "raw" / f"{name}.arrow").is_file():
                found[name] = path / "raw" / f"{name}.arrow"
    return found


SPILL_ROWS = 3_000_000
"""Deals plus tickets from which a load writes each table as soon as it has it (``SnapshotWriter`` with
``spill``): about 45M rows in the demo's proportions. Below, the tables stay in memory and are written at
the end, in the background in the app: the first page then does not wait for the disk (at 1M deals a
load takes 17 s that way and 28 s spilling, bench/RESULTS.md), and the memory is there."""


class SnapshotWriter:
    """One data state's snapshot, written while it is loaded. With ``spill`` each table is written as soon
    as it is read from the store (``raw``) or prepared (``prepared``), then memory-mapped back in place of
    the copy in memory; without, the tables are kept as they are and written by ``commit``.

    Spilling, a load holds in the process's own memory only the table it is working on and the joins that
    prepare it; everything finished lives in the page cache, which the operating system can drop and read
    again. Without it a load holds the raw and the prepared tables at once: 4.9 GB at 1M deals, past
    this machine's 24 GB at 10M (bench/RESULTS.md, "10M deals on one machine").

    The files go to a temporary folder, renamed into place by ``commit`` (readers never see half a
    snapshot) or removed by ``discard``; the frames mapped from them stay valid either way (a removed file
    lives on while it is mapped). A failed write (a full disk) is logged and ends the snapshot: the load
    goes on in memory, as it would without snapshots."""

    def __init__(self, folder: Path, version: int, stamp: str, spill: bool = True) -> None:
        self.folder = folder
        self.version = version
        self.spill = spill
        self._held: dict[Path, pl.DataFrame] = {}
        """Without ``spill``: the tables ``commit`` writes, by file."""
        self.final = folder / snapshot_name(version, stamp)
        self._temporary = folder / f".tmp-{self.final.name}-{os.getpid()}-{time.monotonic_ns()}"
        self._raw_stamps: dict[str, str] = {}
        self._files: dict[int, Path] = {}
        """id() of a frame mapped from a raw file -> that file (a prepared table that is the raw one
        unchanged is linked to it, not written twice)."""
        self.failed = False
        try:
            (self._temporary / "raw").mkdir(parents=True)
        except OSError as exc:
            self._fail(exc)

    def raw(self, name: str, frame: pl.DataFrame, stamp: str | None) -> pl.DataFrame:
        """Keep raw table ``name`` as read from the store (``stamp``: its table stamp; None: not reusable)."""
        kept = self._keep(self._temporary / "raw" / f"{name}.arrow", frame)
        return self._remember(name, kept, stamp, on_disk=self.spill)

    def linked(self, name: str, source: Path, stamp: str) -> pl.DataFrame:
        """Raw table ``name`` unchanged since an older snapshot holding it in ``source``: linked into this
        one (not read, not copied) and mapped."""
        if self.failed:
            return _mapped(source)
        target = self._temporary / "raw" / f"{name}.arrow"
        try:
            _link_or_copy(source, target)
            return self._remember(name, _mapped(target), stamp, on_disk=True)
        except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
            self._fail(exc)
            return _mapped(source)

    def prepared(self, name: str, frame: pl.DataFrame) -> pl.DataFrame:
        """Keep prepared table ``name`` (a field of crm.dataset.Frames)."""
        target = self._temporary / f"{name}.arrow"
        source = self._files.get(id(frame))
        if source is None or self.failed:
            return self._keep(target, frame)
        try:
            _link_or_copy(source, target)
        except OSError as exc:
            self._fail(exc)
        return frame

    def commit(self) -> Path | None:
        """Write the tables held (without ``spill``), put the snapshot in place (when every table was kept)
        and keep the newest KEEP; the folder, or None when it failed."""
        for target, frame in self._held.items():
            self._write(target, frame)
        self._held.clear()
        if self.failed:
            return None
        try:
            (self._temporary / "raw" / "stamps.json").write_text(json.dumps(self._raw_stamps, sort_keys=True))
            (self._temporary / "complete").write_text(f"{self.version}\n")
            try:
                self._temporary.rename(self.final)
            except OSError:  # another process wrote the same snapshot first: theirs is as good
                if not (self.final / "complete").is_file():
                    raise
                shutil.rmtree(self._temporary, ignore_errors=True)
            _prune(self.folder)
            return self.final
        except OSError as exc:
            self._fail(exc)
            return None

    def discard(self) -> None:
        """Drop the files (the data changed while loading: this snapshot would name the wrong state)."""
        shutil.rmtree(self._temporary, ignore_errors=True)

    def _keep(self, target: Path, frame: pl.DataFrame) -> pl.DataFrame:
        if self.failed:
            return frame
        if not self.spill:
            self._held[target] = frame
            return frame
        if not self._write(target, frame):
            return frame
        try:
            return _mapped(target)
        except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
            self._fail(exc)
            return frame

    def _write(self, target: Path, frame: pl.DataFrame) -> bool:
        if self.failed:
            return False
        try:
            one_chunk(frame).write_ipc(target, compression="uncompressed")
            return True
        except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
            self._fail(exc)
            return False

    def _remember(self, name: str, frame: pl.DataFrame, stamp: str | None, on_disk: bool) -> pl.DataFrame:
        """Note the raw table's stamp and, when its file is written already, which frame it holds."""
        if not self.failed:
            if on_disk:
                self._files[id(frame)] = self._temporary / "raw" / f"{name}.arrow"
            if stamp is not None:
                self._raw_stamps[name] = stamp
        return frame

    def _fail(self, exc: Exception) -> None:
        if not self.failed:
            log.warning("could not write the snapshot %s (%s); the next start reads the store again", self.final, exc)
        self.failed = True
        shutil.rmtree(self._temporary, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no bytes written; the files are never changed in place), or a copy across devices."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _prune(folder: Path) -> None:
    """Remove all but the KEEP newest complete snapshots (a process that mapped an older one keeps its
    mapping: on Linux a removed file lives on while mapped), and the temporary folders of loads whose
    process is gone (a server stopped while loading)."""
    done = sorted((p for p in folder.iterdir() if (p / "complete").is_file()), key=lambda p: p.stat().st_mtime,
                  reverse=True)
    for old in done[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in folder.glob(".tmp-*"):
        pid = partial.name.rsplit("-", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True
