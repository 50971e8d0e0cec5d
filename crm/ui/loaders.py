"""Cached access to the store: engines and shared frames once per data version, small results per filter."""

from __future__ import annotations

import os
import threading

import polars as pl
import streamlit as st

from crm import demo
from crm.config import is_embedded, resolve_database_url
from crm.dataset import Frames, load_frames
from crm.filters import Filters
from crm.metrics import compute_with_previous, monthly_trend
from crm.metrics.kpis import Values
from crm.reports import DEFAULT_OPTIONS, ReportOptions, build_report
from crm.store import Store

_fill_lock = threading.Lock()


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
        return True


@st.cache_resource(show_spinner=False, max_entries=2)
def get_frames(url: str, version: int) -> Frames:
    """The enriched tables for one data version, shared by every session."""
    return load_frames(get_store(url), version)


@st.cache_data(show_spinner=False, max_entries=512)
def get_kpis(url: str, version: int, filters: Filters) -> tuple[Values, Values]:
    """This period's and the previous period's metric values."""
    frames = get_frames(url, version)
    return compute_with_previous(frames.narrow(filters), filters.period)


def get_trend(url: str, version: int, filters: Filters, months: int = 12) -> pl.DataFrame:
    """Every metric per month for ``months`` months ending with the period (sparklines, trends).

    Cached on the period's last day and the dimensions only, so moving the
    start date does not recompute it.
    """
    return _trend(url, version, filters.ending(), months)


@st.cache_data(show_spinner=False, max_entries=128)
def _trend(url: str, version: int, anchored: Filters, months: int) -> pl.DataFrame:
    frames = get_frames(url, version)
    return monthly_trend(frames.narrow(anchored), anchored.period, months)


@st.cache_data(show_spinner=False, max_entries=256)
def get_report(url: str, version: int, name: str, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """A named report (crm.reports) for these filters and view options."""
    return build_report(name, get_frames(url, version), filters, options)
