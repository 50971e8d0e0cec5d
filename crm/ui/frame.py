"""The frame around every page: page config, the store, the global filter bar, URL state.

Every page script calls ``page_frame()`` first, so a page also works when run
on its own (a deep link on a fresh server, AppTest). The filter bar is built
from the URL whenever the URL leads a run (a new session, a link, Back or
Forward) and written back to the URL when a person changes it, so any view is
a shareable link and each action one browser history entry (crm.ui.url).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NoReturn

import sqlalchemy as sa
import streamlit as st

from crm.auth import User
from crm.charts import BRUSH
from crm.config import ConfigError
from crm.dataset import Frames
from crm.filters import (
    DEFAULT_PRESET,
    DIMENSIONS,
    PRESETS,
    Filters,
    Period,
    period_from_range,
    resolve_preset,
)
from crm.format import plain
from crm.narrowing import UnscopedRead, member_ids
from crm.narrowing import dimension_values as scoped_values
from crm.roles import may_open
from crm.scope import Scope
from crm.segment_rules import SegmentRule, SegmentRuleError
from crm.selections import check_selection, describe_selections, selectable_values, step_names
from crm.store import Store, StoreError
from crm.ui import loaders
from crm.ui.layout import apply_layout
from crm.ui.loading import LoadingView
from crm.ui.pages import FAVICON, PAGES, pages_for
from crm.ui.selection import selection_banner
from crm.ui.session import current_user, not_permitted, page_links, require_user
from crm.ui.url import current_page, current_query, follow_url, page_link, seen, set_link_filters, url_leads, write_url
from crm.views import page_view, param_names

log = logging.getLogger(__name__)

_DIM_LABELS = {"region": "Region", "segment": "Segment", "product": "Product", "team": "Team", "owner": "Owner / agent"}
_DIM_HELP = {
    "region": "The customer's region (deals use their own region).",
    "segment": "The customer's segment.",
    "product": "The deal's or ticket's product; orders that contain it.",
    "team": "Sales team on deals, support team on tickets and surveys.",
    "owner": "Deal owner, ticket agent, customer owner for orders.",
}


@dataclass(frozen=True)
class PageContext:
    """What a page needs: the store, its frames for the current data version, the filters, who is signed in."""

    url: str
    store: Store
    version: int
    frames: Frames
    filters: Filters
    anchor: date
    user: User


def page_frame(title: str) -> PageContext:
    """Set up the page (the app's FAVICON on its tab), reach the store, sign the person in (or show the login
    page), check their role may open the page, build the filter bar; stop with a clear message on failure."""
    st.set_page_config(page_title=f"{title} · CRM Cockpit", page_icon=FAVICON, layout="wide")
    apply_layout()
    path = next((p.path for p in PAGES if p.title == title), title)
    try:
        url = loaders.database_url()
        store = loaders.get_store(url)
        version = store.data_version()
        loading = LoadingView(title)  # draws the frame and a progress bar only if something has to load
        if version == 0 and loaders.should_fill_with_demo(url):
            loading(0.0, "Creating the demo store: two years of sample data (first start, a few seconds)")
            loaders.fill_with_demo_if_empty(store)
            version = store.data_version()
            loading.close()
        user = require_user(store, path)  # a visitor gets the login page, and no data is loaded for them
        if not may_open(user.role, path):
            not_permitted(user, path)
        served = loaders.serve_frames(url, version, progress=loading)
        loading.close()
    except (StoreError, ConfigError, sa.exc.OperationalError) as exc:  # OperationalError: locked, or gone mid-run
        _unreachable(exc)
    frames = served.frames
    anchor = min(frames.last_event_date() or date.today(), date.today())
    follow_url(path)
    filters = filter_bar(frames, anchor)
    _newer_data_notice(url, served)
    selection_banner(frames, filters)
    return PageContext(url, store, frames.version, frames, filters, anchor, user)


REFRESH_CHECK_SECONDS = 2.0
"""While newer data loads in the background, a page checks this often whether it is ready."""


NOTICES_SHOWN = "flt_notices_shown"
"""st.session_state key: the link notices the last run showed."""


def redraw_page() -> None:
    """Rerun the whole page for something that arrived in the background (newer data, a fitted model): the
    same view, so the link's notices it showed are shown again instead of vanishing."""
    st.session_state["flt_notices"] = st.session_state.get(NOTICES_SHOWN, [])
    st.rerun(scope="app")


