"""The tables behind the panels, by name: what ``python -m crm report NAME`` prints.

Each report is a function (frames, filters) -> small Polars frame; the pages
chart the same frames, so the CLI and the screen agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from crm import cross_sell, customer_view
from crm.dataset import Frames
from crm.filters import Filters, bucket_end, month_periods
from crm.metrics import churn, compute_with_previous, definitions, funnel, monthly_trend, rfm, satisfaction, service
from crm.metrics.kpis import compute_many
from crm.metrics.periods import with_coverage
from crm.metrics.sales import summarise_revenue_over, summarise_sales_over
from crm.narrowing import narrow, narrowing_scope
from crm.segments import transitions


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
    """Days an order keeps a customer active (churn, active customers) on the activity churn basis."""
    customer: str | None = None
    """customer_timeline: the customer's id."""
    min_support: float = cross_sell.MIN_SUPPORT
    """cross_sell: the least share of baskets holding both products of a rule (0–1)."""
    min_confidence: float = cross_sell.MIN_CONFIDENCE
    """cross_sell: the least share of the antecedent's baskets holding the consequent too (0–1)."""
    rule: tuple[str, str] | None = None
    """cross_sell_targets: the rule's antecedent and consequent products (A, B)."""


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
    """One row per metric: key, label, unit, value, previous value, change (value − previous), and its
    formula (on the store's churn basis)."""
    current, previous = compute_with_previous(narrow(frames, filters), filters.period)
    rows = []
    for m in definitions(frames.churn_basis):
        value, before = current[m.key], previous[m.key]
        change = None if value is None or before is None else value - before
        rows.append({"key": m.key, "label": m.label, "unit": m.unit.value, "value": value,
                     "previous": before, "change": change, "formula": m.formula})
    return pl.DataFrame(rows, schema_overrides={"value": pl.Float64, "previous": pl.Float64, "change": pl.Float64})


def with_month_coverage(trend: pl.DataFrame, frames: Frames) -> pl.DataFrame:
    """A monthly trend (``month``, ``month_end``) with ``complete``, ``covered_days`` and ``calendar_days``
    against the store's last day (crm.metrics.periods.coverage)."""
    return with_coverage(trend, "month", frames.last_event_date(), start="month", end="month_end")


