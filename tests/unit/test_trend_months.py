"""A trend's months before its last are kept per filter and reused when only the period's end moves within
its month (crm.results.computed_trend): the values equal a trend computed whole, every month at once."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from crm import results
from crm.dataset import COLUMNS, enrich
from crm.filters import Filters, Period
from crm.metrics import monthly_trend
from crm.metrics.kpis import METRIC_SETS
from crm.narrowing import narrow
from crm.reports import with_month_coverage
from crm.scope import Scope


@pytest.fixture(scope="module")
def frames(demo_frames):
    return enrich({name: demo_frames[name] for name in COLUMNS})


def ending(day: date, **dimensions) -> Filters:
    return Filters.create(Period(day, day), scope=Scope(), **dimensions)


def whole(frames, anchored: Filters, metric_set: str) -> pl.DataFrame:
    """The twelve months in one computation, as before the months were kept."""
    return with_month_coverage(monthly_trend(narrow(frames, anchored), anchored.period, 12, METRIC_SETS[metric_set]),
                               frames)


@pytest.fixture
def computed(monkeypatch):
    """The months each call of crm.results computes, in order."""
    asked: list[list[date]] = []
    real = results.trend_of

    def counting(ds, periods, summaries):
        asked.append([p.start for p in periods])
        return real(ds, periods, summaries)

    monkeypatch.setattr(results, "trend_of", counting)
    return asked


@pytest.mark.parametrize("metric_set", ["cockpit", "all"])
def test_moving_the_end_within_its_month_computes_the_last_month_only(frames, computed, metric_set):
    europe = {"regions": ("Europe",)}
    first = results.computed_trend(frames, ending(date(2026, 5, 20), **europe), 12, metric_set)
    assert first.equals(whole(frames, ending(date(2026, 5, 20), **europe), metric_set))
    assert computed == [[date(2025, m, 1) for m in range(6, 13)] + [date(2026, m, 1) for m in range(1, 5)],
                        [date(2026, 5, 1)]]
    computed.clear()
    moved = results.computed_trend(frames, ending(date(2026, 5, 11), **europe), 12, metric_set)
    assert computed == [[date(2026, 5, 1)]]  # June 2025 - April 2026 reused
    assert moved.equals(whole(frames, ending(date(2026, 5, 11), **europe), metric_set))
    assert not moved.equals(first)  # May cut at the 11th, not the 20th


def test_another_filter_or_month_computes_its_own_months(frames, computed):
    # (each test's filters and months are new to the frames: the kept months outlive a test)
    results.computed_trend(frames, ending(date(2026, 3, 20)), 12, "cockpit")
    computed.clear()
    other_region = results.computed_trend(frames, ending(date(2026, 3, 20), regions=("North America",)), 12, "cockpit")
    next_month = results.computed_trend(frames, ending(date(2026, 4, 2)), 12, "cockpit")
    assert [len(months) for months in computed] == [11, 1, 11, 1]
    assert other_region.equals(whole(frames, ending(date(2026, 3, 20), regions=("North America",)), "cockpit"))
    assert next_month.equals(whole(frames, ending(date(2026, 4, 2)), "cockpit"))
    assert next_month["month"][0] == date(2025, 5, 1)


def test_a_one_month_trend(frames, computed):
    one = results.computed_trend(frames, ending(date(2026, 4, 30)), 1, "service")
    assert one.equals(with_month_coverage(
        monthly_trend(narrow(frames, ending(date(2026, 4, 30))), Period(date(2026, 4, 30), date(2026, 4, 30)), 1,
                      METRIC_SETS["service"]), frames))
    assert one["month"].to_list() == [date(2026, 4, 1)]