def _newer_data_notice(url: str, served: loaders.Served) -> None:
    """Say that newer data is being prepared (the page shows the data before it meanwhile) and redraw the
    page once it is ready; or that it could not be loaded."""
    if served.failed:
        st.warning(f"Newer data could not be loaded ({served.failed}); this page shows data version "
                   f"{served.frames.version}. The server log has the details.", icon=":material/sync_problem:")
    elif served.preparing is not None:
        st.info(f"Newer data (version {served.preparing}) is being prepared: this page shows version "
                f"{served.frames.version} until it is ready, then refreshes by itself.", icon=":material/sync:")
        _wait_for_version(url, served.preparing)


@st.fragment(run_every=REFRESH_CHECK_SECONDS)
def _wait_for_version(url: str, version: int) -> None:
    if loaders.is_ready(url, version):
        redraw_page()


RETRY_SECONDS = 15
"""While the store cannot be reached, a page tries again this often (and redraws itself once it can)."""


def _unreachable(exc: Exception) -> NoReturn:
    """The store cannot be reached or the settings read: say so without the URL, user, host or database
    name (the full error goes to the server log), keep the page links, try again every RETRY_SECONDS."""
    log.error("The data store cannot be used: %s", exc)
    page_links(current_user())
    st.error(f"The database cannot be reached right now, or is too busy to answer. The app retries every "
             f"{RETRY_SECONDS} seconds.",
             icon=":material/database_off:")
    _retry_store()
    st.stop()


@st.fragment(run_every=RETRY_SECONDS)
def _retry_store() -> None:
    try:
        loaders.get_store(loaders.database_url()).data_version()
    except (StoreError, ConfigError, sa.exc.OperationalError) as exc:
        log.info("The data store still cannot be used: %s", exc)
        return
    st.rerun(scope="app")


def _latest_day(anchor: date) -> date:
    """The last day the date picker offers (a period in a link is cut there)."""
    return max(anchor, date.today())


def _init_from_url(frames: Frames, anchor: date) -> None:
    """When the URL leads the run (a new session, a link, Back/Forward), set the filter widgets from it."""
    params = current_query()
    filters, notices = Filters.from_query_params(params, anchor, known=scoped_values(frames, _session_scope()),
                                                 page_keys=param_names(current_page()), latest=_latest_day(anchor))
    notices.extend(page_view(current_page(), params)[1])
    st.session_state["flt_preset"] = filters.preset
    st.session_state["flt_range"] = (filters.period.start, filters.period.end)
    st.session_state["flt_compare"] = filters.compare
    for dim, values in filters.dimension_values().items():
        st.session_state[f"flt_{dim}"] = list(values)
    st.session_state["flt_customers"] = filters.customers
    st.session_state["flt_segment_rule"] = _checked_rule(filters.segment_rule, notices)
    st.session_state["flt_selection"], dropped = check_selection(filters.selection, selectable_values(frames),
                                                                 step_names(frames))
    notices.extend(dropped)
    st.session_state["flt_notices"] = notices
    st.session_state["flt_ready"] = True
    _save_widgets()


def _on_preset_change() -> None:
    preset = st.session_state["flt_preset"]
    if preset != "custom":
        period = resolve_preset(preset, st.session_state["flt_anchor"])
        st.session_state["flt_range"] = (period.start, period.end)
    _save_widgets()


def _on_range_change() -> None:
    st.session_state["flt_preset"] = "custom"
    _save_widgets()


