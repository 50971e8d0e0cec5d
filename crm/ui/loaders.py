"""Cached access to the store: engines and shared frames once per data version, small results per filter."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl
import streamlit as st

from crm import auth, demo, quality, results
from crm.config import is_embedded, resolve_database_url
from crm.cross_sell import association_rules, rule_targets
from crm.dataset import Frames, Progress, load_frames
from crm.filters import Filters, Period
from crm.metrics import funnel
from crm.metrics.kpis import Values
from crm.narrowing import evaluate, member_ids, narrow, narrowing_scope, scores
from crm.reports import DEFAULT_OPTIONS, ReportOptions, first_deals
from crm.segment_rules import SegmentRule
from crm.segments import customer_table
from crm.store import Store
from crm.tables import SharedTables

if TYPE_CHECKING:
    from crm.churn_risk import ChurnModels

_fill_lock = threading.Lock()
log = logging.getLogger(__name__)


def database_url() -> str:
    """The store URL the app uses (see crm.config)."""
    return resolve_database_url()


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> Store:
    """One Store (engine and pool) per URL for the whole server."""
    return Store(url)


def should_fill_with_demo(url: str) -> bool:
    """The embedded store, or any store when CRM_DEMO_ON_EMPTY=1, is filled with demo data when empty."""
    return is_embedded(url) or os.environ.get("CRM_DEMO_ON_EMPTY") == "1"


def fill_with_demo_if_empty(store: Store) -> bool:
    """Create the schema and load the default demo data into a store that never had data; True if it did."""
    with _fill_lock:
        if store.data_version() > 0:
            return False
        store.replace_business_data(demo.generate(demo.DemoSpec()))
        auth.add_demo_users(store)  # one demo-only user per role (README), as `init-demo` adds them
        return True


class _Shelf:
    """The loaded frames of the last ``KEEP`` data versions, shared by every session. Not an
    ``st.cache_resource`` on the load itself: a load reports its steps to the session that runs it
    (a progress bar), and a cached function must not draw. The lock makes a second session that misses
    wait for a load in progress instead of starting its own; ``refreshing`` holds the newer versions
    being loaded in the background while the pages keep serving the one before."""

    KEEP = 2

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[tuple[str, int], Frames] = {}
        self.refreshing: dict[tuple[str, int], threading.Thread] = {}
        self.failed: dict[tuple[str, int], str] = {}

    def keep(self, key: tuple[str, int], frames: Frames) -> None:
        self.frames[key] = frames
        while len(self.frames) > _Shelf.KEEP:
            self.frames.pop(next(iter(self.frames)))

    def newest(self, url: str, below: int) -> Frames | None:
        """The newest loaded frames of ``url`` older than version ``below``."""
        older = [(v, f) for (u, v), f in self.frames.items() if u == url and v < below]
        return max(older, key=lambda item: item[0])[1] if older else None


@st.cache_resource(show_spinner=False)
def _shelf() -> _Shelf:
    return _Shelf()


def get_frames(url: str, version: int, progress: Progress | None = None) -> Frames:
    """The enriched tables for one data version, shared by every session; ``progress`` hears the steps
    of a load (crm.dataset.load_frames) when this call has to load them, and nothing when they are there."""
    shelf = _shelf()
    frames = shelf.frames.get((url, version))
    if frames is not None:  # the usual case: no lock, so a load of a newer version keeps no one waiting
        return frames
    with shelf.lock:
        frames = shelf.frames.get((url, version))
        if frames is None:
            frames = load_frames(get_store(url), version, progress, save_in_background=True)
            shelf.keep((url, version), frames)
        return frames


@dataclass(frozen=True)
class Served:
    """The frames a page shows: the newest version ready, and the newer one being prepared (if any)."""

    frames: Frames
    preparing: int | None = None
    """A newer data version loading in the background (the page says so and refreshes when it is ready)."""
    failed: str | None = None
    """Why the newer version could not be loaded (the pages go on with ``frames``)."""


_CHANGED_HERE = "crm_changed_data"
"""st.session_state key: this session just changed the data (an import, an undo, a merge, a settings save)."""


def changed_here() -> None:
    """Call after this session changed the data: its next page waits for the new data (with the progress
    bar) instead of showing the older data with a notice, so the person sees the effect of their change."""
    st.session_state[_CHANGED_HERE] = True


def serve_frames(url: str, version: int, progress: Progress | None = None) -> Served:
    """The frames for ``version`` when loaded; else, when an older version is loaded, that one while
    ``version`` loads in a background thread (an import or a settings change never leaves the pages
    blank); else (the first start) load now, reporting to ``progress``."""
    shelf = _shelf()
    key = (url, version)
    if key in shelf.frames:
        st.session_state.pop(_CHANGED_HERE, None)
        return Served(shelf.frames[key])
    previous = shelf.newest(url, version)
    if previous is None or st.session_state.pop(_CHANGED_HERE, False):
        return Served(get_frames(url, version, progress))
    with shelf.lock:
        if key in shelf.frames:
            return Served(shelf.frames[key])
        if key in shelf.failed:
            return Served(previous, failed=shelf.failed[key])
        if key not in shelf.refreshing:
            thread = threading.Thread(target=_refresh, args=(url, version), name=f"crm-load-v{version}", daemon=True)
            shelf.refreshing[key] = thread
            thread.start()
    return Served(previous, preparing=version)


def _refresh(url: str, version: int) -> None:
    shelf = _shelf()
    key = (url, version)
    try:
        frames = load_frames(get_store(url), version, save_in_background=True)
    except Exception as exc:  # the pages go on with the older frames and say the newer could not be loaded
        log.exception("loading data version %s failed", version)
        with shelf.lock:
            shelf.failed[key] = type(exc).__name__
            shelf.refreshing.pop(key, None)
        return
    with shelf.lock:
        shelf.keep(key, frames)
        shelf.refreshing.pop(key, None)


def is_ready(url: str, version: int) -> bool:
    """True when ``version``'s frames are loaded (or failed to load: nothing more will come)."""
    shelf = _shelf()
    return (url, version) in shelf.frames or (url, version) in shelf.failed


