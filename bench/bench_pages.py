"""Page benchmarks: everything one page computes for one filter, cold and warm, against plain pandas.

    python bench/bench_pages.py --page funnel                  # 1M opportunities (demo scale 100)
    python bench/bench_pages.py --page satisfaction_service    # 5M tickets, 2M survey responses
    python bench/bench_pages.py --page all --out bench/last-pages.md

A page's computations for one filter are the reports it asks crm/ui/loaders.py for (each a
``build_report`` call, plus ``get_kpis`` / ``get_trend``), listed in FUNNEL_PAGE,
SATISFACTION_PAGE and SERVICE_PAGE below. See bench/README.md; bench/RESULTS.md for a run.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pandas_funnel_reference as fref  # noqa: E402
import pandas_reference as ref  # noqa: E402
import pandas_service_reference as sref  # noqa: E402
import polars as pl  # noqa: E402
from bench_cockpit import _mb, frames_size, memory_section, phase, table  # noqa: E402
from datagen import AS_OF, GENERATED, SEED, load_or_generate, load_or_generate_service  # noqa: E402

from crm import demo  # noqa: E402
from crm.business_hours import BusinessCalendar, with_business_seconds  # noqa: E402
from crm.dataset import COLUMNS, Frames, enrich, frames_from_rows  # noqa: E402
from crm.filters import Filters, Period  # noqa: E402
from crm.metrics import compute_with_previous, monthly_trend  # noqa: E402
from crm.metrics.kpis import METRIC_SETS  # noqa: E402
from crm.metrics.periods import Buckets  # noqa: E402
from crm.narrowing import narrow  # noqa: E402
from crm.reports import ReportOptions, build_report, first_deals  # noqa: E402
from crm.results import computed_trend  # noqa: E402
from crm.scope import Scope  # noqa: E402

try:
    import duckdb_reference as dref
except ImportError:  # duckdb is not installed: the DuckDB reference is off (said in the report)
    dref = None  # type: ignore[assignment]

REGIONS = ("Europe", "North America", "Asia Pacific", "Latin America")
SUPPORT_TEAMS = tuple(demo.SUPPORT_TEAMS)
TARGETS_MS = {"funnel": 500, "satisfaction": 1000, "service": 1000}


# --- what a page computes -------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """One filter as a page sees it, plus the drill path the Satisfaction page's agent level uses."""

    filters: Filters
    product: str = "Data Connect"
    team: str = "Technical"


Panel = Callable[[Frames, View], Any]


def report(name: str, **options: Any) -> Panel:
    """A ``build_report`` call as crm/ui/loaders.get_report makes it."""
    opts = ReportOptions(**options)
    return lambda frames, v: build_report(name, frames, v.filters, opts)


def kpis_of(metric_set: str) -> Panel:
    """loaders.get_kpis for a page's ``metric_set``: this period's and the previous period's metrics."""
    summaries = METRIC_SETS[metric_set]
    return lambda frames, v: compute_with_previous(narrow(frames, v.filters), v.filters.period, summaries)


def kpi_trend_of(metric_set: str, reuse_months: bool = False) -> Panel:
    """loaders.get_trend for a page's ``metric_set``: 12 months ending with the period's last day (anchored
    there, as the app caches it). ``reuse_months``: computed as crm.results computes it, the whole months
    before the last kept per filter in memory (what a server does; bench_scale's page times); without it
    every month is computed, as the references compute them (the side-by-side comparison here)."""
    summaries = METRIC_SETS[metric_set]

    def trend(frames: Frames, v: View) -> pl.DataFrame:
        anchored = v.filters.ending()
        if reuse_months:
            return computed_trend(frames, anchored, 12, metric_set)
        return monthly_trend(narrow(frames, anchored), anchored.period, 12, summaries)

    return trend


def metric_set_keys(metric_set: str) -> frozenset[str]:
    """The metrics a set computes: the columns its summaries give (read from their plans, nothing run)."""
    ds = narrow(frames_from_rows({}), Filters.create(Period(AS_OF, AS_OF), scope=Scope()))
    buckets = Buckets((Period(AS_OF, AS_OF),))
    return frozenset(name for summary in METRIC_SETS[metric_set]
                     for name in summary(ds, buckets).collect_schema().names()) - {"bucket"}


DEALS_GRID_ROWS = 5_000
"""pages/funnel.py builds the grid's rows only (GRID_ROWS), with the count and amount of all; an export
builds all."""


def first_deals_table(frames: Frames, v: View) -> pl.DataFrame:
    """The Funnel page's deal list (crm.reports.first_deals) as one table: the grid's rows with the count and
    amount of every deal on each row, as the references give it."""
    listed = first_deals(frames, v.filters, ReportOptions(mode="cohort", by="owner"), DEALS_GRID_ROWS)
    return listed.rows.with_columns(deals_in_all=pl.lit(listed.deals), amount_in_all=pl.lit(listed.amount))

