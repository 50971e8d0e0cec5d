"""Page results kept on disk next to the prepared snapshot, so a restart does not compute them again.

A restarted server maps its snapshot in a second or so (crm.snapshot), but the first cockpit then
computes its numbers from tables the operating system has to read back from disk: at 10M deals,
after a reboot, 25 s of the 29 s to the first cockpit (bench/RESULTS.md). The numbers of a view only
change with the data, the code or the view, so the pages' results (the KPIs, the 12-month trend, the
small reports) are written, as they are computed, into the folder of the snapshot of the data state they
were computed from; the next process serving that state reads them instead of computing.

- **Key**: the result's name and an exact digest of its arguments (the filters, scope included, and
  the view options), in a folder named by a fingerprint of every module of ``crm`` and the Polars
  version: a new release never reads an older one's numbers.
- **Where**: ``<snapshot>/results-<code>/``, only once the snapshot is complete. When the data
  changes, a new snapshot (and results folder) follows and the old ones go with their snapshot
  (crm.snapshot keeps the newest ``KEEP``).
- **What**: a pair of KPI dicts as JSON, a table as Arrow IPC. Tables over ``LARGEST_KEPT_ROWS`` rows
  (a deal list) are not kept: reading them back is no cheaper than computing them.
- **Safety**: files are written to a temporary name and renamed, so a reader sees a whole file or
  none; a file that cannot be read or written is skipped (the result is computed, as without this).
  The folder holds numbers of the business data, like the snapshot: it needs the same protection.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from crm import snapshot
from crm.dataset import Frames
from crm.digest import Undigestable, digest
from crm.filters import Filters, month_periods
from crm.metrics import compute_with_previous
from crm.metrics.kpis import METRIC_SETS, Values, trend_of
from crm.narrowing import narrow
from crm.reports import DEFAULT_OPTIONS, ReportOptions, build_report, with_month_coverage
from crm.snapshot import snapshot_dir, snapshot_name
from crm.tables import SharedTables

log = logging.getLogger(__name__)

T = TypeVar("T")

LARGEST_KEPT_ROWS = 100_000
"""A table result with more rows is not written (see the module's docstring)."""


@cache
def code_fingerprint() -> str:
    """A short hash of every module of crm and the Polars version (the code that computes a result)."""
    root = Path(__file__).resolve().parent
    return snapshot.code_fingerprint(sorted(str(p.relative_to(root)) for p in root.rglob("*.py")))


def results_folder(version: int, stamp: str | None) -> Path | None:
    """Where the results of the data state ``(version, stamp)`` live; None when snapshots are off or the
    snapshot of that state is not complete (yet)."""
    root = snapshot_dir()
    if root is None or stamp is None:
        return None
    folder = root / snapshot_name(version, stamp)
    if not (folder / "complete").is_file():
        return None
    return folder / f"results-{code_fingerprint()}"


def kept(version: int, stamp: str | None, name: str, arguments: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or the result an earlier process kept for the same data state, name and arguments;
    a computed result is kept for the next one (see the module's docstring)."""
    place = _place(version, stamp, name, arguments)
    if place is None:
        return compute()
    found = _read(*place)
    if found is not None:
        return found  # type: ignore[return-value]
    value = compute()
    _write(*place, value)
    return value


def stored(version: int, stamp: str | None, name: str, arguments: tuple[Any, ...]) -> object | None:
    """The result ``kept`` holds for the data state, name and arguments, or None (none kept yet)."""
    place = _place(version, stamp, name, arguments)
    return None if place is None else _read(*place)


def _place(version: int, stamp: str | None, name: str, arguments: tuple[Any, ...]) -> tuple[Path, str, str] | None:
    """(folder, name, key) of a result, or None when it cannot be kept (no complete snapshot, or arguments
    without an exact digest)."""
    folder = results_folder(version, stamp)
    if folder is None:
        return None
    try:
        return folder, name, digest((name, arguments)).hex()[:40]
    except Undigestable:
        return None


def _read(folder: Path, name: str, key: str) -> object | None:
    table, pair = folder / f"{name}-{key}.arrow", folder / f"{name}-{key}.json"
    try:
        if table.is_file():
            return pl.read_ipc(io.BytesIO(table.read_bytes()))  # a copy: small, and never tied to the file
        if pair.is_file():
            current, previous = json.loads(pair.read_text())
            if isinstance(current, dict) and isinstance(previous, dict):
                return current, previous
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        log.warning("kept result %s could not be read (%s); computing it", key, exc)
    return None


def _write(folder: Path, name: str, key: str, value: object) -> None:
    """Write a table or a pair of dicts under a temporary name, then rename it into place."""
    if isinstance(value, pl.DataFrame):
        if value.height > LARGEST_KEPT_ROWS:
            return
        target = folder / f"{name}-{key}.arrow"
    elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, dict) for v in value):
        target = folder / f"{name}-{key}.json"
    else:
        return
    temporary = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(exist_ok=True)
        if isinstance(value, pl.DataFrame):
            value.write_ipc(temporary, compression="uncompressed")
        else:
            temporary.write_text(json.dumps(list(value), allow_nan=False))
        os.replace(temporary, target)
    except (OSError, ValueError, TypeError, pl.exceptions.PolarsError) as exc:  # a full disk, a value JSON cannot hold
        log.warning("result %s could not be kept (%s)", target.name, exc)
        temporary.unlink(missing_ok=True)


# --- the pages' results, as crm/ui/loaders.py and the benchmarks ask for them -----------------------------


def kpis(frames: Frames, filters: Filters, metric_set: str = "all") -> tuple[Values, Values]:
    """This period's and the previous period's metric values (crm.metrics.compute_with_previous) of a page's
    ``metric_set`` (crm.metrics.kpis.METRIC_SETS), kept."""
    summaries = METRIC_SETS[metric_set]
    return kept(frames.version, frames.stamp, "kpis", (filters, metric_set),
                lambda: compute_with_previous(narrow(frames, filters), filters.period, summaries))


def trend(frames: Frames, anchored: Filters, months: int = 12, metric_set: str = "all") -> pl.DataFrame:
    """The metrics of ``metric_set`` per month for ``months`` months ending with the period (the others
    None), with each month's coverage (crm.reports.with_month_coverage), kept."""
    return kept(frames.version, frames.stamp, "trend", (anchored, months, metric_set),
                lambda: computed_trend(frames, anchored, months, metric_set))


EARLIER_MONTHS_BYTES = 16 * 1024 * 1024
"""Memory for the whole months ``computed_trend`` keeps (a dozen rows per filter: thousands of filters)."""


def computed_trend(frames: Frames, anchored: Filters, months: int = 12, metric_set: str = "all") -> pl.DataFrame:
    """``trend`` computed: the months before the last are whole calendar months, the same for every period
    that ends within the last month, so they are kept in memory per filter and only the last month is
    computed when the period's end moves within its month (a trend at 10M deals: 1.7 s for twelve months).
    Each month's values do not depend on the others (crm.metrics.kpis.trend_of)."""
    summaries = METRIC_SETS[metric_set]
    ds = narrow(frames, anchored)
    periods = month_periods(anchored.period.end, months)
    earlier, last = periods[:-1], periods[-1:]
    kept_months = frames.memo("trend: earlier months", lambda: SharedTables(EARLIER_MONTHS_BYTES))
    before = kept_months.get(("trend months", anchored.without_period(), earlier, metric_set),
                             lambda: trend_of(ds, earlier, summaries))
    return with_month_coverage(pl.concat([before, trend_of(ds, last, summaries)]), frames)


def report(frames: Frames, name: str, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """A named report (crm.reports), kept; except the churn risk list, whose models each process fits."""
    if name in NOT_KEPT_REPORTS:
        return build_report(name, frames, filters, options)
    return kept(frames.version, frames.stamp, f"report-{name}", (filters, options),
                lambda: build_report(name, frames, filters, options))


NOT_KEPT_REPORTS = frozenset({"churn_risk"})
