"""The tables behind the panels, by name: what ``python -m crm report NAME`` prints.

Each report is a function (frames, filters) -> small Polars frame; the pages
chart the same frames, so the CLI and the screen agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from crm.dataset import Frames
from crm.filters import Filters, Period
from crm.metrics import METRICS, churn, compute_with_previous, funnel, monthly_trend, rfm, satisfaction, service
from crm.metrics.sales import summarise_sales_over


@dataclass(frozen=True)
class ReportOptions:
    """View settings some reports take: funnel mode, breakdown, ageing threshold."""

    mode: funnel.FunnelMode = "cohort"
    by: str | None = None
    days: int = funnel.DEFAULT_AGEING_DAYS
    grain: str = "month"
    """Trend buckets: ``month`` or ``week`` (Monday)."""
    vs: str = "previous"
    """What a trend is compared with: the ``previous`` period or the previous ``year``."""
    kind: str = "csat"
    """Which survey a satisfaction report is about: ``nps`` or ``csat``."""
    level: str = "product"
    """Satisfaction drill level: product, team or agent."""
    within: tuple[tuple[str, str], ...] = ()
    """The drill path above ``level``, e.g. (("product", "Data Connect"),)."""
    basis: str = "calendar"
    """Service times in ``calendar`` hours or ``business`` hours (the store's business calendar)."""
    window: int = churn.ACTIVE_WINDOW_DAYS
    """Days an order keeps a customer active (churn, active customers)."""
    history_rows: int | None = None
    """deals: write the stage history of the first N deals only (a page's grid); None: of all."""


DEFAULT_OPTIONS = ReportOptions()


class ReportOptionError(ValueError):
    """A view option a report cannot use (an unknown breakdown, basis, level or kind)."""


def _funnel_by(options: ReportOptions) -> str | None:
    if options.by is not None and options.by not in funnel.BREAKDOWNS:
        raise ReportOptionError(f"unknown breakdown {options.by!r}; one of {', '.join(funnel.BREAKDOWNS)}")
    return options.by


@dataclass(frozen=True)
class Report:
    """A named table: what it shows and how it is computed."""

    name: str
    description: str
    build: Callable[[Frames, Filters, ReportOptions], pl.DataFrame]


def kpi_table(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """One row per metric: key, label, unit, value, previous value, change (value − previous)."""
    current, previous = compute_with_previous(frames.narrow(filters), filters.period)
    rows = []
    for m in METRICS:
        value, before = current[m.key], previous[m.key]
        change = None if value is None or before is None else value - before
        rows.append({"key": m.key, "label": m.label, "unit": m.unit.value, "value": value,
                     "previous": before, "change": change, "formula": m.formula})
    return pl.DataFrame(rows, schema_overrides={"value": pl.Float64, "previous": pl.Float64, "change": pl.Float64})


def kpi_trend(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Every metric per calendar month for the 12 months ending with the period's last day."""
    return monthly_trend(frames.narrow(filters), filters.period, 12)


def win_cycle_trend(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Win rate, deals won and lost and the median sales cycle per calendar month, 12 months ending
    with the period's last day (the sales part of ``kpi_trend``: the same numbers, less work)."""
    trend = monthly_trend(frames.narrow(filters), filters.period, 12, summaries=(summarise_sales_over,))
    return trend.select("month", "month_end", "win_rate", "sales_cycle_days", "revenue_won", "new_opportunities")


def _shift_year(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def revenue_by_month(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Revenue won per month over the last 12 months, with the same month a year earlier.

    A month a year earlier that ended before the store's first deal has no value
    (null, a gap in the chart): no data is not the same as nothing won.
    """
    ds = frames.narrow(filters)
    this_year = monthly_trend(ds, filters.period, 12).select("month", "revenue_won", "won_deals")
    end = filters.period.end
    first_deal = frames.opportunities["created_at"].min()
    before_data = (pl.col("month_end") < first_deal.date()) if isinstance(first_deal, datetime) else pl.lit(True)
    year_ago = monthly_trend(ds, Period(_shift_year(end, -1), _shift_year(end, -1)), 12).select(
        pl.when(~before_data).then(pl.col("revenue_won")).alias("revenue_won_previous_year")
    )
    return pl.concat([this_year, year_ago], how="horizontal")


def satisfaction_by_month(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """NPS and CSAT per month over the last 12 months, with their response counts."""
    return monthly_trend(frames.narrow(filters), filters.period, 12).select(
        "month", "nps", "nps_responses", "csat", "csat_responses"
    )


def service_by_month(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets created, backlog at month end, first response p50 and SLA breach rate per month."""
    return monthly_trend(frames.narrow(filters), filters.period, 12).select(
        "month", "tickets_created", "backlog", "first_response_p50_hours", "sla_breach_rate"
    )


def _kind(options: ReportOptions) -> str:
    if options.kind not in ("nps", "csat"):
        raise ReportOptionError(f"unknown survey kind {options.kind!r}; use nps or csat")
    return options.kind


def score_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """NPS or CSAT (``options.kind``) per week or month of the period: n, the parts, score, 95% interval,
    low confidence (n < 30), and the comparison (previous period or year, moved onto this period's
    buckets) as ``compared_score`` / ``compared_n``."""
    ds = frames.narrow(filters)
    kind = _kind(options)
    trend = satisfaction.score_trend(ds, filters.period, kind, options.grain)
    other = satisfaction.comparison_trend(ds, filters.period, kind, options.grain, options.vs)
    compared = other.group_by("bucket").agg(
        compared_score=pl.col("score").first(), compared_n=pl.col("n").first()
    )
    return trend.join(compared, on="bucket", how="left").sort("bucket")


def nps_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """``score_trend_report`` for NPS (score −100…100; promoters, passives, detractors)."""
    return score_trend_report(frames, filters, ReportOptions(grain=options.grain, vs=options.vs, kind="nps"))


def csat_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """``score_trend_report`` for CSAT (score 0…1; satisfied = 4 or 5)."""
    return score_trend_report(frames, filters, ReportOptions(grain=options.grain, vs=options.vs, kind="csat"))


def satisfaction_drill_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """CSAT and NPS side by side for each value of ``options.level`` inside the drill path
    ``options.within``: score, 95% interval and n for each; worst first by ``options.kind``
    (groups without responses of that kind last)."""
    if options.level not in satisfaction.DRILL_LEVELS:
        raise ReportOptionError(f"unknown drill level {options.level!r}; one of {', '.join(satisfaction.DRILL_LEVELS)}")
    ds = frames.narrow(filters)
    level, within = options.level, dict(options.within)
    parts = []
    for kind in ("csat", "nps"):
        table = satisfaction.score_by(ds, filters.period, kind, level, within)
        parts.append(table.select(level, pl.col("score").alias(kind), pl.col("low").alias(f"{kind}_low"),
                                  pl.col("high").alias(f"{kind}_high"), pl.col("n").alias(f"{kind}_n")))
    both = parts[0].join(parts[1], on=level, how="full", coalesce=True).with_columns(
        pl.col("csat_n").fill_null(0), pl.col("nps_n").fill_null(0)
    )
    kind = _kind(options)
    return both.with_columns(
        low_confidence=pl.col(f"{kind}_n") < satisfaction.LOW_CONFIDENCE_N
    ).sort([kind, level], nulls_last=True)


def responses_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The survey responses (``options.kind``) behind a drill cell (``options.within``), with comments."""
    return satisfaction.responses_behind(frames.narrow(filters), filters.period, _kind(options), dict(options.within))


def what_moved_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The change of NPS or CSAT against the previous period split per ``options.level`` group into
    the part from its own score change (rate) and from its share of responses changing (mix)."""
    return satisfaction.decompose_change(frames.narrow(filters), filters.period, _kind(options), options.level)


def _basis(options: ReportOptions) -> service.Basis:
    if options.basis == "business":
        return "business"
    if options.basis == "calendar":
        return "calendar"
    raise ReportOptionError(f"unknown basis {options.basis!r}; use calendar or business")


def service_times_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets created in the period per ``options.by`` (team, agent, priority, channel; none: one row):
    p50/p90 first response and resolution in ``options.basis`` hours, SLA breach rate, reopened; slowest first."""
    if options.by is not None and options.by not in service.SERVICE_BREAKDOWNS:
        raise ReportOptionError(f"unknown breakdown {options.by!r}; one of {', '.join(service.SERVICE_BREAKDOWNS)}")
    return service.service_times(frames.narrow(filters), filters.period, options.by, _basis(options))


def service_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Per week or month (``options.grain``): tickets created and resolved, backlog at its end,
    p50/p90 response and resolution (``options.basis`` hours), SLA breach rate, reopened."""
    return service.service_trend(frames.narrow(filters), filters.period, options.grain, _basis(options))


def service_distribution_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets per band of first response and resolution time (``options.basis`` hours)."""
    return service.time_histogram(frames.narrow(filters), filters.period, _basis(options))


def sla_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """SLA per priority: its first-response target (hours), tickets created in the period, breached, breach rate."""
    return service.sla_by_priority(frames.narrow(filters), filters.period, _basis(options))


def sla_watchlist_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets unanswered at the period end that are past their target or in its last quarter, oldest first."""
    return service.sla_watchlist(frames.narrow(filters), filters.period, _basis(options))


def _window(options: ReportOptions) -> int:
    if not 1 <= options.window <= 3650:
        raise ReportOptionError(f"the activity window must be 1 to 3650 days, got {options.window}")
    return options.window


def churn_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Per month of the period: active customers before and at its end, churned, churn rate, and
    new / returning / reactivated customers (``options.window`` days of activity)."""
    return churn.churn_trend(frames.narrow(filters), filters.period, _window(options))


def churn_summary_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Active customers (on the last day) and churn rate for the period and the previous one, with
    ``options.window`` days of activity (the cockpit's tiles use 90)."""
    ds = frames.narrow(filters)
    current, previous = (
        churn.summarise_customers(ds, period, _window(options)).collect()
        for period in (filters.period, filters.period.previous())
    )
    return pl.concat([current, previous.rename(lambda c: f"{c}_previous")], how="horizontal")


def cohort_retention_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Cohorts by first-order month (12 months ending with the period) × months since: size, customers,
    revenue, customer and revenue retention."""
    return churn.cohort_retention(frames.narrow(filters), filters.period)


def churn_by_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Churn rate per ``options.by`` (region, segment, industry, source) now and in the previous period."""
    by = options.by or "region"
    if by not in churn.CHURN_DIMENSIONS:
        raise ReportOptionError(f"unknown breakdown {by!r}; one of {', '.join(churn.CHURN_DIMENSIONS)}")
    return churn.churn_by(frames.narrow(filters), filters.period, by, _window(options))


def rfm_segments_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """RFM as of the period end summarised per named segment (or ``--by tier``, with the suggested action):
    customers, revenue and its share, average recency (days), frequency and monetary."""
    by = options.by or "segment"
    if by not in ("segment", "tier"):
        raise ReportOptionError(f"rfm_segments is by segment or tier, not {by!r}")
    return rfm.segment_summary(rfm.rfm_scores(frames.narrow(filters), filters.period), by)


def funnel_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The funnel in the chosen mode (and breakdown): one row per step."""
    return funnel.compute_funnel(frames.narrow(filters), filters.period, options.mode, _funnel_by(options))


def velocity_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Median and p75 days in each open stage."""
    return funnel.compute_stage_velocity(frames.narrow(filters), filters.period)


def win_loss_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Win rate by owner (or ``--by``) with the previous period's."""
    return funnel.compute_win_loss(frames.narrow(filters), filters.period, _funnel_by(options) or "owner")


def lost_reasons_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Lost reasons ranked, with the previous period's counts."""
    return funnel.compute_lost_reasons(frames.narrow(filters), filters.period)


def forecast_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Open pipeline by expected close month, weighted by stage probability."""
    return funnel.compute_forecast(frames.narrow(filters), filters.period)


def ageing_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Open deals in their stage longer than ``--days`` days at the period end."""
    return funnel.compute_ageing(frames.narrow(filters), filters.period, options.days)


def deal_drill(filters: Filters, by: str | None = None) -> funnel.DealDrill:
    """The deals a selection in the filters points at (``step`` and breakdown values)."""
    steps = tuple(int(v) for v in filters.selected("step") if v.isdigit())
    keys = {k for k, _ in filters.selection if k in funnel.BREAKDOWNS}
    group = by if by in keys else (sorted(keys)[0] if keys else None)
    return funnel.DealDrill(steps=steps, by=group, values=filters.selected(group) if group else ())


def deals_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The deals behind the selection (``select=step:3``, ``select=owner:NAME``) with their stage history."""
    return funnel.deals_behind(frames.narrow(filters), filters.period, options.mode, deal_drill(filters, _funnel_by(options)),
                               history_rows=options.history_rows)


def rfm_transitions_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Customers per (segment at the previous period end, segment at this period end), "Not scored"
    for no order in the 365 days before; with the share of the from-segment."""
    from crm.segments import transitions  # crm.segments reads crm.reports' inputs, not the other way round

    return transitions(frames, filters)


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("kpis", "every metric with its previous-period value and change", kpi_table),
        Report("kpi_trend", "every metric per month, 12 months ending with the period", kpi_trend),
        Report("win_cycle_trend", "win rate and median sales cycle per month, 12 months ending with the period",
               win_cycle_trend),
        Report("revenue_by_month", "revenue won per month with the year before", revenue_by_month),
        Report("satisfaction_by_month", "NPS and CSAT per month with response counts", satisfaction_by_month),
        Report("service_by_month", "tickets, backlog, first response and SLA breaches per month", service_by_month),
        Report("funnel", "funnel steps: reached, amount, step and cumulative conversion (--mode, --by)",
               funnel_report),
        Report("stage_velocity", "median and p75 days in each stage", velocity_report),
        Report("win_loss", "win rate by owner or --by, with the previous period", win_loss_report),
        Report("lost_reasons", "lost reasons ranked, with the previous period", lost_reasons_report),
        Report("forecast", "weighted open pipeline by expected close month", forecast_report),
        Report("ageing", "open deals stuck in their stage longer than --days", ageing_report),
        Report("deals", "the deals behind a selection (--select step:N, --select owner:NAME)", deals_report),
        Report("nps_trend", "NPS per --grain with n, 95% interval and the --vs comparison", nps_trend_report),
        Report("csat_trend", "CSAT per --grain with n, 95% interval and the --vs comparison", csat_trend_report),
        Report("satisfaction_drill", "CSAT and NPS by --level inside --within, worst first by --kind",
               satisfaction_drill_report),
        Report("responses", "the --kind responses behind a drill cell (--within), with comments", responses_report),
        Report("what_moved", "the --kind change against the previous period, mix and rate per --level",
               what_moved_report),
        Report("service_times", "p50/p90 first response and resolution by --by team|agent|priority|channel (--basis)",
               service_times_report),
        Report("service_trend", "created, resolved, backlog, percentiles and SLA per --grain (--basis)",
               service_trend_report),
        Report("service_distribution", "tickets per band of response and resolution time (--basis)",
               service_distribution_report),
        Report("sla", "SLA per priority: target hours, tickets, breached, breach rate (--basis)", sla_report),
        Report("churn_trend", "churn rate and new / returning / reactivated / churned customers per month (--window)",
               churn_trend_report),
        Report("rfm_segments", "customers, revenue share and average R/F/M per RFM segment (--by tier: per tier, with actions)",
               rfm_segments_report),
        Report("rfm_transitions", "customers moving between RFM segments from the previous period end to this one",
               rfm_transitions_report),
        Report("churn_summary", "active customers and churn rate now and in the previous period (--window)",
               churn_summary_report),
        Report("cohort_retention", "customer and revenue retention by first-order month and months since",
               cohort_retention_report),
        Report("churn_by", "churn rate by --by region|segment|industry|source against the previous period (--window)",
               churn_by_report),
        Report("sla_watchlist", "unanswered tickets past or near their SLA target at the period end, oldest first",
               sla_watchlist_report),
    )
}


def build_report(name: str, frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The table of report ``name``; KeyError lists the known names."""
    try:
        report = REPORTS[name]
    except KeyError:
        raise KeyError(f"unknown report {name!r}; known: {', '.join(REPORTS)}") from None
    return report.build(frames, filters, options)
