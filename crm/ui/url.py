"""The view in the URL, and browser history: one entry per user action, Back and Forward restore a view.

How Streamlit 1.67 fills the history (measured in the browser, see tests/e2e/test_history.py): a page
change pushes one entry (the new path with the link's query string); every write to ``st.query_params``
that changes the query string pushes another, except during a Back/Forward rerun, where it replaces
the entry. So the app decides how many entries an action makes:

- a link to a page carries the global filters and that page's own settings (``crm.views``), so the
  page opens on exactly the URL it would write: one entry, and no other page's settings in it;
- a run writes the URL only when the person changed something, and then once;
- a run decides whose state to show: when the URL is not the one the app last wrote or saw (Back,
  Forward, a link, a fresh session), the URL wins and every filter and page setting is read from it;
  otherwise the widgets win and the URL follows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from crm.views import default_view

QueryParams = dict[str, list[str]]

_PAGE = "url_page"
_SEEN = "url_seen"
_DRIVEN = "url_driven"
_FILTERS = "url_filters"


def current_query() -> QueryParams:
    """The query string as Streamlit holds it now, every value as a list."""
    return {k: st.query_params.get_all(k) for k in st.query_params}


def _snapshot() -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    return st.session_state.get(_PAGE, ""), tuple(sorted((k, tuple(v)) for k, v in current_query().items()))


def follow_url(page: str) -> bool:
    """Start a run of ``page`` (its script path): True when the URL leads this run (it is not the URL the
    app last wrote or saw: Back/Forward, a link, a new session), False when the widgets do."""
    st.session_state[_PAGE] = page
    now = _snapshot()
    driven = st.session_state.get(_SEEN) != now
    st.session_state[_SEEN] = now
    st.session_state[_DRIVEN] = driven
    return driven


def current_page() -> str:
    """The script path of the page this run shows ("" before ``follow_url``)."""
    return str(st.session_state.get(_PAGE, ""))


def url_leads() -> bool:
    """True when this run restores its view from the URL (see ``follow_url``)."""
    return bool(st.session_state.get(_DRIVEN, True))


def write_url(params: Mapping[str, Sequence[str]]) -> None:
    """Make ``params`` the query string; a change is one browser history entry, no change writes nothing."""
    wanted = {k: list(v) for k, v in params.items()}
    if current_query() != wanted:
        st.query_params.from_dict(wanted)
    seen()


def seen() -> None:
    """Record the query string as the app's own (after writing ``st.query_params`` directly)."""
    st.session_state[_SEEN] = _snapshot()


def set_link_filters(params: Mapping[str, Sequence[str]]) -> None:
    """The global filters' query parameters that links to pages carry (set by the filter bar each run)."""
    st.session_state[_FILTERS] = {k: list(v) for k, v in params.items()}


def link_params(page: str) -> QueryParams:
    """The query string of a link to ``page``: the current filters and the page's default settings."""
    return {**st.session_state.get(_FILTERS, {}), **default_view(page)}


def page_link(page: str, label: str, icon: str | None = None, help: str | None = None) -> None:
    """``st.page_link`` to another page of the app that keeps the filters (one history entry)."""
    st.page_link(page, label=label, icon=icon, help=help, query_params=link_params(page))
