"""NPS and CSAT over survey responses, with their 95% intervals."""

from __future__ import annotations

import calendar
import math
from datetime import date, timedelta

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period, bucket_end, bucket_start
from crm.metrics.periods import Buckets, single

LOW_CONFIDENCE_N = 30
_Z = 1.96


def responses_in(ds: Dataset, period: Period, kind: str) -> pl.LazyFrame:
    """Responses of ``kind`` ('nps' or 'csat') stamped within the period."""
    return ds.surveys.filter(
        (pl.col("kind") == kind) & pl.col("responded_at").is_between(period.start_ts, period.end_ts, closed="left")
    )


def nps_expr(score: str = "score") -> pl.Expr:
    """NPS of the rows in context: 100 × (share 9–10 − share 0–6); null when there are none."""
    n = pl.col(score).count()
    promoters = (pl.col(score) >= 9).sum().cast(pl.Int64)  # sums of booleans are unsigned
    detractors = (pl.col(score) <= 6).sum().cast(pl.Int64)
    return pl.when(n > 0).then(100.0 * (promoters - detractors) / n)


def csat_expr(score: str = "score") -> pl.Expr:
    """CSAT of the rows in context: share scoring 4 or 5; null when there are none."""
    n = pl.col(score).count()
    return pl.when(n > 0).then((pl.col(score) >= 4).sum() / n)


def summarise_satisfaction(ds: Dataset, period: Period) -> pl.LazyFrame:
    """nps, nps_responses, csat, csat_responses."""
    return summarise_satisfaction_over(ds, single(period)).drop("bucket")


def summarise_satisfaction_over(ds: Dataset, buckets: Buckets) -> pl.LazyFrame:
    """NPS and CSAT for every bucket: responses grouped by the bucket of ``responded_at``."""
    rows = (
        ds.surveys.filter(buckets.within("responded_at"))
        .with_columns(bucket=buckets.index("responded_at"))
        .filter(pl.col("bucket").is_not_null())
    )
    nps = rows.filter(pl.col("kind") == "nps").group_by("bucket").agg(
        nps=nps_expr(), nps_responses=pl.len().cast(pl.Int64)
    )
    csat = rows.filter(pl.col("kind") == "csat").group_by("bucket").agg(
        csat=csat_expr(), csat_responses=pl.len().cast(pl.Int64)
    )
    return buckets.per_bucket([nps, csat], {"nps_responses": 0, "csat_responses": 0})


def nps_interval(promoters: int, passives: int, detractors: int) -> tuple[float, float] | None:
    """95% interval of NPS: ±1.96 × 100 × sqrt(var(x)/n), x = +1/0/−1 (population variance)."""
    n = promoters + passives + detractors
    if n == 0:
        return None
    mean = (promoters - detractors) / n
    variance = (promoters + detractors) / n - mean**2
    half = _Z * 100 * math.sqrt(variance / n)
    return (100 * mean - half, 100 * mean + half)