FUNNEL_PAGE: dict[str, Panel] = {
    "funnel": report("funnel", mode="cohort", by=None),
    "funnel by owner": report("funnel", mode="cohort", by="owner"),
    "deals": first_deals_table,
    "stage_velocity": report("stage_velocity"),
    "win_cycle_trend (12 months)": lambda frames, v: build_report(
        "win_cycle_trend", frames, v.filters.ending(), ReportOptions()),
    "win_loss by owner": report("win_loss", by="owner"),
    "lost_reasons": report("lost_reasons"),
    "forecast": report("forecast"),
    "ageing (30 days)": report("ageing", days=30),
}
"""pages/funnel.py for one filter: mode cohort, breakdown by owner, no selection, ageing 30 days."""

SATISFACTION_PAGE: dict[str, Panel] = {
    "kpis + previous": kpis_of("satisfaction"),
    "kpi trend (12 months)": kpi_trend_of("satisfaction"),
    "nps_trend (month, vs previous)": report("nps_trend", grain="month", vs="previous"),
    "csat_trend (month, vs previous)": report("csat_trend", grain="month", vs="previous"),
    "satisfaction_drill (product)": report("satisfaction_drill", kind="csat", level="product"),
    "satisfaction_drill (agent in product+team)": lambda frames, v: build_report(
        "satisfaction_drill", frames, v.filters,
        ReportOptions(kind="csat", level="agent", within=(("product", v.product), ("team", v.team)))),
    "responses (product)": lambda frames, v: build_report(
        "responses", frames, v.filters, ReportOptions(kind="csat", within=(("product", v.product),))),
    "what_moved (product)": report("what_moved", kind="csat", level="product"),
}
"""pages/satisfaction.py for one filter: month buckets vs the previous period, CSAT ranking; the drill
at product level and at agent level inside a product and team; its responses; what moved by product.
(The page asks for nps_trend twice with the same key: one computation.)"""

SERVICE_OPTIONS = {"grain": "week", "by": "team"}
SERVICE_PAGE: dict[str, Panel] = {
    "kpis + previous": kpis_of("service"),
    "kpi trend (12 months)": kpi_trend_of("service"),
    "service_trend (week)": report("service_trend", basis="calendar", **SERVICE_OPTIONS),
    "service_times (team, calendar)": report("service_times", basis="calendar", **SERVICE_OPTIONS),
    "service_times (team, business)": report("service_times", basis="business", **SERVICE_OPTIONS),
    "service_distribution": report("service_distribution", basis="calendar", **SERVICE_OPTIONS),
    "sla (calendar)": report("sla", basis="calendar", **SERVICE_OPTIONS),
    "sla_watchlist": report("sla_watchlist", basis="calendar", **SERVICE_OPTIONS),
}
"""pages/service.py for one filter: weekly buckets, calendar hours, split by team; the business-hours
service times too (the basis toggle's other view)."""


# --- filters ------------------------------------------------------------------------------------


def cold_view() -> View:
    """The default view: the 90 days ending on the data's last day, no dimension filter."""
    return View(Filters.create(Period(AS_OF - timedelta(days=89), AS_OF), preset="last_90", scope=Scope()))


def warm_views(n: int) -> list[View]:
    """``n`` different filters: 90-day periods ending 0, 1, 2, ... days before the data's last day
    (every one a different end, so the trend, anchored on the end, is never a cache hit either),
    with no region or one of four; the drill product and team rotate too."""
    out = []
    for i in range(1, n + 1):
        end = AS_OF - timedelta(days=i)
        regions = () if i % 5 == 0 else (REGIONS[i % 5 - 1],)
        out.append(View(Filters.create(Period(end - timedelta(days=89), end), regions=regions, scope=Scope()),
                        product=demo.PRODUCTS[i % len(demo.PRODUCTS)], team=SUPPORT_TEAMS[i % len(SUPPORT_TEAMS)]))
    return out


# --- timing -----------------------------------------------------------------------------------------


@dataclass
class PageRun:
    """One page for one view: seconds per panel, CPU seconds of the process, the tables."""

    seconds: dict[str, float]
    cpu: float
    results: dict[str, Any] = field(repr=False)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def run_page(panels: dict[str, Panel], frames: Frames, view: View) -> PageRun:
    seconds, results = {}, {}
    cpu = time.process_time()
    for name, build in panels.items():
        started = time.perf_counter()
        results[name] = build(frames, view)
        seconds[name] = time.perf_counter() - started
    return PageRun(seconds, time.process_time() - cpu, results)


