"""Business-hours durations, vectorised: working days, daily hours, a time zone and holidays.

Timestamps in the store are naive and taken as UTC. The business time between
two moments is B(end) − B(start), where B(t) counts the working seconds from a
fixed epoch to t in the calendar's local time: whole working days before t's
day times the working day's length, plus the worked part of t's own day.
Everything is Polars expressions over whole columns (no per-row Python).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time

import polars as pl

_EPOCH = date(1970, 1, 5)  # a Monday
_US_PER_SECOND = 1_000_000


class CalendarError(ValueError):
    """A business calendar that cannot be used; the message says why."""


@dataclass(frozen=True)
class BusinessCalendar:
    """When the service team works. ``workdays`` are ISO weekdays (1 = Monday … 7 = Sunday)."""

    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    start: time = time(9, 0)
    end: time = time(17, 0)
    timezone: str = "UTC"
    holidays: tuple[date, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.workdays or any(d not in range(1, 8) for d in self.workdays):
            raise CalendarError("workdays must be ISO weekdays 1 (Monday) to 7 (Sunday)")
        if self.end <= self.start:
            raise CalendarError(f"the working day ends ({self.end}) before it starts ({self.start})")
        try:
            pl.Series([datetime(2026, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone(self.timezone)
        except Exception as exc:
            raise CalendarError(f"unknown time zone {self.timezone!r}") from exc

    @property
    def day_seconds(self) -> int:
        """Length of a working day in seconds."""
        return (self.end.hour * 3600 + self.end.minute * 60) - (self.start.hour * 3600 + self.start.minute * 60)

    def to_json(self) -> str:
        """JSON form (stored in the store's meta table)."""
        data = asdict(self)
        data.update(start=self.start.strftime("%H:%M"), end=self.end.strftime("%H:%M"),
                    holidays=[d.isoformat() for d in self.holidays], workdays=list(self.workdays))
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> BusinessCalendar:
        """Parse the JSON form; CalendarError on anything malformed."""
        try:
            data = json.loads(text)
            return cls(
                workdays=tuple(int(d) for d in data.get("workdays", (1, 2, 3, 4, 5))),
                start=time.fromisoformat(data.get("start", "09:00")),
                end=time.fromisoformat(data.get("end", "17:00")),
                timezone=str(data.get("timezone", "UTC")),
                holidays=tuple(sorted(date.fromisoformat(d) for d in data.get("holidays", ()))),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise CalendarError(f"not a business calendar: {exc}") from None


def _local(expr: pl.Expr, timezone: str) -> pl.Expr:
    if timezone == "UTC":
        return expr
    return expr.dt.replace_time_zone("UTC").dt.convert_time_zone(timezone).dt.replace_time_zone(None)


def _seconds_expr(local: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """B(t) from the local timestamp column ``local`` (already converted)."""
    day = (local.dt.date() - pl.lit(_EPOCH)).dt.total_days()
    weeks, weekday = day // 7, day % 7  # weekday 0 = Monday
    flags = [1 if (i + 1) in calendar.workdays else 0 for i in range(7)]
    prefix = [sum(flags[:i]) for i in range(7)]  # working weekdays before weekday i in a week
    before_in_week = pl.lit(pl.Series(prefix, dtype=pl.Int64)).gather(weekday)
    is_workday = pl.lit(pl.Series([bool(f) for f in flags], dtype=pl.Boolean)).gather(weekday)
    holiday_days = sorted({(h - _EPOCH).days for h in calendar.holidays if h.isoweekday() in calendar.workdays})
    if holiday_days:
        holidays = pl.lit(pl.Series(holiday_days, dtype=pl.Int64))
        holidays_before = holidays.search_sorted(day, side="left").cast(pl.Int64)
        is_workday = is_workday & (holidays.search_sorted(day, side="right").cast(pl.Int64) == holidays_before)
    else:
        holidays_before = pl.lit(0, pl.Int64)
    workdays_before = weeks * sum(flags) + before_in_week - holidays_before
    seconds_of_day = (
        local.dt.hour().cast(pl.Int64) * 3600 + local.dt.minute().cast(pl.Int64) * 60
        + local.dt.second().cast(pl.Int64)
    ).cast(pl.Float64) + local.dt.microsecond().cast(pl.Float64) / _US_PER_SECOND
    start = calendar.start.hour * 3600 + calendar.start.minute * 60
    end = calendar.end.hour * 3600 + calendar.end.minute * 60
    worked_today = pl.when(is_workday).then(seconds_of_day.clip(start, end) - start).otherwise(0.0)
    return (workdays_before * calendar.day_seconds).cast(pl.Float64) + worked_today


def with_business_seconds(frame: pl.LazyFrame, columns: dict[str, str], calendar: BusinessCalendar) -> pl.LazyFrame:
    """Add B(t) (working seconds since a fixed epoch) for each timestamp column: ``{source: target}``.

    The local time is computed once per column (a time-zone conversion is the costly part).
    """
    temp = {src: f"__local_{i}" for i, src in enumerate(columns)}
    return (
        frame.with_columns(_local(pl.col(src), calendar.timezone).alias(tmp) for src, tmp in temp.items())
        .with_columns(_seconds_expr(pl.col(temp[src]), calendar).alias(dst) for src, dst in columns.items())
        .drop(list(temp.values()))
    )


def business_seconds_at(moment: datetime, calendar: BusinessCalendar) -> float:
    """B(t) for one moment (a period end, say)."""
    frame = pl.LazyFrame({"t": [moment]}, schema={"t": pl.Datetime("us")})
    return float(with_business_seconds(frame, {"t": "b"}, calendar).collect()["b"][0])


def business_hours_between(start: pl.Expr, end: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """Working hours between two timestamp expressions (null when either is null). For many rows,
    prefer ``with_business_seconds`` on the frame: it converts time zones once per column."""
    return (
        _seconds_expr(_local(end, calendar.timezone), calendar)
        - _seconds_expr(_local(start, calendar.timezone), calendar)
    ) / 3600.0