def _checked_rule(text: str, notices: list[str]) -> str:
    """A segment rule from a link, canonical, or "" with a notice when it cannot be used."""
    if not text:
        return ""
    try:
        rule = SegmentRule.from_json(text)
    except SegmentRuleError as exc:
        notices.append(f"Ignored the customer segment from the link: {exc}.")
        return ""
    if rule.as_of is None:
        notices.append("Ignored the customer segment from the link: it has no as_of day.")
        return ""
    return rule.to_json()


def clear_customer_selection() -> None:
    """Drop the selected-customer set (ids or a segment rule) from the filters."""
    st.session_state["flt_customers"] = ()
    st.session_state["flt_segment_rule"] = ""
    for key in [k for k in st.session_state if str(k).startswith("seg_applied_")]:
        del st.session_state[key]


def set_segment_rule(rule: SegmentRule, period: Period) -> None:
    """Make a customer segment (dated at ``period``'s end unless it has its own day) the customer
    filter of every page and of the URL."""
    st.session_state["flt_customers"] = ()
    st.session_state["flt_segment_rule"] = rule.dated(period).to_json()


def set_selection(selection: tuple[tuple[str, str], ...]) -> None:
    """Make a chart selection part of the global filters (and so of the URL)."""
    st.session_state["flt_selection"] = tuple(sorted(set(selection)))


def clear_selection() -> None:
    """Drop the chart selection from the filters (the same selection can then be made again)."""
    st.session_state["flt_selection"] = ()
    for key in [k for k in st.session_state if str(k).startswith("sel_applied_")]:
        del st.session_state[key]


_WIDGET_KEYS = ("flt_preset", "flt_range", "flt_compare", *(f"flt_{d}" for d in DIMENSIONS))


def _restore_widgets() -> None:
    """Streamlit ties widget state to the page that drew it, so a page switch would reset the filters:
    their values live in ``flt_saved`` (updated by every widget's on_change) and are put back each run."""
    for key, value in st.session_state.get("flt_saved", {}).items():
        st.session_state[key] = value


def _save_widgets() -> None:
    st.session_state["flt_saved"] = {k: st.session_state[k] for k in _WIDGET_KEYS if k in st.session_state}


def _remember() -> None:
    _save_widgets()


def _session_scope() -> Scope:
    """The signed-in person's row scope (every page's filters carry it; crm.narrowing applies it)."""
    user = current_user()
    if user is None:  # page_frame's sign-in stops a visitor's run before the filter bar
        raise UnscopedRead("no one is signed in to this session")
    return user.scope