def quantile(values: Iterable[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def _ms(s: float | None) -> str:
    return "" if s is None else f"{s * 1000:,.0f}"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- comparing crm with pandas --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """pandas / numpy / Polars scalars -> plain Python values, NaN / NaT -> None."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _rows(frame: pl.DataFrame | pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    if isinstance(frame, pl.DataFrame):
        return [tuple(_plain(v) for v in row) for row in frame.select(columns).iter_rows()]
    return [tuple(_plain(v) for v in row) for row in frame[columns].itertuples(index=False, name=None)]


def _same(a: Any, b: Any, money: bool) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if money:
            return abs(a - b) <= 0.0051  # crm sums whole cents; the reference too, so this is "equal"
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    if isinstance(a, datetime) != isinstance(b, datetime) and isinstance(a, date) and isinstance(b, date):
        # a Polars Date against a pandas datetime64 at midnight (pandas has no date dtype)
        a, b = (x if not isinstance(x, datetime) else (x.date() if x.time() == datetime.min.time() else x)
                for x in (a, b))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return a == b


MONEY = {"amount", "amount_in_all", "weighted_amount", "revenue_won", "amount_lost", "previous_amount"}


def compare_tables(where: str, crm_table: pl.DataFrame, pandas_table: pd.DataFrame | pl.DataFrame,
                   key: list[str] | None = None, limit: int = 5, other: str = "pandas") -> tuple[list[str], int]:
    """Mismatches between crm's table and the reference's (the reference's columns, row by row after
    sorting both by ``key``; None keeps the order), and the number of values compared. ``other`` names
    the reference in the messages."""
    missing = [c for c in pandas_table.columns if c not in crm_table.columns]
    if missing:
        return [f"{where}: crm has no column(s) {missing}"], 0
    columns = list(pandas_table.columns)
    a, b = _rows(crm_table, columns), _rows(pandas_table, columns)
    if key:
        idx = [columns.index(k) for k in key]
        a.sort(key=lambda r: tuple((x is None, x) for x in (r[i] for i in idx)))
        b.sort(key=lambda r: tuple((x is None, x) for x in (r[i] for i in idx)))
    out: list[str] = []
    if len(a) != len(b):
        out.append(f"{where}: crm {len(a)} rows, {other} {len(b)} rows")
    compared = 0
    for n, (ra, rb) in enumerate(zip(a, b, strict=False)):
        for c, (u, v) in enumerate(zip(ra, rb, strict=True)):
            compared += 1
            if not _same(u, v, columns[c] in MONEY):
                if len(out) < limit:
                    out.append(f"{where}: row {n} {columns[c]}: crm {u!r} {other} {v!r}")
                else:
                    out.append("")  # counted, not shown
    return out, compared


def compare_trend(where: str, crm_trend: pl.DataFrame, pandas_trend: list[dict],
                  keys: tuple[str, ...] = tuple(ref.KEYS), other: str = "pandas") -> tuple[list[str], int]:
    """The 12-month KPI trend against a reference's (bench/pandas_reference.py's 23 metrics, or ``keys``)."""
    out, compared = [], 0
    for row, theirs in zip(crm_trend.to_dicts(), pandas_trend, strict=True):
        for k in keys:
            compared += 1
            if not _same(_plain(row.get(k)), _plain(theirs.get(k)), k in ref.MONEY):
                out.append(f"{where} {row['month']} {k}: crm {row.get(k)!r} {other} {theirs.get(k)!r}")
    return out, compared


def compare_kpis(where: str, crm_values: tuple[dict, dict], theirs: tuple[dict, dict],
                 other: str, keys: tuple[str, ...] = tuple(ref.KEYS)) -> tuple[list[str], int]:
    """This and the previous period's KPIs against a reference's (bench/pandas_reference.py's 23 metrics, or
    ``keys``)."""
    out, compared = [], 0
    for period, mine, their in zip(("current", "previous"), crm_values, theirs, strict=True):
        for k in keys:
            compared += 1
            if not _same(_plain(mine.get(k)), _plain(their.get(k)), k in ref.MONEY):
                out.append(f"{where} {period} {k}: crm {mine.get(k)!r} {other} {their.get(k)!r}")
    return out, compared


FUNNEL_KEYS: dict[str, list[str] | None] = {
    "funnel": None, "funnel by owner": None, "deals": None, "stage_velocity": None, "win_loss by owner": None,
    "lost_reasons": None, "forecast": None, "ageing (30 days)": ["days_in_stage", "opportunity_id"],
}


def check_funnel(view: View, crm: dict[str, Any], pandas: dict[str, tuple[float, Any]],
                 other: str = "pandas") -> tuple[list[str], int]:
    """crm's Funnel page tables against a reference's (``other`` names it: pandas or DuckDB)."""
    found, compared = [], 0
    label = view.filters.describe()
    for name, (_, theirs) in pandas.items():
        if name.startswith("win_cycle_trend"):
            f, c = compare_trend(f"{label} · {name}", crm[name], theirs, fref.SALES_TREND_KEYS, other)
        else:
            key = FUNNEL_KEYS[name]
            mine = crm[name]
            if key == ["days_in_stage", "opportunity_id"]:
                mine = mine.sort(["days_in_stage", "opportunity_id"], descending=[True, False])
                key = None
            f, c = compare_tables(f"{label} · {name}", mine, theirs, key, other=other)
        found += f
        compared += c
    return found, compared


def check_service(view: View, crm: dict[str, Any], pandas: dict[str, tuple[float, Any]],
                  other: str = "pandas", page: str = "service") -> tuple[list[str], int]:
    """crm's Satisfaction or Service (``page``) tables against a reference's (``other`` names it: pandas or
    DuckDB); the KPIs and their trend on the metrics the page computes (its metric set)."""
    found, compared = [], 0
    label = view.filters.describe()
    keys = tuple(k for k in ref.KEYS if k in metric_set_keys(page))
    for name, (_, theirs) in pandas.items():
        if name == "kpis + previous":
            f, c = compare_kpis(f"{label} · {name}", crm[name], theirs, other, keys)
        elif name == "kpi trend (12 months)":
            f, c = compare_trend(f"{label} · {name}", crm[name], theirs, keys, other=other)
        else:
            f, c = compare_tables(f"{label} · {name}", crm[name], theirs, None, other=other)
        found += f
        compared += c
    return found, compared


# --- report helpers ------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> list[tuple[str, str]]:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return [
        ("python -VV", sys.version.replace("\n", " ")),
        ("uname -r", platform.release()),
        ("cpus / memory", f"{os.cpu_count()} / {mem / 2**30:.0f} GiB"),
        ("load average at start", loadavg()),
        ("polars", pl.__version__), ("pandas", _version("pandas")), ("pyarrow", _version("pyarrow")),
        ("numpy", _version("numpy")), ("duckdb", _version("duckdb")),
        ("POLARS_MAX_THREADS / pool", f"{os.environ.get('POLARS_MAX_THREADS', '-')} / {pl.thread_pool_size()}"),
    ]


DUCKDB_LABELS = {"arrow": "DuckDB over Arrow", "native": "DuckDB native"}


def same_tables(a: dict[str, tuple[float, Any]], b: dict[str, tuple[float, Any]]) -> bool:
    """True when two references' tables are equal (DuckDB fed two ways gives the same values)."""
    def equal(x: Any, y: Any) -> bool:
        return x.equals(y) if isinstance(x, pl.DataFrame) and isinstance(y, pl.DataFrame) else bool(x == y)

    return a.keys() == b.keys() and all(equal(a[k][1], b[k][1]) for k in a)


@dataclass
class DuckRun:
    """The DuckDB reference on one page: seconds per panel for each way of feeding it, and the value check."""

    setup: Any
    """``duckdb_reference.Setup``: the engines and the set-up times."""
    panels: list[str]
    check: Callable[[View, dict[str, Any], dict[str, tuple[float, Any]], str], tuple[list[str], int]]
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    warm: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)
    values: int = 0
    views: int = 0

    def run(self, reference: dict[str, Callable[..., Any]], view: View, crm_results: dict[str, Any],
            cold: bool = False) -> None:
        """Every way of feeding DuckDB on ``view``, timed; its tables compared with crm's (the second way's
        only where they differ from the first's)."""
        first = None
        for mode, engine in self.setup.engines.items():
            theirs = dref.run_panels(reference, engine, view.filters, time.perf_counter, self.panels)
            seconds = {k: sec for k, (sec, _) in theirs.items()}
            if cold:
                self.cold[mode] = seconds
            else:
                self.warm.setdefault(mode, []).append(seconds)
            if first is None or not same_tables(first, theirs):
                f, c = self.check(view, crm_results, theirs, f"DuckDB ({mode})")
                self.found += f
                self.values += c
            first = first or theirs
        self.views += 1