def wilson_interval(successes: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval for a proportion (CSAT)."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return (centre - half, centre + half)


Grain = str  # "week" or "month"
GRAINS: tuple[str, ...] = ("month", "week")
DRILL_LEVELS: tuple[str, ...] = ("product", "team", "agent")


def _bucket(grain: Grain) -> pl.Expr:
    every = "1w" if grain == "week" else "1mo"
    return pl.col("responded_at").dt.truncate(every).dt.date().alias("bucket")


def _score_stats(kind: str) -> list[pl.Expr]:
    """Per-group aggregates: n, parts, the score and its 95% interval; low_confidence when n < 30."""
    n = pl.len().cast(pl.Int64).alias("n")
    if kind == "nps":
        return [
            n,
            (pl.col("score") >= 9).sum().cast(pl.Int64).alias("promoters"),
            ((pl.col("score") > 6) & (pl.col("score") < 9)).sum().cast(pl.Int64).alias("passives"),
            (pl.col("score") <= 6).sum().cast(pl.Int64).alias("detractors"),
        ]
    return [n, (pl.col("score") >= 4).sum().cast(pl.Int64).alias("satisfied")]


def _with_score(frame: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    """Add ``score``, ``low``, ``high``, ``low_confidence`` from the aggregate counts (vectorised intervals)."""
    n = pl.col("n").cast(pl.Float64)
    if kind == "nps":
        mean = (pl.col("promoters") - pl.col("detractors")) / n
        variance = (pl.col("promoters") + pl.col("detractors")) / n - mean**2
        half = _Z * 100 * (variance.clip(lower_bound=0) / n).sqrt()
        return frame.with_columns(score=100 * mean).with_columns(
            low=pl.col("score") - half, high=pl.col("score") + half, low_confidence=pl.col("n") < LOW_CONFIDENCE_N
        )
    p = pl.col("satisfied") / n
    z2 = _Z**2
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = _Z * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / denom
    return frame.with_columns(score=p, low=centre - half, high=centre + half,
                              low_confidence=pl.col("n") < LOW_CONFIDENCE_N)


def score_trend(ds: Dataset, period: Period, kind: str, grain: Grain = "month") -> pl.DataFrame:
    """NPS or CSAT per week (Monday) or month within the period: n, parts, score, 95% interval, low confidence.

    Buckets without responses are absent (the chart shows gaps, not zeros).
    """
    return (
        responses_in(ds, period, kind)
        .group_by(_bucket(grain))
        .agg(_score_stats(kind))
        .pipe(_with_score, kind)
        .sort("bucket")
        .collect()
    )


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _bucket_starts(period: Period, grain: Grain) -> list[date]:
    """The first days of the weeks or months a period's trend is drawn at (the first may precede it)."""
    starts = [bucket_start(period.start, grain)]
    while (following := bucket_end(starts[-1], grain) + timedelta(days=1)) <= period.end:
        starts.append(following)
    return starts


def _shift_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months away (cut to the month's length); the last day of a
    month stays the last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    at_end = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month + 1, last if at_end else min(day.day, last))


def previous_buckets(period: Period, grain: Grain) -> tuple[Period, int]:
    """The stretch the previous-period line of a trend is drawn from, and the number of buckets to
    move it by: as many weeks or months just before as the period's trend has buckets, cut like the
    period (Q2 against Q1, so April meets January, not a period of 91 days that starts on 31 December
    and puts one day in its first bucket)."""
    n = len(_bucket_starts(period, grain))
    if grain == "week":
        back = timedelta(weeks=n)
        return Period(period.start - back, period.end - back), n
    return Period(_shift_months(period.start, -n), _shift_months(period.end, -n)), n


def comparison_trend(ds: Dataset, period: Period, kind: str, grain: Grain, against: str = "previous") -> pl.DataFrame:
    """The same trend for the previous period or the previous year, with ``bucket`` moved onto this
    period's buckets so the two lines overlay (``compared_bucket`` keeps the original date).

    Against the previous period each bucket is compared with the same bucket of the previous
    period (``previous_buckets``: April with January for Q2); against the year, a month lands on
    the same month and a week 52 weeks on.
    """
    if against == "year":
        other = Period(_shift_years(period.start, -1), _shift_years(period.end, -1))
    else:
        other, n = previous_buckets(period, grain)
    trend = score_trend(ds, other, kind, grain)
    moved: list[date]
    if against == "year":
        moved = [b + timedelta(weeks=52) if grain == "week" else _shift_years(b, 1) for b in trend["bucket"]]
    else:
        moved = [b + timedelta(weeks=n) if grain == "week" else _shift_months(b, n) for b in trend["bucket"]]
    return trend.with_columns(compared_bucket=pl.col("bucket"), bucket=pl.Series(moved, dtype=pl.Date))


def score_by(ds: Dataset, period: Period, kind: str, level: str, within: dict[str, str] | None = None) -> pl.DataFrame:
    """NPS or CSAT by product, team or agent (``level``) inside the chosen parents, worst first.

    ``within`` narrows to a parent, e.g. {"product": "Data Connect"} before ranking teams.
    Rows: the level's value ("(none)" when empty), n, score, 95% interval, low confidence.
    """
    rows = responses_in(ds, period, kind)
    for column, value in (within or {}).items():
        rows = rows.filter(pl.col(column).fill_null("(none)") == value)
    return (
        rows.with_columns(pl.col(level).fill_null("(none)"))
        .group_by(level)
        .agg(_score_stats(kind))
        .pipe(_with_score, kind)
        .sort(["score", level])
        .collect()
    )


def responses_behind(ds: Dataset, period: Period, kind: str, within: dict[str, str] | None = None) -> pl.DataFrame:
    """The responses behind a drill cell, newest first, with their comments."""
    rows = responses_in(ds, period, kind)
    for column, value in (within or {}).items():
        rows = rows.filter(pl.col(column).fill_null("(none)") == value)
    return (
        rows.join(ds.customers.select("customer_id", customer_name="name"), on="customer_id", how="left",
                  maintain_order="left")
        .select("response_id", "responded_at", "kind", "score", "comment", "customer_id", "customer_name",
                "ticket_id", "product", "team", "agent")
        .sort("responded_at", "response_id", descending=[True, False])
        .collect()
    )


def decompose_change(ds: Dataset, period: Period, kind: str, by: str) -> pl.DataFrame:
    """What moved NPS or CSAT against the previous period, per ``by`` group.

    With response shares w and group scores v: mix = (w1 − w0)(v0 + v1)/2,
    rate = (v1 − v0)(w0 + w1)/2; summed over groups they equal the total change
    exactly. A group missing in one period takes its other period's value as v
    (and a share of 0). With no responses in either period the change is undefined: mix, rate
    and total are null. Largest absolute effect first.
    """
    def groups(p: Period) -> pl.LazyFrame:
        return (
            responses_in(ds, p, kind).with_columns(pl.col(by).fill_null("(none)"))
            .group_by(by).agg(_score_stats(kind)).pipe(_with_score, kind)
            .with_columns(share=pl.col("n") / pl.col("n").sum())
            .select(by, "n", "share", "score")
        )

    now, before = pl.collect_all([groups(period), groups(period.previous())])
    undefined = now.height == 0 or before.height == 0
    both = now.join(before, on=by, how="full", coalesce=True, suffix="_previous").with_columns(
        pl.col("share").fill_null(0.0), pl.col("share_previous").fill_null(0.0),
        pl.col("n").fill_null(0), pl.col("n_previous").fill_null(0),
    )
    if not undefined:  # a group missing in one period takes its other period's value
        both = both.with_columns(
            score=pl.coalesce("score", "score_previous"), score_previous=pl.coalesce("score_previous", "score"),
        )
    null = pl.lit(None, dtype=pl.Float64)
    return (
        both.with_columns(
            mix_effect=null if undefined else
            (pl.col("share") - pl.col("share_previous")) * (pl.col("score_previous") + pl.col("score")) / 2,
            rate_effect=null if undefined else
            (pl.col("score") - pl.col("score_previous")) * (pl.col("share_previous") + pl.col("share")) / 2,
        )
        .with_columns(total_effect=pl.col("mix_effect") + pl.col("rate_effect"))
        .sort(pl.col("total_effect").abs(), by, descending=[True, False])
        .select(by, "n_previous", "n", "share_previous", "share", "score_previous", "score",
                "mix_effect", "rate_effect", "total_effect")
    )