def compute_slots(environ: Mapping[str, str] | None = None) -> int:
    """How many page computations the server runs at once (``CRM_COMPUTE_SLOTS``; default: its cores, at least
    two). A computation over 10M deals holds up to a gigabyte or more while it runs, and Polars already uses
    every core for each, so twenty sessions computing at once take twenty times the memory and finish no
    sooner: the rest wait for a slot (bench/RESULTS.md, the 10M load test)."""
    raw = (os.environ if environ is None else environ).get("CRM_COMPUTE_SLOTS", "").strip()
    try:
        wanted = int(raw) if raw else max(2, os.cpu_count() or 2)
    except ValueError:
        log.warning("CRM_COMPUTE_SLOTS=%r is not a whole number; using the number of cores", raw)
        wanted = max(2, os.cpu_count() or 2)
    return max(1, wanted)


class _Slots:
    """A bounded number of computations at once; a thread that holds a slot does not wait for a second."""

    def __init__(self, slots: int) -> None:
        self.semaphore = threading.BoundedSemaphore(slots)
        self.held = threading.local()

    @contextmanager
    def slot(self) -> Iterator[None]:
        if getattr(self.held, "depth", 0):
            self.held.depth += 1
            try:
                yield
            finally:
                self.held.depth -= 1
            return
        with self.semaphore:
            self.held.depth = 1
            try:
                yield
            finally:
                self.held.depth = 0


@st.cache_resource(show_spinner=False)
def _slots() -> _Slots:
    return _Slots(compute_slots())


def computing() -> AbstractContextManager[None]:
    """Hold one of the server's compute slots (``compute_slots``) while a page's numbers are computed."""
    return _slots().slot()


RESULT_BUDGET_MB = 1024
"""Memory for the page tables shared by every session (``CRM_RESULT_CACHE_MB``)."""


@st.cache_resource(show_spinner=False)
def _tables() -> SharedTables:
    raw = os.environ.get("CRM_RESULT_CACHE_MB", "").strip()
    try:
        budget = int(raw) if raw else RESULT_BUDGET_MB
    except ValueError:
        log.warning("CRM_RESULT_CACHE_MB=%r is not a whole number; using %s", raw, RESULT_BUDGET_MB)
        budget = RESULT_BUDGET_MB
    return SharedTables(max(budget, 1) * 1024 * 1024)