def start_duckdb(args: argparse.Namespace, raw: dict[str, pl.DataFrame], label: str) -> Any:
    """``duckdb_reference.set_up`` on the canonical frames (None when off or duckdb does not import)."""
    if dref is None or args.skip_duckdb:
        return None
    with phase(f"{label}: DuckDB set-up (prepare, Arrow views, native tables)"):
        return dref.set_up(raw, time.perf_counter)


@dataclass
class PageResult:
    """Everything measured for one page."""

    page: str
    panels: list[str]
    cold: PageRun
    warm: list[PageRun]
    load_during: str
    pandas_cold: dict[str, float] | None = None
    pandas_warm: list[dict[str, float]] = field(default_factory=list)
    pandas_panels: list[str] = field(default_factory=list)
    duckdb: DuckRun | None = None


def duckdb_section(res: PageResult, emit: Callable[[str], None]) -> None:
    """crm vs DuckDB SQL on one page, on the same filters: per panel and in total over the panels DuckDB
    computes, the verdict "crm at least as fast", DuckDB's set-up, the value check."""
    duck = res.duckdb
    if duck is None or not duck.warm:
        return
    names, modes = duck.panels, list(duck.warm)
    median = statistics.median
    crm_panel = {n: median(r.seconds[n] for r in res.warm) for n in names}
    rows = []
    for n in names:
        theirs = [median(w[n] for w in duck.warm[m]) for m in modes]
        rows.append([n, _ms(crm_panel[n]), *[_ms(t) for t in theirs], *[f"{t / crm_panel[n]:.1f}x" for t in theirs]])
    emit(table(["panel", f"crm warm median ({len(res.warm)})", *[DUCKDB_LABELS[m] for m in modes],
                *[f"{DUCKDB_LABELS[m]} / crm" for m in modes]], rows))
    emit()
    crm_totals = [sum(r.seconds[n] for n in names) for r in res.warm]
    crm_median = median(crm_totals)
    summary = [["crm", _ms(sum(res.cold.seconds[n] for n in names)), f"**{_ms(crm_median)}**",
                _ms(quantile(crm_totals, 0.9)), "", ""]]
    missed = []
    for m in modes:
        totals = [sum(w.values()) for w in duck.warm[m]]
        met = crm_median <= median(totals)
        missed += [] if met else [DUCKDB_LABELS[m]]
        summary.append([DUCKDB_LABELS[m], _ms(sum(duck.cold[m].values())), f"**{_ms(median(totals))}**",
                        _ms(quantile(totals, 0.9)), f"{median(totals) / crm_median:.2f}x", "met" if met else "**missed**"])
    emit(table(["engine", "cold", f"warm median ({len(res.warm)})", "warm p90", "DuckDB / crm", "crm at least as fast"],
               summary))
    emit()
    left_out = [n for n in res.panels if n not in names]
    scope = "the whole page" if not left_out else f"the panels DuckDB computes (not: {', '.join(left_out)})"
    setup = duck.setup
    emit(f"- Target (issue 14), crm at least as fast as DuckDB SQL over the same data, warm median over {scope}, "
         f"both ways of feeding DuckDB, interleaved with crm on the same filters: "
         + ("met." if not missed else f"**missed** against {', '.join(missed)}."))
    if "kpis + previous" in names:
        emit("- The Service page's KPI panels also compute the five business-hours metrics, which DuckDB (like "
             "pandas_reference.py) does not: those ratios favour DuckDB slightly.")
    emit(f"- DuckDB set-up, once per data version and not in the timings: prepare (Polars joins) "
         f"{setup.prepare_seconds:.2f} s; Arrow views {setup.load_seconds['arrow'] * 1000:.0f} ms; native tables "
         f"(CREATE TABLE AS, load) {setup.load_seconds['native']:.2f} s.")
    emit(f"- Values: crm vs bench/duckdb_reference.py on {duck.views} filters, {duck.values:,} values (the native "
         "tables' results compared where they differ from the Arrow ones'): "
         + ("all agree." if not duck.found else f"**{len(duck.found)} mismatches** (first below)."))
    for line in [x for x in duck.found if x][:20]:
        emit(f"  - {line}")