def kpi_trend(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Every metric per calendar month for the 12 months ending with the period's last day; ``complete``
    says whether a month is whole and the data reaches its last day."""
    return with_month_coverage(monthly_trend(narrow(frames, filters), filters.period, 12), frames)


def win_cycle_trend(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Win rate, deals won and lost and the median sales cycle per calendar month, 12 months ending
    with the period's last day (the sales part of ``kpi_trend``: the same numbers, less work)."""
    trend = monthly_trend(narrow(frames, filters), filters.period, 12, summaries=(summarise_sales_over,))
    return with_month_coverage(
        trend.select("month", "month_end", "win_rate", "sales_cycle_days", "revenue_won", "new_opportunities"), frames)


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
    ds = narrow(frames, filters)
    end = filters.period.end
    months = month_periods(end, 12)
    year_ago = month_periods(_shift_year(end, -1), 12)  # ends a year earlier: before the first of ``months``
    # both years in one pass (24 disjoint months), and only revenue: the other metrics are not shown
    values = compute_many(ds, [*year_ago, *months], (summarise_revenue_over,))
    first_deal = frames.opportunities["created_at"].min()
    before = [not isinstance(first_deal, datetime) or p.end < first_deal.date() for p in year_ago]  # no data yet
    this_year = with_month_coverage(pl.DataFrame(
        {"month": [p.start for p in months], "month_end": [p.end for p in months],
         "revenue_won": [v["revenue_won"] for v in values[12:]], "won_deals": [v["won_deals"] for v in values[12:]]},
        schema={"month": pl.Date, "month_end": pl.Date, "revenue_won": pl.Float64, "won_deals": pl.Float64}), frames)
    return this_year.with_columns(revenue_won_previous_year=pl.Series(
        [None if gap else v["revenue_won"] for gap, v in zip(before, values[:12], strict=True)], dtype=pl.Float64,
    )).select("month", "revenue_won", "won_deals", "revenue_won_previous_year", "complete", "covered_days",
              "calendar_days")


def satisfaction_by_month(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """NPS and CSAT per month over the last 12 months, with their response counts."""
    return with_month_coverage(monthly_trend(narrow(frames, filters), filters.period, 12), frames).select(
        "month", "nps", "nps_responses", "csat", "csat_responses", "complete", "covered_days", "calendar_days"
    )


def service_by_month(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets created, backlog at month end, first response p50 and SLA breach rate per month."""
    return with_month_coverage(monthly_trend(narrow(frames, filters), filters.period, 12), frames).select(
        "month", "tickets_created", "backlog", "first_response_p50_hours", "sla_breach_rate",
        "complete", "covered_days", "calendar_days",
    )


def _kind(options: ReportOptions) -> str:
    if options.kind not in ("nps", "csat"):
        raise ReportOptionError(f"unknown survey kind {options.kind!r}; use nps or csat")
    return options.kind


def score_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """NPS or CSAT (``options.kind``) per week or month of the period: n, the parts, score, 95% interval,
    low confidence (n < 30), and the comparison (previous period or year, moved onto this period's
    buckets) as ``compared_score`` / ``compared_n``."""
    ds = narrow(frames, filters)
    kind = _kind(options)
    trend = satisfaction.score_trend(ds, filters.period, kind, options.grain)
    other = satisfaction.comparison_trend(ds, filters.period, kind, options.grain, options.vs)
    compared = other.group_by("bucket").agg(
        compared_score=pl.col("score").first(), compared_n=pl.col("n").first()
    )
    joined = trend.join(compared, on="bucket", how="left").sort("bucket")
    return with_coverage(joined, options.grain, frames.last_event_date(), filters.period)


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
    ds = narrow(frames, filters)
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
    return satisfaction.responses_behind(narrow(frames, filters), filters.period, _kind(options), dict(options.within))


def what_moved_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The change of NPS or CSAT against the previous period split per ``options.level`` group into
    the part from its own score change (rate) and from its share of responses changing (mix)."""
    return satisfaction.decompose_change(narrow(frames, filters), filters.period, _kind(options), options.level)


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
    return service.service_times(narrow(frames, filters), filters.period, options.by, _basis(options))


def service_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Per week or month (``options.grain``): tickets created and resolved, backlog at its end,
    p50/p90 response and resolution (``options.basis`` hours), SLA breach rate, reopened."""
    trend = service.service_trend(narrow(frames, filters), filters.period, options.grain, _basis(options))
    return with_coverage(trend, options.grain, frames.last_event_date(), start="bucket", end="bucket_end")


def service_distribution_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets per band of first response and resolution time (``options.basis`` hours)."""
    return service.time_histogram(narrow(frames, filters), filters.period, _basis(options))


def sla_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """SLA per priority: its first-response target (hours), tickets created in the period, breached, breach rate."""
    return service.sla_by_priority(narrow(frames, filters), filters.period, _basis(options))


def sla_watchlist_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets unanswered at the period end in the last quarter of their target or breached within the
    last 7 days, oldest first."""
    return service.sla_watchlist(narrow(frames, filters), filters.period, _basis(options))


def sla_stale_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Tickets unanswered at the period end and past their target for more than 7 days, oldest first."""
    return service.sla_stale(narrow(frames, filters), filters.period, _basis(options))


def _window(options: ReportOptions) -> int:
    if not 1 <= options.window <= 3650:
        raise ReportOptionError(f"the activity window must be 1 to 3650 days, got {options.window}")
    return options.window


def churn_trend_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Per month of the period: active customers before and at its end, churned, churn rate, and
    new / returning / reactivated customers, on the store's churn basis (on the activity basis with
    ``options.window`` days of activity)."""
    trend = churn.churn_trend(narrow(frames, filters), filters.period, _window(options))
    return with_month_coverage(trend, frames)


def churn_summary_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Active customers (on the last day) and churn rate for the period and the previous one, on the
    store's churn basis (on the activity basis with ``options.window`` days of activity; the cockpit's
    tiles use 90)."""
    ds = narrow(frames, filters)
    current, previous = (
        churn.summarise_customers(ds, period, _window(options)).collect()
        for period in (filters.period, filters.period.previous())
    )
    return pl.concat([current, previous.rename(lambda c: f"{c}_previous")], how="horizontal")


def cohort_retention_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Cohorts by first-order month (12 months ending with the period) × months since: size, customers,
    revenue, customer and revenue retention; ``complete`` when the cell's month (cohort + months since)
    lies whole on or before the period end and the data's last day."""
    cells = churn.cohort_retention(narrow(frames, filters), filters.period)
    months = [_add_months(c, k) for c, k in zip(cells["cohort"], cells["months_since"], strict=True)]
    # a cell is month c + k; the orders stop at the period end, so a month past it is cut there
    ends = [min(bucket_end(m, "month"), filters.period.end) for m in months]
    located = cells.with_columns(cell_month=pl.Series(months, dtype=pl.Date), cell_end=pl.Series(ends, dtype=pl.Date))
    return with_coverage(located, "month", frames.last_event_date(), start="cell_month", end="cell_end").drop(
        "cell_month", "cell_end")


def _add_months(first_of_month: date, count: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def churn_by_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Churn rate per ``options.by`` (region, segment, industry, source) now and in the previous period,
    on the store's churn basis."""
    by = options.by or "region"
    if by not in churn.CHURN_DIMENSIONS:
        raise ReportOptionError(f"unknown breakdown {by!r}; one of {', '.join(churn.CHURN_DIMENSIONS)}")
    return churn.churn_by(narrow(frames, filters), filters.period, by, _window(options))


def rfm_segments_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """RFM as of the period end summarised per named segment (or ``--by tier``, with the suggested action):
    customers, revenue and its share, average recency (days), frequency and monetary."""
    by = options.by or "segment"
    if by not in ("segment", "tier"):
        raise ReportOptionError(f"rfm_segments is by segment or tier, not {by!r}")
    return rfm.segment_summary(rfm.rfm_scores(narrow(frames, filters), filters.period), by)


def funnel_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The funnel in the chosen mode (and breakdown): one row per step."""
    return funnel.compute_funnel(narrow(frames, filters), filters.period, options.mode, _funnel_by(options))


def velocity_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Median and p75 days in each open stage."""
    return funnel.compute_stage_velocity(narrow(frames, filters), filters.period)


def win_loss_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Win rate by owner (or ``--by``) with the previous period's."""
    return funnel.compute_win_loss(narrow(frames, filters), filters.period, _funnel_by(options) or "owner")


def lost_reasons_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Lost reasons ranked, with the previous period's counts."""
    return funnel.compute_lost_reasons(narrow(frames, filters), filters.period)


def forecast_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Open pipeline by expected close month, weighted by stage probability."""
    return funnel.compute_forecast(narrow(frames, filters), filters.period)


def ageing_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Open deals in their stage longer than ``--days`` days at the period end."""
    return funnel.compute_ageing(narrow(frames, filters), filters.period, options.days)


def deal_drill(filters: Filters, by: str | None = None) -> funnel.DealDrill:
    """The deals a selection in the filters points at (``step`` and breakdown values)."""
    steps = tuple(int(v) for v in filters.selected("step") if v.isdigit())
    keys = {k for k, _ in filters.selection if k in funnel.BREAKDOWNS}
    group = by if by in keys else (sorted(keys)[0] if keys else None)
    return funnel.DealDrill(steps=steps, by=group, values=filters.selected(group) if group else ())


def deals_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The deals behind the selection (``select=step:3``, ``select=owner:NAME``) with their stage history."""
    return funnel.deals_behind(narrow(frames, filters), filters.period, options.mode, deal_drill(filters, _funnel_by(options)))


def first_deals(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS,
                rows: int = 5_000) -> funnel.DealList:
    """The deals report's first ``rows`` deals, with how many it holds and their amount (a page's grid and
    heading), without building the rest (funnel.first_deals)."""
    return funnel.first_deals(narrow(frames, filters), filters.period, options.mode,
                              deal_drill(filters, _funnel_by(options)), rows)


def rfm_transitions_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """Customers per (segment at the previous period end, segment at this period end), "Not scored"
    for no order in the 365 days before; with the share of the from-segment."""
    return transitions(frames, filters)


def customer_timeline_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """One row per event of ``options.customer`` up to the period end, within the scope (crm.customer_view):
    at, kind, summary, amount, hours, target_hours, ref. Dimension filters do not apply to one customer's
    history and are refused; an id not in the view raises crm.customer_view.CustomerNotFound."""
    narrowing_scope(filters)  # no scope, no read: refused before the options are looked at
    if not options.customer or not options.customer.strip():
        raise ReportOptionError("customer_timeline needs --customer ID")
    if customer_view.has_view_filters(filters):
        raise ReportOptionError("customer_timeline shows one customer's whole history within your scope: drop the "
                                "--region/--segment/--product/--team/--owner/--customers/--select filters "
                                "(--to sets the day it is as of)")
    return customer_view.timeline_for(frames, filters, options.customer.strip())


CROSS_SELL_COLUMNS: tuple[str, ...] = ("antecedent", "consequent", "support", "confidence", "lift", "customers_missing")
"""The columns of the cross_sell report (a contract: scripts read them)."""


def cross_sell_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """One row per rule A → B over the baskets (orders with their products) of the period, within the
    filters and scope (crm.cross_sell.association_rules): antecedent, consequent, support, confidence, lift,
    customers_missing (bought the antecedent by the period end, never the consequent); rules with support
    >= ``options.min_support`` and confidence >= ``options.min_confidence``, strongest lift first."""
    for name, value in (("min-support", options.min_support), ("min-confidence", options.min_confidence)):
        if not 0 <= value <= 1:
            raise ReportOptionError(f"--{name} is a share from 0 to 1 (0.05 = 5%), got {value:g}")
    rules = cross_sell.association_rules(narrow(frames, filters), frames, filters.period, options.min_support,
                                         options.min_confidence)
    return rules.select(CROSS_SELL_COLUMNS)


def cross_sell_targets_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """For the rule ``options.rule`` A → B: the customers within the filters and scope who bought A by the period
    end and never B, most valuable first (crm.cross_sell.rule_targets): the Next product page's target list.
    A product no order names is refused with the products there are."""
    ds = narrow(frames, filters)
    if options.rule is None:
        raise ReportOptionError("cross_sell_targets needs --rule 'A -> B' (a rule of the cross_sell report)")
    antecedent, consequent = options.rule
    if antecedent == consequent:
        raise ReportOptionError(f"--rule names {antecedent!r} on both sides: a rule joins two products")
    known = set(cross_sell.products_ordered(frames))
    unknown = [product for product in options.rule if product not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise ReportOptionError(f"no order holds {', '.join(map(repr, unknown))}; the products: {listed}")
    return cross_sell.rule_targets(ds, frames, filters.period, antecedent, consequent)


def churn_risk_report(frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The customers active on the period's last day within the filters and scope, ranked by revenue at risk
    (crm.churn_risk.risk_table): the store's churn model as of that day (fitted on every customer, once per
    data version and day) applied to facts computed on the narrowed rows. Without a model (too little history,
    no orders: ``churn-model evaluate`` says why) nobody is scored: no rows."""
    from crm import churn_risk  # scikit-learn is imported only when a churn report is asked for

    narrowing_scope(filters)  # refuse filters without a scope before fitting anything
    return churn_risk.risk_table(frames, filters, churn_risk.churn_models(frames, filters.period.end))


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
        Report("sla_watchlist", "unanswered tickets at risk at the period end: in the last quarter of their SLA "
               "target or breached within 7 days, oldest first", sla_watchlist_report),
        Report("sla_stale", "unanswered tickets past their SLA target for more than 7 days at the period end "
               "(waited_days), oldest first", sla_stale_report),
        Report("customer_timeline", "one customer's orders, deals, stage changes, tickets, responses, surveys and "
               "interactions up to --to, in time order (--customer ID)", customer_timeline_report),
        Report("cross_sell", "rules A -> B between products over the period's baskets: support, confidence, lift, "
               "customers who bought A and never B (--min-support, --min-confidence)", cross_sell_report),
        Report("cross_sell_targets", "for a rule A -> B, the customers who bought A by --to and never B, most valuable "
               "first: the target list to offer B (--rule 'A -> B')", cross_sell_targets_report),
        Report("churn_risk", "customers active on --to ranked by revenue at risk (churn risk x last 365 days' revenue) "
               "with the rule behind each", churn_risk_report),
    )
}


def build_report(name: str, frames: Frames, filters: Filters, options: ReportOptions = DEFAULT_OPTIONS) -> pl.DataFrame:
    """The table of report ``name``; KeyError lists the known names."""
    try:
        report = REPORTS[name]
    except KeyError:
        raise KeyError(f"unknown report {name!r}; known: {', '.join(REPORTS)}") from None
    return report.build(frames, filters, options)
