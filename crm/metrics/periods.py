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

from crm.filters import Period

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
        """Index of the first end moment at or after the timestamp (``len`` when none; Int64).

        A row that counts at every end ``e`` with ``t <= e`` counts at buckets from this index on.
        It is the number of ends before t; ends are midnights, so that is the number of end days
        before t's day rounded up: a lookup by day.
        """
        us: pl.Expr = pl.col(column).dt.epoch("us")
        return self.first_end_from_day(-(-us // _DAY_US))  # ceil: after midnight counts the next day

    def first_end_from_day(self, day_up: pl.Expr) -> pl.Expr:
        """``first_end_from`` for a timestamp given as its day number rounded up (days since
        1970-01-01 of the next midnight at or after it)."""
        end_days = [p.end.toordinal() + 1 - _EPOCH_ORDINAL for p in self.periods]  # midnight ending each period
        first = end_days[0]
        table = [sum(1 for e in end_days if e < first + j) for j in range(end_days[-1] - first + 2)]
        lookup = pl.Series("ends_before", table, dtype=pl.Int64)
        return pl.lit(lookup).gather((day_up.cast(pl.Int64) - first).clip(0, len(table) - 1))

    def end_day(self, i: int) -> int:
        """Day number (days since 1970-01-01) of the midnight ending period ``i``."""
        return self.periods[i].end.toordinal() + 1 - _EPOCH_ORDINAL

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