def page_section(res: PageResult, emit: Callable[[str], None], pandas_note: str) -> None:
    """The per-panel table, the page total, the target verdict and the pandas ratio."""
    n = len(res.warm)
    pw = {name: [r.seconds[name] for r in res.warm] for name in res.panels}
    totals = [r.total for r in res.warm]
    has_pandas = res.pandas_cold is not None
    headers = ["panel (report)", "cold", f"warm median ({n})", "warm p90", "warm max"]
    if has_pandas:
        headers += ["pandas cold", f"pandas warm median ({len(res.pandas_warm)})", "pandas / crm (warm)"]
    rows = []
    for name in res.panels:
        row = [name, _ms(res.cold.seconds[name]), _ms(statistics.median(pw[name])), _ms(quantile(pw[name], 0.9)),
               _ms(max(pw[name]))]
        if has_pandas:
            if name in res.pandas_panels:
                pm = statistics.median(p[name] for p in res.pandas_warm)
                row += [_ms(res.pandas_cold[name]), _ms(pm), f"{pm / statistics.median(pw[name]):.1f}x"]
            else:
                row += ["–", "–", "–"]
        rows.append(row)
    total_row = ["**page total**", f"**{_ms(res.cold.total)}**", f"**{_ms(statistics.median(totals))}**",
                 f"**{_ms(quantile(totals, 0.9))}**", f"**{_ms(max(totals))}**"]
    if has_pandas:
        covered = res.pandas_panels
        crm_sub = [sum(r.seconds[p] for p in covered) for r in res.warm]
        pandas_sub = [sum(p[name] for name in covered) for p in res.pandas_warm]
        pandas_cold_sub = sum(res.pandas_cold[name] for name in covered)
        label = "" if len(covered) == len(res.panels) else " (panels with a reference)"
        total_row += [_ms(pandas_cold_sub), _ms(statistics.median(pandas_sub)),
                      f"**{statistics.median(pandas_sub) / statistics.median(crm_sub):.1f}x**{label}"]
    rows.append(total_row)
    emit(table(headers, rows))
    emit()
    median = statistics.median(totals)
    target = TARGETS_MS[res.page]
    cpu = statistics.median(r.cpu for r in res.warm)
    emit(f"Milliseconds. Warm: {n} calls, each a different filter (frames in memory, nothing cached); "
         f"page total median {_ms(median)} ms, p90 {_ms(quantile(totals, 0.9))} ms, min {_ms(min(totals))} ms, "
         f"CPU (process, both threads) median {_ms(cpu)} ms. Load average during the warm calls: {res.load_during}.")
    emit()
    verdict = "**met**" if median * 1000 < target else "**missed**"
    p90_note = "" if quantile(totals, 0.9) * 1000 < target else f" (the p90, {_ms(quantile(totals, 0.9))} ms, is over it)"
    emit(f"- Target: the whole page warm under {target} ms: {verdict} (median {_ms(median)} ms){p90_note}.")
    if has_pandas:
        covered = res.pandas_panels
        crm_sub = statistics.median(sum(r.seconds[p] for p in covered) for r in res.warm)
        pandas_sub = statistics.median(sum(p[name] for name in covered) for p in res.pandas_warm)
        cold_ratio = sum(res.pandas_cold[p] for p in covered) / sum(res.cold.seconds[p] for p in covered)
        scope = "the whole page" if len(covered) == len(res.panels) else "the panels the reference computes"
        emit(f"- pandas / crm over {scope}: "
             f"{pandas_sub / crm_sub:.1f}x warm (pandas {_ms(pandas_sub)} ms vs {_ms(crm_sub)} ms), "
             f"{cold_ratio:.1f}x cold. {pandas_note}")