def _shared_table(max_entries: int) -> Any:
    """Cache a function's table once for every session (``st.cache_resource``: each caller gets the same
    frame) instead of a pickled copy per caller (``st.cache_data``). Nothing in the app changes a Polars frame
    in place, and unpickling the tables was a tenth of a cached page's server CPU at 1M deals (the funnel's
    deal list)."""
    return st.cache_resource(show_spinner=False, max_entries=max_entries)


@st.cache_data(show_spinner=False, max_entries=512)
def get_kpis(url: str, version: int, filters: Filters, metric_set: str = "all") -> tuple[Values, Values]:
    """This period's and the previous period's values of the metrics a page shows (``metric_set``, one of
    crm.metrics.kpis.METRIC_SETS; the others None)."""
    with computing():
        return results.kpis(get_frames(url, version), filters, metric_set)


def get_trend(url: str, version: int, filters: Filters, metric_set: str = "all", *, months: int = 12) -> pl.DataFrame:
    """The metrics of ``metric_set`` per month for ``months`` months ending with the period (sparklines,
    trends), with ``complete`` / ``covered_days`` / ``calendar_days`` per month
    (crm.reports.with_month_coverage).

    Cached on the period's last day and the dimensions only, so moving the
    start date does not recompute it.
    """
    return _trend(url, version, filters.ending(), months, metric_set)


@_shared_table(max_entries=128)
def _trend(url: str, version: int, anchored: Filters, months: int, metric_set: str) -> pl.DataFrame:
    with computing():
        return results.trend(get_frames(url, version), anchored, months, metric_set)