def filter_bar(frames: Frames, anchor: date) -> Filters:
    """The global filters in the sidebar, within the signed-in person's scope; returns the Filters and
    mirrors them (never the scope) into the URL."""
    scope = _session_scope()
    st.session_state["flt_anchor"] = anchor
    if url_leads() or not st.session_state.get("flt_ready"):
        _init_from_url(frames, anchor)
    _restore_widgets()
    values = scoped_values(frames, scope)
    with st.sidebar:
        links = st.container()  # drawn once the filters are known: every link carries them
        st.divider()
        st.markdown("### Filters")
        st.selectbox("Period", list(PRESETS), format_func=PRESETS.__getitem__, key="flt_preset",
                     on_change=_on_preset_change, help="Relative periods end on the last day with data.")
        if st.session_state["flt_preset"] != "custom":
            _on_preset_change()
        st.date_input("Dates", key="flt_range", on_change=_on_range_change, format="YYYY-MM-DD",
                      max_value=_latest_day(anchor), help="Inclusive calendar dates.")
        st.toggle("Compare with the previous period", key="flt_compare", on_change=_remember,
                  help="The same number of days just before the start date.")
        for dim in DIMENSIONS:
            st.multiselect(_DIM_LABELS[dim], values[dim], key=f"flt_{dim}", placeholder="All",
                           help=_DIM_HELP[dim], on_change=_remember)
        customers = st.session_state.get("flt_customers", ())
        rule_text = st.session_state.get("flt_segment_rule", "")
        if rule_text:
            rule = SegmentRule.from_json(rule_text)
            count = len(member_ids(frames, rule_text, scope))
            st.info(f"**{count:,} customers** in the segment: {plain(rule.describe())}", icon=":material/group:")
        elif customers:
            st.info(f"{len(customers):,} selected customers", icon=":material/group:")
        if rule_text or customers:
            st.button("Clear customer selection", key="flt_clear_customers", on_click=clear_customer_selection)
        selection = st.session_state.get("flt_selection", ())
        if selection:
            chosen = Filters.create(Period(anchor, anchor), selection=selection, scope=scope)
            shown = " · ".join(item.text for item in describe_selections(chosen, frames))
            st.info(f"Chart selection: {plain(shown)}", icon=":material/ads_click:")
            st.button("Clear chart selection", key="flt_clear_selection", on_click=clear_selection)
        st.caption(f"Data through {anchor:%d %b %Y} · data version {frames.version}")
    notices = st.session_state.pop("flt_notices", [])
    st.session_state[NOTICES_SHOWN] = notices  # a redraw of this same view shows them again (redraw_page)
    for notice in notices:
        st.warning(plain(notice), icon=":material/link_off:")

    period = _period_from_widgets(anchor)
    filters = Filters.create(
        period,
        preset=st.session_state["flt_preset"],
        compare=bool(st.session_state["flt_compare"]),
        regions=st.session_state["flt_region"], segments=st.session_state["flt_segment"],
        products=st.session_state["flt_product"], teams=st.session_state["flt_team"],
        owners=st.session_state["flt_owner"], customers=list(customers),
        selection=st.session_state.get("flt_selection", ()), segment_rule=rule_text, scope=scope,
    )
    set_link_filters(filters.to_query_params())
    with links:
        # Our own links: the same on a fresh server's first (legacy pages/) run and under st.navigation.
        user = current_user()
        for page in pages_for(user.role if user else None):  # the pages this person may open
            page_link(page.path, label=page.title, icon=page.icon)
    if _range_complete():  # a range half picked in the date picker is not a view yet: no history entry
        write_url({**filters.to_query_params(), **page_view(current_page(), current_query())[0]})
    return filters


def _range_complete() -> bool:
    raw = st.session_state.get("flt_range") or ()
    return isinstance(raw, date) or len([d for d in raw if isinstance(d, date)]) != 1


def _period_from_widgets(anchor: date) -> Period:
    raw = st.session_state.get("flt_range") or ()
    chosen: list[date] = [raw] if isinstance(raw, date) else [d for d in raw if isinstance(d, date)]
    if len(chosen) == 2 and chosen[0] <= chosen[1]:
        return Period(chosen[0], chosen[1])
    if len(chosen) == 1:  # the user picked the first day of a range and not yet the second
        return Period(chosen[0], chosen[0])
    return resolve_preset(DEFAULT_PRESET, anchor)


def page_choice(
    param: str,
    label: str,
    options: tuple[str, ...],
    default: str,
    key: str,
    labels: dict[str, str] | None = None,
    help: str | None = None,
) -> str:
    """A view setting kept in the URL (``?mode=strict``; the page's entry in ``crm.views.VIEWS``): read from
    the URL when it leads the run (first sight, a link, Back/Forward), written back on change."""
    if key not in st.session_state or url_leads():
        raw = st.query_params.get(param)  # a bad value was reported and replaced by the filter bar
        st.session_state[key] = raw if raw in options else default
    names = labels or {}
    value = st.segmented_control(label, options, key=key, format_func=lambda o: names.get(o, o.capitalize()),
                                 help=help, selection_mode="single", wrap=True) or default
    if st.query_params.get(param) != value:
        write_url({**current_query(), param: [value]})
    return value