# --- the pages ----------------------------------------------------------------------------------------


def bench_funnel(args: argparse.Namespace, emit: Callable[[str], None]) -> list[str]:
    with phase("funnel: demo data (Parquet cache or generate)"):
        data, source, seconds = load_or_generate(args.scale, args.regenerate)
    rows = {k: v.height for k, v in data.items()}
    raw = {name: data[name].select(cols) for name, cols in COLUMNS.items()}
    del data
    with phase("funnel: enrich"):
        started = time.perf_counter()
        frames = enrich(raw)
        enrich_seconds = time.perf_counter() - started
    with phase("funnel: crm cold (first page after enrich)"):
        cold = run_page(FUNNEL_PAGE, frames, cold_view())
    setup = start_duckdb(args, raw, "funnel")
    duck = DuckRun(setup, list(dref.FUNNEL_PANELS), check_funnel) if setup else None
    if duck:
        with phase("funnel: DuckDB cold (first page, each way)"):
            duck.run(dref.FUNNEL_PANELS, cold_view(), cold.results, cold=True)
    views = warm_views(args.warm)
    warm: list[PageRun] = []
    load_before = loadavg()
    with phase(f"funnel: crm warm ({len(views)} filters)" + (", DuckDB interleaved" if duck else "")):
        for v in views:
            warm.append(run_page(FUNNEL_PAGE, frames, v))
            if duck:
                duck.run(dref.FUNNEL_PANELS, v, warm[-1].results)
    res = PageResult("funnel", list(FUNNEL_PAGE), cold, warm, f"{load_before} → {loadavg()}", duckdb=duck)
    print(f"funnel: cold {cold.total * 1000:.0f} ms, warm median {statistics.median(r.total for r in warm) * 1000:.0f} ms",
          flush=True)

    found: list[str] = []
    checked = values = 0
    if not args.skip_pandas:
        with phase("funnel: pandas prepare (to_pandas + joins)"):
            started = time.perf_counter()
            pdata = fref.prepare(raw)
            prepare_seconds = time.perf_counter() - started
        with phase("funnel: pandas cold"):
            theirs = fref.page(pdata, cold_view().filters, time.perf_counter)
        res.pandas_cold = {k: s for k, (s, _) in theirs.items()}
        f, c = check_funnel(cold_view(), cold.results, theirs)
        found += f
        values += c
        checked += 1
        with phase(f"funnel: pandas warm ({args.pandas_warm} filters)"):
            for v, mine in zip(views[:args.pandas_warm], warm, strict=False):
                theirs = fref.page(pdata, v.filters, time.perf_counter)
                res.pandas_warm.append({k: s for k, (s, _) in theirs.items()})
                f, c = check_funnel(v, mine.results, theirs)
                found += f
                values += c
                checked += 1
        res.pandas_panels = list(fref.PANELS)
        del pdata

    emit(f"## Funnel page: scale {args.scale:g} ({rows['opportunities']:,} opportunities)")
    emit()
    emit(f"Data ({source}, {seconds:.1f} s): " + ", ".join(f"{k} {v:,}" for k, v in rows.items())
         + f". The stage history has **{rows['opportunity_stages']:,} rows** "
         f"({rows['opportunity_stages'] / rows['opportunities']:.2f} per deal). enrich: {enrich_seconds:.1f} s; "
         f"the enriched frames hold {_mb(frames_size(frames))}.")
    emit()
    note = (f"pandas prepare (to_pandas + joins, once per data version): {prepare_seconds:.1f} s."
            if not args.skip_pandas else "")
    page_section(res, emit, note)
    if not args.skip_pandas:
        shown = [x for x in found if x]
        emit(f"- Values: crm vs bench/pandas_funnel_reference.py (+ pandas_reference.py for the trend) on {checked} "
             f"filters, {values:,} values: " + ("all agree." if not found else f"**{len(found)} mismatches** (first below)."))
        for line in shown[:20]:
            emit(f"  - {line}")
    emit()
    if duck:
        emit("### Funnel page: crm vs DuckDB SQL")
        emit()
        duckdb_section(res, emit)
        emit()
    return found + (duck.found if duck else [])