def get_report(url: str, version: int, name: str, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """A named report (crm.reports) for these filters and view options, shared by every session within the
    tables' memory budget (crm.tables.SharedTables)."""
    def compute() -> pl.DataFrame:
        with computing():
            return results.report(get_frames(url, version), name, filters, options)

    return _tables().get(("report", url, version, name, filters, options), compute)


def get_first_deals(url: str, version: int, filters: Filters, options: ReportOptions, rows: int) -> funnel.DealList:
    """The deals report's first ``rows`` deals with its count and amount (crm.reports.first_deals), shared
    like get_report's tables: a page's grid without the millions of deals behind it at 10M."""
    def compute() -> funnel.DealList:
        with computing():
            return first_deals(get_frames(url, version), filters, options, rows)

    return _tables().get(("first_deals", url, version, filters, options, rows), compute)


# --- the Segments page: customers scored and selected within the person's scope -------------------------
# Not st.cache_data: the score tables are large (a row per customer) and Frames.memo keeps them once per
# data version, rule and scope without a copy per call; the rest is cheap next to them.


def segment_scores(url: str, version: int, filters: Filters) -> pl.DataFrame:
    """RFM scores at the period end over the filters' dimensions, within their scope."""
    with computing():
        return scores(get_frames(url, version), SegmentRule.for_filters(filters), filters.period.end,
                      narrowing_scope(filters))


def segment_members(url: str, version: int, filters: Filters) -> set[str]:
    """The customer ids of the filters' segment rule (the URL's ``seg=``), within their scope."""
    if not filters.segment_rule:
        return set()
    with computing():
        return set(member_ids(get_frames(url, version), filters.segment_rule, narrowing_scope(filters)).to_list())


def segment_selected(url: str, version: int, filters: Filters, rule: SegmentRule) -> pl.DataFrame:
    """The scored customers ``rule`` selects over the filters' period, within their scope."""
    with computing():
        return evaluate(get_frames(url, version), rule, filters.period, narrowing_scope(filters))


def segment_customers(url: str, version: int, selected: pl.DataFrame, as_of: date, limit: int | None = None
                      ) -> pl.DataFrame:
    """The customer grid of ``selected`` (rows of segment_scores / segment_selected, already scoped)."""
    with computing():
        return customer_table(get_frames(url, version), selected, as_of, limit=limit)


# --- work done once per data version in a background thread: the churn models, the quality scores ------------
# Not st.cache_resource on the work itself: it takes seconds to minutes (a churn fit about 13 s at 1M deals, 5 min
# at 10M), the cockpit must not wait for it, and the pages say what it is doing while they wait.


class _Background:
    """Results of one kind of work per (url, data version), for the whole server: the results of the last
    ``KEEP`` versions, the work running, what each is doing now (words), and why a failed one failed."""

    KEEP = 2

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.lock = threading.Lock()
        self.done: dict[tuple[str, int], Any] = {}
        self.running: dict[tuple[str, int], threading.Thread] = {}
        self.step: dict[tuple[str, int], str] = {}
        self.failed: dict[tuple[str, int], str] = {}

    def result(self, key: tuple[str, int], work: Callable[[Callable[[str], None]], Any] | None) -> Any:
        """The result for ``key`` when done, else None; ``work`` (called with a function that takes each
        step in words) starts in a thread unless it runs, ran or failed already; None only looks."""
        if key in self.done or work is None:
            return self.done.get(key)
        with self.lock:
            if key in self.done:
                return self.done[key]
            if key not in self.running and key not in self.failed:
                self.step[key] = "Starting…"
                thread = threading.Thread(target=self._run, args=(key, work), daemon=True,
                                          name=f"crm-{self.kind}-v{key[1]}")
                self.running[key] = thread
                thread.start()
        return None

    def wait(self, key: tuple[str, int], work: Callable[[Callable[[str], None]], Any],
             on_step: Callable[[str], None]) -> Any:
        """``result``, waiting for the work (started if need be); ``on_step`` hears each new step in words.
        None when it failed (``failed`` says why)."""
        said = None
        while (value := self.result(key, work)) is None:
            if key in self.failed:
                return None
            step = self.step.get(key, "")
            if step != said:
                on_step(step)
                said = step
            time.sleep(0.25)
        return value

    def settle(self, key: tuple[str, int], value: Any) -> None:
        """Record ``value`` as the result for ``key`` (one found without running the work)."""
        with self.lock:
            self.done[key] = value
            while len(self.done) > _Background.KEEP:
                self.done.pop(next(iter(self.done)))

    def _run(self, key: tuple[str, int], work: Callable[[Callable[[str], None]], Any]) -> None:
        try:
            value = work(lambda text: self.step.__setitem__(key, text))
        except BaseException as exc:  # the pages say it could not be done; the log has the details. BaseException:
            # a Rust reader's panic (connectorx, a store file gone mid-read) is a PanicException, not an Exception
            log.exception("%s of data version %s failed", self.kind, key[1])
            with self.lock:
                self.failed[key] = type(exc).__name__
                self.running.pop(key, None)
            return
        self.settle(key, value)
        with self.lock:
            self.running.pop(key, None)
            self.step.pop(key, None)


@st.cache_resource(show_spinner=False)
def _churn_fits() -> _Background:
    return _Background("churn fit")


def churn_models(url: str, version: int, frames: Frames, start: bool = True) -> ChurnModels | None:
    """The store's churn models (crm.churn_risk) of this data version when fitted; otherwise None, after
    starting the fit (once for the whole server) in a background thread unless ``start`` is False. A failed
    fit returns ChurnModels with ``problem="failed"``."""
    fits = _churn_fits()
    key = (url, version)
    models = fits.result(key, (lambda step: _fit_churn(frames, step)) if start else None)
    if models is None and key in fits.failed:
        from crm.churn_risk import ChurnModels

        return ChurnModels(frames.last_event_date(), problem="failed", detail=fits.failed[key])
    return models  # type: ignore[no-any-return]


def _fit_churn(frames: Frames, step: Callable[[str], None]) -> ChurnModels:
    from crm.churn_risk import fit_churn_models  # scikit-learn is imported here, not on a page's first run

    return fit_churn_models(frames, step=step)


def churn_step(url: str, version: int) -> str:
    """What the fit of this data version is doing now, in words ("" when none runs)."""
    return _churn_fits().step.get((url, version), "")


def wait_for_churn_models(url: str, version: int, frames: Frames, on_step: Callable[[str], None]) -> ChurnModels:
    """``churn_models``, waiting for the fit when it runs; ``on_step`` hears each new stage in words."""
    _churn_fits().wait((url, version), lambda step: _fit_churn(frames, step), on_step)
    models = churn_models(url, version, frames, start=False)
    assert models is not None  # fitted, or failed
    return models


@st.cache_resource(show_spinner=False)
def _quality_checks() -> _Background:
    return _Background("quality check")


def quality_scores(url: str, version: int, frames: Frames, start: bool = True) -> pl.DataFrame | None:
    """The store's per-table quality scores (crm.quality.store_scores) of this data version: kept with the
    snapshot's results once worked out, so a restart reads them; otherwise None, after starting the check
    (once for the whole server, a table at a time) in a background thread unless ``start`` is False. None
    also after a failed check (logged): the scores only add a link."""
    checks = _quality_checks()
    key = (url, version)
    scores = checks.result(key, None)
    if scores is not None or key in checks.running or key in checks.failed:
        return scores  # type: ignore[no-any-return]
    arguments = (quality.QUALITY_THRESHOLD,)
    found = results.stored(frames.version, frames.stamp, "quality-scores", arguments)
    if isinstance(found, pl.DataFrame):
        checks.settle(key, found)
        return found
    if not start:
        return None
    return checks.result(key, lambda step: results.kept(  # type: ignore[no-any-return]
        frames.version, frames.stamp, "quality-scores", arguments,
        lambda: quality.store_scores(get_store(url), step=step)))


def quality_pending(url: str, version: int, frames: Frames) -> bool:
    """True while the quality check of this data version runs or has not started (False once it is done
    or has failed)."""
    key = (url, version)
    checks = _quality_checks()
    return key not in checks.failed and quality_scores(url, version, frames, start=False) is None


@st.cache_resource(show_spinner=False)
def _quality_reports() -> _Background:
    return _Background("quality report")


class QualityCheckFailed(Exception):
    """The Data quality page's report could not be worked out (the server log has the details)."""


def quality_report(url: str, version: int, on_step: Callable[[str], None]) -> quality.Report:
    """The Data quality page's report of the store at this data version (crm.quality.store_report: every
    table read in pieces), worked out once for the whole server in a background thread; waits for it while
    ``on_step`` hears which table is checked. Its scores serve the cockpit's footer too."""
    key = (url, version)

    def work(step: Callable[[str], None]) -> quality.Report:
        report = quality.store_report(get_store(url), step=step)
        _quality_checks().settle(key, report.scores)
        return report

    reports = _quality_reports()
    report = reports.wait(key, work, on_step)
    if report is None:
        raise QualityCheckFailed(reports.failed.get(key, "unknown"))
    return report  # type: ignore[no-any-return]


def churn_risk_list(url: str, version: int, filters: Filters) -> pl.DataFrame:
    """The risk list (crm.churn_risk.risk_table) of the customers these filters and their scope let through,
    as of the models' day (the filters' period does not move it); empty until ``churn_models`` is ready."""
    models = _churn_fits().done.get((url, version))
    if models is None or models.as_of is None:
        return pl.DataFrame()
    return _risk_list(url, version, filters.with_period(Period(models.as_of, models.as_of)))


def _risk_list(url: str, version: int, filters: Filters) -> pl.DataFrame:
    from crm.churn_risk import risk_table

    def compute() -> pl.DataFrame:
        with computing():
            return risk_table(get_frames(url, version), filters, _churn_fits().done[(url, version)])

    return _tables().get(("risk", url, version, filters), compute)


# --- next product: association rules between products within the person's view ---------------------------


@_shared_table(max_entries=64)
def cross_sell_rules(url: str, version: int, filters: Filters) -> pl.DataFrame:
    """Every rule A → B between two products bought together in the period's baskets within these filters and
    their scope (crm.cross_sell.association_rules with no thresholds: the page applies them)."""
    frames = get_frames(url, version)
    with computing():
        return association_rules(narrow(frames, filters), frames, filters.period, 0.0, 0.0)


@_shared_table(max_entries=64)
def cross_sell_targets(url: str, version: int, filters: Filters, antecedent: str, consequent: str) -> pl.DataFrame:
    """The customers within these filters and their scope who bought ``antecedent`` by the period end and never
    ``consequent``, most valuable first (crm.cross_sell.rule_targets)."""
    frames = get_frames(url, version)
    with computing():
        return rule_targets(narrow(frames, filters), frames, filters.period, antecedent, consequent)
