"""Several periods in one pass over the tables.

``compute_many`` asks for every metric over several periods at once: this
period and the previous one, or twelve months of a trend. One query per period
scans every table once per period; instead each row gets the index of the
period its timestamp falls in (``bucket``) and one group-by answers all of
them. Point-in-time metrics (pipeline, backlog, active customers) use the
periods' end moments: each row learns the range of ends at which it counts.
Periods are whole days, so both are lookups by day number in small tables.

The periods of a ``Buckets`` are sorted and disjoint, so a moment falls in at
most one of them; the metric definitions are unchanged (each bucket applies
exactly the rules of its own period, including "as of the period end").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import polars as pl

from crm.filters import Period, bucket_end, bucket_start

_TS = pl.Datetime("us")
_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Buckets:
    """Sorted, pairwise disjoint periods; bucket ``i`` is ``periods[i]``."""

    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("at least one period is needed")
        if not self.disjoint(self.periods):
            raise ValueError("periods must be sorted and must not overlap")

    @staticmethod
    def disjoint(periods: Sequence[Period]) -> bool:
        """True when the periods are sorted by start and none overlaps the next."""
        return all(a.end < b.start for a, b in itertools.pairwise(periods))

    def __len__(self) -> int:
        return len(self.periods)

    @cached_property
    def ends(self) -> pl.Series:
        """End moments (midnight after each period's last day), ascending."""
        return pl.Series("end", [p.end_ts for p in self.periods], dtype=_TS)

    @property
    def first_start(self) -> datetime:
        """The earliest start moment."""
        return self.periods[0].start_ts

    @property
    def last_end(self) -> datetime:
        """The latest end moment."""
        return self.periods[-1].end_ts

    def within(self, column: str) -> pl.Expr:
        """True for timestamps between the first start and the last end (two cheap comparisons:
        filter with it before computing ``index`` for the rows that are left)."""
        return (pl.col(column) >= self.first_start) & (pl.col(column) < self.last_end)

    def index(self, column: str) -> pl.Expr:
        """The bucket whose period holds the timestamp (start <= t < end), else null (Int64).

        Periods are whole days, so the bucket is a lookup by the timestamp's day: one gather from
        a small table, not a search per row.
        """
        first = self.periods[0].start.toordinal()
        table: list[int | None] = [None] * (self.periods[-1].end.toordinal() - first + 1)
        for i, p in enumerate(self.periods):
            for ordinal in range(p.start.toordinal(), p.end.toordinal() + 1):
                table[ordinal - first] = i
        lookup = pl.Series("bucket", table, dtype=pl.Int64)
        day: pl.Expr = pl.col(column).dt.epoch("us") // _DAY_US - (first - _EPOCH_ORDINAL)
        return pl.when(day.is_between(0, len(table) - 1)).then(pl.lit(lookup).gather(day.clip(0, len(table) - 1)))

    def end_of(self, bucket: pl.Expr) -> pl.Expr:
        """The end moment of a (non-null) bucket index."""
        return pl.lit(self.ends).gather(bucket)

    def first_end_from(self, column: str) -> pl.Expr:
        """Index of the first end moment after the timestamp (``len`` when none; Int64).

        An event exists at every end ``e`` with ``t < e`` (one stamped exactly at an end belongs to
        the next period), so its row counts at buckets from this index on. It is the number of ends
        at or before t; ends are midnights, so that is the number of end days before the first
        midnight after t: a lookup by day.
        """
        us: pl.Expr = pl.col(column).dt.epoch("us")
        return self.first_end_from_day(us // _DAY_US + 1)  # the first midnight strictly after t

    def first_end_from_day(self, day_up: pl.Expr) -> pl.Expr:
        """``first_end_from`` for a timestamp given as the day number (days since 1970-01-01) of the
        first midnight strictly after it."""
        end_days = [p.end.toordinal() + 1 - _EPOCH_ORDINAL for p in self.periods]  # midnight ending each period
        first = end_days[0]
        table = [sum(1 for e in end_days if e < first + j) for j in range(end_days[-1] - first + 2)]
        lookup = pl.Series("ends_before", table, dtype=pl.Int64)
        return pl.lit(lookup).gather((day_up.cast(pl.Int64) - first).clip(0, len(table) - 1))

    def end_day(self, i: int) -> int:
        """Day number (days since 1970-01-01) of the midnight ending period ``i``."""
        return self.periods[i].end.toordinal() + 1 - _EPOCH_ORDINAL

    def at_ends(self, spans: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
        """Per bucket (``bucket`` 0..n-1), the totals of the integer ``columns`` over the ``spans`` that count
        at its end: a span counts from bucket ``lo`` up to, not including, bucket ``hi`` (``n``: to the last).

        Each span adds its values at ``lo`` and takes them away at ``hi``; a running sum over the buckets
        gives every end's total: one pass however many buckets, exact for integers (cents, counts)."""
        n = len(self.periods)
        live = spans.filter(pl.col("hi") > pl.col("lo"))
        opened = live.group_by(bucket="lo").agg(pl.col(c).sum() for c in columns)
        closed = live.filter(pl.col("hi") < n).group_by(bucket="hi").agg(-pl.col(c).sum() for c in columns)
        changes = pl.concat([opened, closed]).group_by("bucket").agg(pl.col(c).sum() for c in columns)
        return (
            self.grid().join(changes, on="bucket", how="left").sort("bucket")
            .select("bucket", *(pl.col(c).fill_null(0).cum_sum() for c in columns))
        )

    def grid(self) -> pl.LazyFrame:
        """One row per bucket: ``bucket`` 0..n-1."""
        return pl.LazyFrame({"bucket": list(range(len(self.periods)))}, schema={"bucket": pl.Int64})

    def per_bucket(self, parts: Sequence[pl.LazyFrame], zero: dict[str, object]) -> pl.LazyFrame:
        """Every bucket with the columns of ``parts`` (frames keyed by ``bucket``); the columns in
        ``zero`` get that value for a bucket no row fell in (counts 0, sums 0.0), others stay null."""
        out = self.grid()
        for part in parts:
            out = out.join(part, on="bucket", how="left", maintain_order="left")
        return out.with_columns(pl.col(name).fill_null(value) for name, value in zero.items()).sort("bucket")


def single(period: Period) -> Buckets:
    """One period as buckets (the single-period summaries)."""
    return Buckets((period,))


@dataclass(frozen=True)
class Coverage:
    """How much of a calendar bucket (a week or a month) a row of a trend stands for."""

    covered_days: int
    """Days of the bucket inside the period and on or before the data's last day."""
    calendar_days: int
    """Days of the whole calendar week (7) or month (28–31)."""
    complete: bool
    """The bucket holds its whole calendar week or month and the data reaches its last day."""


def coverage(first: date, last: date, grain: str, last_day: date | None) -> Coverage:
    """The coverage of a bucket drawn for the days ``first``…``last`` (its calendar week or month, cut
    to the period) when the data ends on ``last_day`` (None: no data).

    Complete when the bucket is its whole calendar unit (not cut by the period's start or end) and
    ``last_day`` is on or after the unit's last day; anything less is partial and is not comparable
    with whole buckets (a 1-day December next to 30-day Novembers).
    """
    unit_start = bucket_start(first, grain)
    unit_end = bucket_end(unit_start, grain)
    through = last if last_day is None else min(last, last_day)
    covered = 0 if last_day is None else max(0, (through - first).days + 1)
    whole = first == unit_start and last == unit_end
    return Coverage(covered, (unit_end - unit_start).days + 1,
                    whole and last_day is not None and last_day >= unit_end)


def with_coverage(frame: pl.DataFrame, grain: str, last_day: date | None, period: Period | None = None,
                  start: str = "bucket", end: str | None = None) -> pl.DataFrame:
    """``frame`` (one row per bucket, ``start`` = the bucket's first day, ``end`` = its last day or, when
    None, the end of its calendar unit) with ``complete`` (bool), ``covered_days`` and ``calendar_days``
    (see ``coverage``). ``period`` cuts each bucket to it first (a trend whose first week begins before
    the period's start)."""
    rows = []
    for first, last in zip(frame[start], frame[end] if end else [None] * frame.height, strict=True):
        last = last or bucket_end(bucket_start(first, grain), grain)
        if period is not None:
            first, last = max(first, period.start), min(last, period.end)
        rows.append(coverage(first, last, grain, last_day))
    return frame.with_columns(
        complete=pl.Series([c.complete for c in rows], dtype=pl.Boolean),
        covered_days=pl.Series([c.covered_days for c in rows], dtype=pl.Int64),
        calendar_days=pl.Series([c.calendar_days for c in rows], dtype=pl.Int64),
    )