def business_hours_timing(raw: dict[str, pl.DataFrame]) -> list[tuple[str, float]]:
    """with_business_seconds alone over the tickets' three timestamps (what enrich adds), default calendar
    and a calendar with a time zone and holidays (the time-zone conversion is its costly part)."""
    tickets = raw["tickets"].lazy().with_columns(first_answer_at=pl.coalesce("first_response_at", "resolved_at"))
    columns = {"created_at": "created_bs", "first_answer_at": "first_answer_bs", "resolved_at": "resolved_bs"}
    holidays = tuple(date(y, m, d) for y in (2024, 2025, 2026) for m, d in ((1, 1), (5, 1), (12, 25), (12, 26)))
    calendars = {
        "default calendar (Mon–Fri 9–17, UTC, no holidays)": BusinessCalendar(),
        "Europe/Berlin, 12 holidays": BusinessCalendar(timezone="Europe/Berlin", holidays=holidays),
    }
    out = []
    for label, cal in calendars.items():
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            with_business_seconds(tickets, columns, cal).select(list(columns.values())).collect()
            best = min(best, time.perf_counter() - started)
        out.append((label, best))
    return out


def bench_satisfaction_service(args: argparse.Namespace, emit: Callable[[str], None]) -> list[str]:
    surveys = args.surveys or None
    with phase("service: data (Parquet cache or generate)"):
        data, source, seconds = load_or_generate_service(args.tickets, surveys, args.regenerate)
    rows = {k: v.height for k, v in data.items()}
    raw = {name: data[name].select(cols) for name, cols in COLUMNS.items()}
    del data
    with phase("service: enrich"):
        started = time.perf_counter()
        frames = enrich(raw)
        enrich_seconds = time.perf_counter() - started
    with phase("service: business hours alone (3 columns x 5M, 3 runs x 2 calendars)"):
        bh = business_hours_timing(raw)

    pages = {"satisfaction": SATISFACTION_PAGE, "service": SERVICE_PAGE}
    results: dict[str, PageResult] = {}
    colds = {}
    for page, panels in pages.items():  # both pages' cold calls first: "first call after load"
        with phase(f"{page}: crm cold"):
            colds[page] = run_page(panels, frames, cold_view())
    setup = start_duckdb(args, raw, "service")
    ducks = {page: DuckRun(setup, [n for n in dref.SERVICE_PANELS if n in panels],
                           functools.partial(check_service, page=page))
             for page, panels in pages.items()} if setup else {}
    for page, duck in ducks.items():
        with phase(f"{page}: DuckDB cold (first page, each way)"):
            duck.run(dref.SERVICE_PANELS, cold_view(), colds[page].results, cold=True)
    views = warm_views(args.warm)
    for page, panels in pages.items():
        load_before = loadavg()
        warm = []
        with phase(f"{page}: crm warm ({len(views)} filters)" + (", DuckDB interleaved" if ducks else "")):
            for v in views:
                warm.append(run_page(panels, frames, v))
                if page in ducks:
                    ducks[page].run(dref.SERVICE_PANELS, v, warm[-1].results)
        results[page] = PageResult(page, list(panels), colds[page], warm, f"{load_before} → {loadavg()}",
                                   duckdb=ducks.get(page))
        print(f"{page}: cold {colds[page].total * 1000:.0f} ms, warm median "
              f"{statistics.median(r.total for r in warm) * 1000:.0f} ms", flush=True)

    found: list[str] = []
    checked = values = 0
    prepare_seconds = 0.0
    if not args.skip_pandas:
        with phase("service: pandas prepare (to_pandas + joins)"):
            started = time.perf_counter()
            pdata = sref.prepare(raw)
            prepare_seconds = time.perf_counter() - started
        sat_names = [n for n in sref.PANELS if n in SATISFACTION_PAGE]
        svc_names = [n for n in sref.PANELS if n in SERVICE_PAGE]
        with phase("service: pandas cold"):
            theirs = sref.panels(pdata, cold_view().filters, time.perf_counter)
        for page, names in (("satisfaction", sat_names), ("service", svc_names)):
            f, c = check_service(cold_view(), colds[page].results, {k: theirs[k] for k in names}, page=page)
            found, values = found + f, values + c
            results[page].pandas_cold = {k: theirs[k][0] for k in names}
            results[page].pandas_panels = names
        checked += 1
        with phase(f"service: pandas warm ({args.pandas_warm} filters)"):
            for i, v in enumerate(views[:args.pandas_warm]):
                theirs = sref.panels(pdata, v.filters, time.perf_counter)
                for page, names in (("satisfaction", sat_names), ("service", svc_names)):
                    f, c = check_service(v, results[page].warm[i].results, {k: theirs[k] for k in names}, page=page)
                    found, values = found + f, values + c
                    results[page].pandas_warm.append({k: theirs[k][0] for k in names})
                checked += 1
        del pdata

    generated = GENERATED.get("survey_responses")
    emit(f"## Satisfaction and Service pages: {rows['tickets']:,} tickets, {rows['survey_responses']:,} survey responses")
    emit()
    kinds = raw["survey_responses"]["kind"].value_counts().sort("kind")
    emit(f"Data ({source}, {seconds:.1f} s; bench/datagen.py `load_or_generate_service`: crm.demo's customer, ticket "
         f"and survey generators at the scale of {rows['tickets']:,} tickets, other business tables empty): "
         + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v)
         + ". Survey responses: " + ", ".join(f"{k} {n:,}" for k, n in kinds.iter_rows())
         + (f" (a seeded uniform sample of the {generated:,} the demo generated)" if generated and surveys else "")
         + f". enrich: **{enrich_seconds:.1f} s**; the enriched frames hold {_mb(frames_size(frames))}.")
    emit()
    emit("Business hours (crm/business_hours.py `with_business_seconds`, what enrich adds for created_at, first answer "
         f"and resolved_at; best of 3, {rows['tickets']:,} tickets):")
    emit()
    emit(table(["calendar", "seconds", "rows x columns per second"],
               [[label, f"{s:.2f}", f"{rows['tickets'] * 3 / s / 1e6:.0f}M"] for label, s in bh]))
    emit()
    note = (f"pandas prepare (to_pandas + joins, once per data version): {prepare_seconds:.1f} s. The reference "
            "covers the heavy calendar-hours panels only (see bench/pandas_service_reference.py).")
    for page, res in results.items():
        emit(f"### {page.capitalize()} page")
        emit()
        page_section(res, emit, note if not args.skip_pandas else "")
        emit()
        if res.duckdb:
            emit(f"#### {page.capitalize()} page: crm vs DuckDB SQL")
            emit()
            duckdb_section(res, emit)
            emit()
    both = [a.total + b.total for a, b in zip(results["satisfaction"].warm, results["service"].warm, strict=True)]
    emit(f"Both pages one after the other for the same filter (the app would serve the second page's KPIs and trend "
         f"from its cache): median {_ms(statistics.median(both))} ms, p90 {_ms(quantile(both, 0.9))} ms.")
    emit()
    if not args.skip_pandas:
        shown = [x for x in found if x]
        emit(f"- Values: crm vs bench/pandas_service_reference.py on {checked} filters, {values:,} values: "
             + ("all agree." if not found else f"**{len(found)} mismatches** (first below)."))
        for line in shown[:20]:
            emit(f"  - {line}")
        emit()
    return found + [x for duck in ducks.values() for x in duck.found]