def first_time(key: str, value: object) -> bool:
    """True the first time ``value`` arrives under ``key``: a chart sends its selection again on every
    rerun, and each selection must apply once (so a later change in the sidebar is not undone)."""
    if st.session_state.get(key) == value:
        return False
    st.session_state[key] = value
    return True


def apply_chart_selection(
    event: object, key: str, to_selection: Callable[[list[dict]], tuple[tuple[str, str], ...]], replaces: tuple[str, ...]
) -> None:
    """Turn a chart's box/lasso/click selection into the global selection (then rerun once).

    ``replaces`` names the selection keys this chart owns; others are kept. An
    empty event changes nothing: a chart redrawn with the selection highlighted
    comes back empty, and a selection restored from a link must survive; the
    filter bar's "Clear chart selection" clears it.
    """
    points = [dict(p) for p in (getattr(getattr(event, "selection", None), "points", None) or [])]
    chosen = tuple(sorted(set(to_selection(points))))
    if not chosen or not first_time(f"sel_applied_{key}", chosen):
        return
    kept = tuple((k, v) for k, v in st.session_state.get("flt_selection", ()) if k not in replaces)
    set_selection(kept + chosen)
    st.rerun()


def _brush_date(value: object) -> date | None:
    """A brush edge as a day: Vega sends epoch milliseconds (the browser's local midnight for a date,
    so round to the nearest midnight) or, for some encodings, an ISO string."""
    if isinstance(value, int | float):
        return (datetime(1970, 1, 1) + timedelta(milliseconds=value) + timedelta(hours=12)).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def apply_time_brush(event: object, key: str, grain: str, within: Period) -> None:
    """Turn a time range brushed on a week/month trend (altair ``BRUSH``) into the global period.

    The period becomes the whole buckets under the brush (``crm.filters.period_from_range``);
    each brush is applied once, so a later change in the sidebar is not overridden by it.
    """
    brushed = (getattr(event, "selection", None) or {}).get(BRUSH) or {}
    values = next(iter(brushed.values()), None) if isinstance(brushed, dict) else None
    if not values or len(values) != 2:
        return
    if not first_time(f"brush_applied_{key}", tuple(values)):
        return
    low, high = _brush_date(values[0]), _brush_date(values[1])
    if low is None or high is None:
        return
    period = period_from_range(low, high, grain, within)
    if period == within:
        return
    # the filter widgets are drawn already: their saved values are put back at the start of the rerun
    st.session_state["flt_saved"] = {**st.session_state.get("flt_saved", {}),
                                     "flt_range": (period.start, period.end), "flt_preset": "custom"}
    st.rerun()


def drill_path(param: str, levels: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The drill path kept in the URL (``?drill=product:X&drill=team:Y``), one value per level in order;
    anything else in it is dropped with a notice."""
    path: list[tuple[str, str]] = []
    for position, raw in enumerate(st.query_params.get_all(param)):
        level, sep, value = raw.partition(":")
        if not sep or not value or position >= len(levels) or level != levels[position]:
            st.warning(plain(f"Ignored {param}={raw!r} from the link: the drill path goes {' → '.join(levels)}."),
                       icon=":material/link_off:")
            break
        path.append((level, value))
    return tuple(path)


def set_drill_path(param: str, path: tuple[tuple[str, str], ...]) -> None:
    """Write the drill path to the URL (an empty path removes the parameter)."""
    if path:
        st.query_params[param] = [f"{level}:{value}" for level, value in path]
    elif param in st.query_params:
        del st.query_params[param]
    seen()


def view_key(prefix: str, *parts: object) -> str:
    """A widget key that changes with the view it belongs to (``prefix`` + a digest of ``parts``).

    A selectable table drawn under one key keeps its row selection in the browser;
    when the rows mean something else (another drill level, ranking or period),
    a new key gives a fresh widget instead of a stale selection that re-applies.
    """
    return f"{prefix}_{hashlib.sha1(repr(parts).encode()).hexdigest()[:10]}"