def add_common_options(parser: argparse.ArgumentParser, warm_help: str) -> None:
    """The options every page benchmark takes: --warm (default 15), --pandas-warm, --skip-pandas,
    --regenerate and --out."""
    parser.add_argument("--warm", type=int, default=15, help=warm_help)
    parser.add_argument("--pandas-warm", type=int, default=3, help="filters timed warm with pandas (default 3)")
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas reference (timing and value check)")
    parser.add_argument("--regenerate", action="store_true", help="ignore the Parquet cache in bench/.cache")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")


def print_and_write(lines: list[str], out: Path | None) -> None:
    """Print a report and, with ``out``, write it there too."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")


def finish_report(title: str, started: float, env: list[tuple[str, str]], body: list[str], out: Path | None) -> None:
    """Print the run's header (title, duration, environment) and peak memory; write all to ``out``."""
    env.append(("load average at the end", loadavg()))
    head = [f"# {title}", "", f"Run {date.today().isoformat()}, {(time.perf_counter() - started) / 60:.1f} min.", "",
            table(["", ""], [[k, v] for k, v in env]), ""]
    tail = memory_section()
    print("\n".join(head + tail), flush=True)
    if out:
        out.write_text("\n".join(head + body + tail) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the Funnel, Satisfaction and Service pages' computations.")
    parser.add_argument("--page", choices=("funnel", "satisfaction_service", "all"), default="all")
    parser.add_argument("--scale", type=float, default=100, help="funnel: demo scale (100 = 1M opportunities)")
    parser.add_argument("--tickets", type=int, default=5_000_000, help="satisfaction/service: tickets (default 5M)")
    parser.add_argument("--surveys", type=int, default=2_000_000,
                        help="satisfaction/service: survey responses kept (a sample; 0 = all the demo generates)")
    add_common_options(parser, "filters timed warm with crm and DuckDB (default 15)")
    parser.add_argument("--skip-duckdb", action="store_true",
                        help="no DuckDB reference (on by default when duckdb imports: timing and value check)")
    args = parser.parse_args()

    body: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        body.append(text)

    started = time.perf_counter()
    env = environment()
    found: list[str] = []
    if args.page in ("funnel", "all"):
        found += bench_funnel(args, emit)
    if args.page in ("satisfaction_service", "all"):
        found += bench_satisfaction_service(args, emit)
    if dref is None and not args.skip_duckdb:
        emit("DuckDB reference: not run (duckdb does not import; `pip install -r requirements-dev.txt`).")
    finish_report(f"Page benchmarks: seed {SEED}, as of {AS_OF}", started, env, body, args.out)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
