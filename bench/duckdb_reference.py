"""The cockpit KPIs and the Funnel, Satisfaction and Service pages' tables as DuckDB SQL: a reference for
speed and for correctness beside bench/pandas_reference.py, pandas_funnel_reference.py and
pandas_service_reference.py.

Each public function computes what the pandas reference function of the same name computes, following
DESIGN.md "Metric definitions" (the section named in each query's comments), and returns the
same shape: a dict per period (KPIs) or a table with the reference's columns in its order (Polars), so
bench_cockpit.py and bench_pages.py compare DuckDB's values with crm's by the same code. It shares no
metric code with crm or with the pandas references: only the Filters and Period objects (plain data),
the SLA defaults, the active-customer window and the lists of keys.

DuckDB is fed in two ways, the same SQL on both (``connect``):

- ``"arrow"``: the prepared Polars frames' Arrow buffers registered as views, zero copy (strings as
  string views), i.e. DuckDB over the very data crm holds;
- ``"native"``: ``CREATE TABLE ... AS`` from those views: DuckDB's own storage (the load takes time,
  which the benchmarks report apart).

``prepare`` does once per data version what pandas_reference.prepare and crm.dataset.enrich do: the
customer's region / segment / owner copied onto the fact tables, the stage's position / kind / win
probability / funnel step onto the stage history, each ticket's SLA target. Everything else happens in
SQL on each call. Money is summed in whole cents, each value rounded half to even (``cents_sum``);
percentiles are ``quantile_cont`` (linear interpolation, numpy's default).

Not computed, as in the pandas references: the five business-hours KPIs and the business-hours panels,
the Satisfaction page's agent drill, responses list and "what moved", the Service page's distribution
and watchlist. Survey scores off their scale are left out (DESIGN.md "Survey scores"); other data-quality
exclusions crm applies (crm.quality.usable) are not repeated here, as in the pandas references.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import pandas_reference as ref
import polars as pl

from crm.filters import Filters, Period, month_periods

MODES = ("arrow", "native")
LOW_CONFIDENCE_N = 30
DEALS_HISTORY_ROWS = 5_000
"""The deals grid writes the stage history of its first rows only (pages/funnel.py GRID_ROWS), as crm does."""

MACROS = (
    # DESIGN "Moments and money": money summed in whole cents, each value rounded half to even
    "CREATE MACRO cents(x) AS round_even(x * 100, 0)::BIGINT",
    "CREATE MACRO cents_sum(x) AS coalesce(sum(cents(x)), 0) / 100",
    "CREATE MACRO hours_between(later, earlier) AS (epoch_us(later) - epoch_us(earlier)) / 3600e6",
    "CREATE MACRO days_between(later, earlier) AS (epoch_us(later) - epoch_us(earlier)) / 86400e6",
    # DESIGN "First response time", as seen at a moment: the response recorded before it, else the
    # resolution before it (a response stamped later does not exist yet); NULL: not answered by then
    """CREATE MACRO response_hours_at(created_at, first_response_at, resolved_at, moment) AS
       CASE WHEN first_response_at < moment THEN hours_between(first_response_at, created_at)
            WHEN resolved_at < moment THEN hours_between(resolved_at, created_at) END""",
    # DESIGN "SLA breach": first response later than the target, or none by the moment while more than
    # the target has passed since creation (exactly at the target is no breach)
    """CREATE MACRO breached_at(created_at, first_response_at, resolved_at, target_hours, moment) AS
       coalesce(response_hours_at(created_at, first_response_at, resolved_at, moment) > target_hours,
                hours_between(moment, created_at) > target_hours)""",
    # DESIGN "Survey scores": a score off its kind's scale (NPS 0–10, CSAT 1–5, whole numbers) is no response
    """CREATE MACRO on_scale(kind, score) AS score = round(score, 0) AND
       CASE kind WHEN 'nps' THEN score BETWEEN 0 AND 10 WHEN 'csat' THEN score BETWEEN 1 AND 5 ELSE true END""",
    # DESIGN "NPS": 100 × (promoters − detractors) / n; 95% interval ±1.96 × 100 × sqrt(var(x) / n), x = +1/0/−1
    "CREATE MACRO nps_score(promoters, detractors, n) AS 100 * ((promoters - detractors) / n)",
    """CREATE MACRO nps_half_width(promoters, detractors, n) AS
       1.96::DOUBLE * 100 * sqrt(greatest((promoters + detractors) / n - pow((promoters - detractors) / n, 2), 0) / n)""",
    # DESIGN "CSAT": the 95% Wilson score interval of satisfied / n
    """CREATE MACRO wilson_centre(satisfied, n) AS
       (satisfied / n + pow(1.96::DOUBLE, 2) / (2 * n)) / (1 + pow(1.96::DOUBLE, 2) / n)""",
    """CREATE MACRO wilson_half_width(satisfied, n) AS
       1.96::DOUBLE * sqrt(satisfied / n * (1 - satisfied / n) / n + pow(1.96::DOUBLE, 2) / (4 * n * n))
       / (1 + pow(1.96::DOUBLE, 2) / n)""",
)


# --- data --------------------------------------------------------------------------------------------


def prepare(raw: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """From the canonical Polars frames (as read from the store) to the tables the SQL reads: facts with
    the customer's attributes, the stage history with its stages' (Polars joins, once per data version)."""
    customers = raw["customers"].select("customer_id", "region", "segment", "owner")

    def with_customer(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
        return frame.join(customers.select("customer_id", *columns), on="customer_id", how="left")

    is_open = pl.col("kind") == "open"
    stages = (
        raw["pipeline_stages"]
        .select("stage", "position", "win_probability", "kind")
        .sort("position")
        .with_columns(open_step=pl.when(is_open).then(is_open.cast(pl.Int64).cum_sum()))
    )
    # row_nr keeps the store's order as the last tie-breaker, as the pandas references' stable sorts do
    history = raw["opportunity_stages"].select("opportunity_id", "stage", "entered_at").with_row_index("row_nr")
    # DESIGN "SLA breach rate": the target of the ticket's priority; an empty (or unknown) one uses normal's
    target = pl.col("priority").replace_strict(
        ref.SLA_TARGET_HOURS, default=ref.SLA_TARGET_HOURS["normal"], return_dtype=pl.Float64
    )
    return {
        "opportunities": with_customer(raw["opportunities"], "segment"),
        "stage_history": history.join(stages, on="stage", how="left"),
        "pipeline_stages": stages,
        "tickets": with_customer(raw["tickets"], "region", "segment").with_columns(target_hours=target),
        "survey_responses": with_customer(raw["survey_responses"], "region", "segment"),
        "orders": with_customer(raw["orders"].select("order_id", "customer_id", "ordered_at"), "region", "segment", "owner"),
        "order_items": raw["order_items"].select("order_id", "product"),
    }


@dataclass(frozen=True)
class Engine:
    """A DuckDB connection holding the prepared tables as Arrow views (``mode="arrow"``) or tables (``"native"``)."""

    con: duckdb.DuckDBPyConnection
    mode: str


def connect(tables: Mapping[str, pl.DataFrame], mode: str) -> Engine:
    """A new in-memory DuckDB with ``tables`` (from ``prepare``) fed as ``mode`` says, and the macros above."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    con = duckdb.connect()
    for name, frame in tables.items():
        arrow = frame.to_arrow(compat_level=pl.CompatLevel.newest())  # string views: the strings are not copied
        if mode == "arrow":
            con.register(name, arrow)
        else:
            con.register("arrow_source", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow_source")
            con.unregister("arrow_source")
    con.execute("CREATE TABLE sla_targets (priority VARCHAR, target_hours DOUBLE, rank INTEGER)")
    con.executemany(
        "INSERT INTO sla_targets VALUES (?, ?, ?)", [(p, hours, i) for i, (p, hours) in enumerate(ref.SLA_TARGET_HOURS.items())]
    )
    for macro in MACROS:
        con.execute(macro)
    return Engine(con, mode)


# --- narrowing and periods ---------------------------------------------------------------------------

DEAL_DIMENSIONS = {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "owner"}
SERVICE_DIMENSIONS = {"region": "region", "segment": "segment", "product": "product", "team": "team", "owner": "agent"}
ORDER_DIMENSIONS = {"region": "region", "segment": "segment", "owner": "owner"}
NARROWED: dict[str, tuple[str, dict[str, str]]] = {
    "deals": ("opportunities", DEAL_DIMENSIONS),
    "support_tickets": ("tickets", SERVICE_DIMENSIONS),
    "responses": ("survey_responses", SERVICE_DIMENSIONS),
    "customer_orders": ("orders", ORDER_DIMENSIONS),
}
"""CTE name -> (table, filter dimension -> its column): the deals by their own region / product / team /
owner and the customer's segment; tickets and responses by the customer's region and segment and their
own product / team / agent; orders by the customer's region / segment / owner and the products ordered."""


def _conditions(filters: Filters, name: str) -> tuple[list[str], dict[str, Any]]:
    """The WHERE conditions of narrowed CTE ``name`` and their parameters (the column names come from
    NARROWED, the values are bound, never pasted into the SQL)."""
    conditions, params = [], {}
    for dim, column in NARROWED[name][1].items():
        values = filters.dimension_values()[dim]
        if values:
            params[f"{name}_{dim}"] = list(values)
            conditions.append(f"list_contains(${name}_{dim}, {column})")
    if filters.customers:
        params[f"{name}_customers"] = list(filters.customers)
        conditions.append(f"list_contains(${name}_customers, customer_id)")
    if name == "customer_orders" and filters.products:
        params["order_products"] = list(filters.products)
        conditions.append("order_id IN (SELECT order_id FROM order_items WHERE list_contains($order_products, product))")
    if name == "responses":
        conditions.append("on_scale(kind, score)")
    return conditions, params


def narrowed(filters: Filters, *names: str) -> tuple[str, dict[str, Any]]:
    """The CTEs ``names`` (keys of NARROWED): the rows one filter sees, and their bound parameters."""
    ctes, params = [], {}
    for name in names:
        conditions, bound = _conditions(filters, name)
        ctes.append(f"{name} AS (SELECT * FROM {NARROWED[name][0]} WHERE {' AND '.join(conditions) or 'TRUE'})")
        params.update(bound)
    return ",\n".join(ctes), params


BOUNDS = """bounds AS (  -- the periods: p = 0, 1, ...; first and last day; start and end (midnight after the last day)
    SELECT p, first_day, last_day, first_day::TIMESTAMP AS start_at, (last_day + 1)::TIMESTAMP AS end_at
    FROM (SELECT unnest(range(len($firsts))) AS p, unnest($firsts::DATE[]) AS first_day,
                 unnest($lasts::DATE[]) AS last_day)
)"""


def bounds(periods: Sequence[Period]) -> dict[str, Any]:
    """The parameters of BOUNDS for ``periods``."""
    return {"firsts": [p.start for p in periods], "lasts": [p.end for p in periods]}


def moments(period: Period) -> dict[str, Any]:
    """``$start_at`` / ``$end_at`` of one period (DESIGN "As of the end of the period": its end is the
    midnight after ``to``; an event stamped then belongs to the next period)."""
    return {
        "start_at": datetime.combine(period.start, time()),
        "end_at": datetime.combine(period.end + timedelta(days=1), time()),
    }


def _run(engine: Engine, sql: str, params: Mapping[str, Any]) -> pl.DataFrame:
    return engine.con.sql(sql, params=dict(params)).pl()


def _records(engine: Engine, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    cursor = engine.con.execute(sql, dict(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- cockpit KPIs ------------------------------------------------------------------------------------

SALES = """closed AS (  -- DESIGN "Win rate", "Sales cycle": deals closed in the period (status won / lost, at closed_at)
    SELECT b.p, d.status, d.amount, days_between(d.closed_at, d.created_at) AS cycle_days
    FROM bounds b JOIN deals d ON d.closed_at >= b.start_at AND d.closed_at < b.end_at
    WHERE d.status IN ('won', 'lost')
),
sales AS (  -- revenue_won = amount of deals won in the period; sales cycle = median days created -> won
    SELECT p,
           cents_sum(CASE WHEN status = 'won' THEN amount END) AS revenue_won,
           count(*) FILTER (WHERE status = 'won') AS won_deals,
           count(*) FILTER (WHERE status = 'lost') AS lost_deals,
           quantile_cont(cycle_days, 0.5) FILTER (WHERE status = 'won') AS sales_cycle_days
    FROM closed GROUP BY p
),
created AS (  -- new_opportunities = deals created in the period
    SELECT b.p, count(*) AS new_opportunities
    FROM bounds b JOIN deals d ON d.created_at >= b.start_at AND d.created_at < b.end_at
    GROUP BY b.p
)"""

PIPELINE = """deal_life AS (  -- a deal is open from created_at until closed_at (won / lost), or for good (open)
    SELECT opportunity_id, amount, created_at,
           CASE status WHEN 'open' THEN 'infinity'::TIMESTAMP WHEN 'won' THEN closed_at WHEN 'lost' THEN closed_at
           END AS open_until
    FROM deals
),
open_deals AS (  -- pipeline_value: deals open at the period end (created before it; open, or closed at or after it)
    SELECT b.p, b.end_at, l.opportunity_id, l.amount
    FROM bounds b JOIN deal_life l ON l.created_at < b.end_at AND l.open_until >= b.end_at
),
first_stage AS (  -- DESIGN "Funnel": a deal with no history row is at the first open stage
    SELECT coalesce(min_by(win_probability, position), 0) AS win_probability FROM pipeline_stages WHERE kind = 'open'
),
stage_at_end AS (  -- DESIGN "Stage at a moment": each open deal's latest open-stage row entered before the period
                   -- end (rows entered at the same moment: by position, the higher one last)
    SELECT o.p, o.amount, arg_max(h.win_probability, (h.entered_at, h.position)) AS win_probability
    FROM open_deals o
    LEFT JOIN stage_history h
           ON h.opportunity_id = o.opportunity_id AND h.kind = 'open' AND h.entered_at < o.end_at
    GROUP BY o.p, o.opportunity_id, o.amount
),
pipeline AS (  -- DESIGN "Weighted pipeline": Σ amount × win probability of the stage each open deal is in
               -- at the period end, each product rounded to the cent
    SELECT s.p,
           cents_sum(s.amount) AS pipeline_value,
           cents_sum(s.amount * coalesce(s.win_probability, f.win_probability)) AS weighted_pipeline,
           count(*) AS open_deals
    FROM stage_at_end s CROSS JOIN first_stage f
    GROUP BY s.p
)"""

SATISFACTION = """answered AS (  -- DESIGN "NPS", "CSAT": responses in the period (off-scale scores are none)
    SELECT b.p, r.kind, r.score
    FROM bounds b JOIN responses r ON r.responded_at >= b.start_at AND r.responded_at < b.end_at
),
satisfaction AS (
    SELECT p,
           count(*) FILTER (WHERE kind = 'nps') AS nps_responses,
           count(*) FILTER (WHERE kind = 'nps' AND score >= 9) AS promoters,
           count(*) FILTER (WHERE kind = 'nps' AND score <= 6) AS detractors,
           count(*) FILTER (WHERE kind = 'csat') AS csat_responses,
           count(*) FILTER (WHERE kind = 'csat' AND score >= 4) AS satisfied
    FROM answered GROUP BY p
)"""

CREATED_TICKETS = """created_tickets AS (  -- DESIGN "First response time", "resolution time", "SLA breach rate":
                      -- tickets created in the period, as seen at its end
    SELECT b.p, t.*,
           response_hours_at(t.created_at, t.first_response_at, t.resolved_at, b.end_at) AS response_hours,
           CASE WHEN t.resolved_at < b.end_at THEN hours_between(t.resolved_at, t.created_at) END AS resolution_hours,
           breached_at(t.created_at, t.first_response_at, t.resolved_at, t.target_hours, b.end_at) AS breached
    FROM bounds b JOIN support_tickets t ON t.created_at >= b.start_at AND t.created_at < b.end_at
)"""

TICKET_STATS = """count(*) AS tickets,
           quantile_cont(response_hours, [0.5, 0.9]) AS response_q,
           quantile_cont(resolution_hours, [0.5, 0.9]) AS resolution_q,
           count(*) FILTER (WHERE breached) / count(*) AS sla_breach_rate,
           count(*) FILTER (WHERE reopened > 0) AS reopened"""
"""Aggregates over created_tickets: p50 / p90 (linear) of the first response and resolution hours."""

BACKLOG = """backlog AS (  -- DESIGN "backlog": tickets created by the period end and not resolved by then
    SELECT b.p, count(*) AS backlog
    FROM bounds b JOIN support_tickets t
      ON t.created_at < b.end_at AND coalesce(t.resolved_at, 'infinity'::TIMESTAMP) >= b.end_at
    GROUP BY b.p
)"""

SERVICE = f"""{CREATED_TICKETS},
service AS (SELECT p, {TICKET_STATS} FROM created_tickets GROUP BY p),
{BACKLOG}"""

CUSTOMERS = """active_days AS (  -- DESIGN "Churn rate": the day before `from` and `to`
    SELECT p, true AS before, first_day - 1 AS day FROM bounds
    UNION ALL
    SELECT p, false AS before, last_day AS day FROM bounds
),
active AS (  -- DESIGN "Active customer" on day d: an order dated within d − (window − 1) … d
    SELECT a.p, o.customer_id, bool_or(a.before) AS before, bool_or(NOT a.before) AS after
    FROM active_days a JOIN customer_orders o
      ON o.ordered_at::DATE >= a.day - ($window - 1) AND o.ordered_at::DATE <= a.day
    GROUP BY a.p, o.customer_id
),
customers AS (  -- churn rate = active the day before `from` and not on `to` / active the day before `from`
    SELECT p,
           count(*) FILTER (WHERE after) AS active_customers,
           count(*) FILTER (WHERE before AND NOT after) / nullif(count(*) FILTER (WHERE before), 0) AS churn_rate
    FROM active GROUP BY p
)"""

KPI_SELECT = """SELECT
    coalesce(s.revenue_won, 0) AS revenue_won,
    coalesce(c.new_opportunities, 0) AS new_opportunities,
    coalesce(s.won_deals, 0) AS won_deals,
    coalesce(s.lost_deals, 0) AS lost_deals,
    s.won_deals / nullif(s.won_deals + s.lost_deals, 0) AS win_rate,
    s.sales_cycle_days,
    coalesce(pl.pipeline_value, 0) AS pipeline_value,
    coalesce(pl.weighted_pipeline, 0) AS weighted_pipeline,
    coalesce(pl.open_deals, 0) AS open_deals,
    CASE WHEN sa.nps_responses > 0 THEN nps_score(sa.promoters, sa.detractors, sa.nps_responses) END AS nps,
    coalesce(sa.nps_responses, 0) AS nps_responses,
    sa.satisfied / nullif(sa.csat_responses, 0) AS csat,
    coalesce(sa.csat_responses, 0) AS csat_responses,
    coalesce(sv.tickets, 0) AS tickets_created,
    sv.response_q[1] AS first_response_p50_hours,
    sv.response_q[2] AS first_response_p90_hours,
    sv.resolution_q[1] AS resolution_p50_hours,
    sv.resolution_q[2] AS resolution_p90_hours,
    sv.sla_breach_rate,
    coalesce(sv.reopened, 0) AS reopened_tickets,
    coalesce(bl.backlog, 0) AS backlog,
    coalesce(cu.active_customers, 0) AS active_customers,
    cu.churn_rate
FROM bounds b
LEFT JOIN sales s ON s.p = b.p
LEFT JOIN created c ON c.p = b.p
LEFT JOIN pipeline pl ON pl.p = b.p
LEFT JOIN satisfaction sa ON sa.p = b.p
LEFT JOIN service sv ON sv.p = b.p
LEFT JOIN backlog bl ON bl.p = b.p
LEFT JOIN customers cu ON cu.p = b.p
ORDER BY b.p"""


def metrics(engine: Engine, filters: Filters, periods: Sequence[Period]) -> list[dict[str, Any]]:
    """Every reference metric (pandas_reference.KEYS) for each of ``periods``, in one query."""
    ctes, params = narrowed(filters, "deals", "support_tickets", "responses", "customer_orders")
    sql = f"WITH {ctes},\n{BOUNDS},\n{SALES},\n{PIPELINE},\n{SATISFACTION},\n{SERVICE},\n{CUSTOMERS}\n{KPI_SELECT}"
    rows = _records(engine, sql, {**params, **bounds(periods), "window": ref.ACTIVE_WINDOW_DAYS})
    return [{k: row[k] for k in ref.KEYS} for row in rows]


def compute_with_previous(engine: Engine, filters: Filters) -> tuple[dict, dict]:
    """This period's and the previous period's metrics (as pandas_reference.compute_with_previous)."""
    now, before = metrics(engine, filters, [filters.period, filters.period.previous()])
    return now, before


def monthly_trend(engine: Engine, filters: Filters, months: int = 12) -> list[dict]:
    """Every metric for each of the ``months`` calendar months ending with the period's month."""
    periods = month_periods(filters.period.end, months)
    return [{"month": p.start, **row} for p, row in zip(periods, metrics(engine, filters, periods), strict=True)]


# --- funnel page ------------------------------------------------------------------------------------

STEPS = """funnel_steps AS (  -- DESIGN "Funnel": the open stages by position (steps 1..K), then the won stage (K + 1)
    SELECT open_step AS step, stage FROM pipeline_stages WHERE kind = 'open'
    UNION ALL
    SELECT (SELECT count(*) FROM pipeline_stages WHERE kind = 'open') + 1, min_by(stage, position)
    FROM pipeline_stages WHERE kind = 'won'
)"""

LEVELS = """cohort AS (  -- DESIGN "Funnel (cohort)": opportunities created in the period
    SELECT * FROM deals WHERE created_at >= $start_at AND created_at < $end_at
),
furthest AS (  -- the furthest open stage each cohort deal's history holds by the period end
    SELECT opportunity_id, max(open_step) AS step
    FROM stage_history
    WHERE open_step IS NOT NULL AND entered_at < $end_at AND opportunity_id IN (SELECT opportunity_id FROM cohort)
    GROUP BY opportunity_id
),
levels AS (  -- the steps a deal reached: up to its furthest open stage (1 with no history row); all when won
    SELECT c.*, CASE WHEN c.status = 'won' AND c.closed_at < $end_at THEN (SELECT max(step) FROM funnel_steps)
                     ELSE greatest(coalesce(f.step, 1), 1) END AS level
    FROM cohort c LEFT JOIN furthest f ON f.opportunity_id = c.opportunity_id
)"""

OPEN_AT_END = """open_at_end AS (  -- deals open at the period end: created before it; open, or closed at or after it
    SELECT * FROM deals
    WHERE created_at < $end_at AND (status = 'open' OR (status IN ('won', 'lost') AND closed_at >= $end_at))
)"""


def with_stage(source: str) -> str:
    """CTEs ``stage_now`` and ``staged``: the deals of CTE ``source`` with ``stage_now``, ``stage_since`` and
    the stage's ``win_probability`` at the period end."""
    return f"""stage_now AS (  -- DESIGN "Stage at a moment": the latest open-stage row entered by the period end;
                  -- rows entered at the same moment ordered by position, the higher one last
    SELECT opportunity_id, arg_max(stage, (entered_at, position, row_nr)) AS stage, max(entered_at) AS since
    FROM stage_history
    WHERE open_step IS NOT NULL AND entered_at < $end_at AND opportunity_id IN (SELECT opportunity_id FROM {source})
    GROUP BY opportunity_id
),
first_open AS (  -- DESIGN "Funnel": a deal with no history row is at the first open stage
    SELECT min_by(stage, position) AS stage FROM pipeline_stages WHERE kind = 'open'
),
staged AS (
    SELECT d.*, ps.stage AS stage_now, s.since AS stage_since, ps.win_probability
    FROM {source} d
    CROSS JOIN first_open f
    LEFT JOIN stage_now s ON s.opportunity_id = d.opportunity_id
    LEFT JOIN pipeline_stages ps ON ps.kind = 'open' AND ps.stage = coalesce(s.stage, f.stage)
)"""


def funnel(engine: Engine, filters: Filters, period: Period, by: str | None = None) -> pl.DataFrame:
    """Cohort funnel: per step (per ``by`` group, '(none)' for a missing value) reached, amount, step and
    cumulative conversion, dropped (as pandas_funnel_reference.funnel)."""
    ctes, params = narrowed(filters, "deals")
    group = f"coalesce({by}, '(none)')" if by else "NULL"
    groups = "SELECT DISTINCT grp FROM per_level" if by else "SELECT NULL AS grp"
    shown = f"grp AS {by}, " if by else ""
    sql = f"""WITH {ctes},
{STEPS},
{LEVELS},
per_level AS (SELECT {group} AS grp, level, count(*) AS deals, sum(cents(amount)) AS cents FROM levels GROUP BY ALL),
groups AS ({groups}),
reached AS (  -- DESIGN "Funnel": a deal at level L has reached every step up to L
    SELECT g.grp, s.step, s.stage, coalesce(sum(l.deals), 0)::BIGINT AS reached, coalesce(sum(l.cents), 0) / 100 AS amount
    FROM groups g CROSS JOIN funnel_steps s
    LEFT JOIN per_level l ON l.grp IS NOT DISTINCT FROM g.grp AND l.level >= s.step
    GROUP BY g.grp, s.step, s.stage
)
SELECT {shown}step, stage, reached, amount,  -- step conversion = reached(k) / reached(k - 1); cumulative: / reached(1)
       reached / nullif(lag(reached) OVER steps, 0) AS step_conversion,
       reached / nullif(first_value(reached) OVER steps, 0) AS cumulative_conversion,
       lag(reached) OVER steps - reached AS dropped
FROM reached
WINDOW steps AS (PARTITION BY grp ORDER BY step)
ORDER BY grp, step"""
    return _run(engine, sql, {**params, **moments(period)})


def deals(engine: Engine, filters: Filters, period: Period, rows: int = DEALS_HISTORY_ROWS) -> pl.DataFrame:
    """The cohort's first ``rows`` deals by creation: state at the period end and stage history
    "stage YYYY-MM-DD → ...", with the count and amount of every deal of the cohort on each row
    (``deals_in_all``, ``amount_in_all``), as the Funnel page's grid and heading (crm.metrics.funnel.first_deals;
    pandas_funnel_reference.deals)."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
{STEPS},
{LEVELS},
{with_stage("levels")},
numbered AS (  -- won / lost only when closed by the period end (DESIGN "Stage at a moment": status and closed_at)
    SELECT *, CASE WHEN status IN ('won', 'lost') AND closed_at < $end_at THEN status ELSE 'open' END AS state,
           row_number() OVER (ORDER BY created_at, opportunity_id) AS row_no,
           count(*) OVER () AS deals_in_all,
           round(sum(round(amount * 100)) OVER ()) / 100 AS amount_in_all  -- whole cents summed, as crm
    FROM staged
),
grid_history AS (  -- every history row entered by the period end, in order (position breaks ties, unknown last)
    SELECT h.opportunity_id,
           string_agg(h.stage || ' ' || strftime(h.entered_at, '%Y-%m-%d'), ' → '
                      ORDER BY h.entered_at, h.position NULLS LAST, h.row_nr) AS history
    FROM stage_history h
    WHERE h.entered_at < $end_at
      AND h.opportunity_id IN (SELECT opportunity_id FROM numbered WHERE row_no <= $rows)
    GROUP BY h.opportunity_id
)
SELECT n.opportunity_id, customer_id, owner, team, region, product, source, amount, created_at,
       state AS status,
       CASE WHEN state = 'open' THEN stage_now ELSE state END AS stage,
       CASE WHEN state <> 'open' THEN closed_at END AS closed_at,
       CASE WHEN state = 'lost' THEN lost_reason END AS lost_reason,
       g.history, deals_in_all, amount_in_all
FROM numbered n LEFT JOIN grid_history g ON g.opportunity_id = n.opportunity_id
WHERE row_no <= $rows
ORDER BY row_no"""
    return _run(engine, sql, {**params, **moments(period), "rows": rows})


def stage_velocity(engine: Engine, filters: Filters, period: Period) -> pl.DataFrame:
    """Days in each open stage for deals that left it within the period: deals, median, p75 (linear)."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
moved AS (  -- the deals in view with a history row entered in the period: only they can have left a stage then
    SELECT DISTINCT opportunity_id FROM stage_history
    WHERE entered_at >= $start_at AND entered_at < $end_at AND opportunity_id IN (SELECT opportunity_id FROM deals)
),
ordered AS (  -- their history, each row with when the deal's next row was entered
    SELECT stage, open_step, entered_at,
           lead(entered_at) OVER (PARTITION BY opportunity_id
                                  ORDER BY entered_at NULLS FIRST, position NULLS FIRST, row_nr) AS next_at
    FROM stage_history WHERE opportunity_id IN (SELECT opportunity_id FROM moved)
),
left_stage AS (  -- DESIGN "Time in stage": deals that left open stage k within the period (whatever their
                 -- creation), from entering k to their next history row, in days
    SELECT stage, days_between(next_at, entered_at) AS days
    FROM ordered WHERE open_step IS NOT NULL AND next_at >= $start_at AND next_at < $end_at
)
SELECT ps.open_step AS step, ps.stage, count(l.stage) AS deals,
       quantile_cont(l.days, 0.5) AS median_days, quantile_cont(l.days, 0.75) AS p75_days
FROM pipeline_stages ps LEFT JOIN left_stage l ON l.stage = ps.stage
WHERE ps.kind = 'open'
GROUP BY ps.open_step, ps.stage
ORDER BY step"""
    return _run(engine, sql, {**params, **moments(period)})


def win_cycle_trend(engine: Engine, filters: Filters, months: int = 12) -> list[dict]:
    """Revenue won, new deals, win rate and sales cycle for the ``months`` calendar months ending with the
    period's month (the sales part of ``monthly_trend``)."""
    ctes, params = narrowed(filters, "deals")
    periods = month_periods(filters.period.end, months)
    sql = f"""WITH {ctes},
{BOUNDS},
{SALES}
SELECT coalesce(s.revenue_won, 0) AS revenue_won,
       coalesce(c.new_opportunities, 0) AS new_opportunities,
       s.won_deals / nullif(s.won_deals + s.lost_deals, 0) AS win_rate,
       s.sales_cycle_days
FROM bounds b LEFT JOIN sales s ON s.p = b.p LEFT JOIN created c ON c.p = b.p
ORDER BY b.p"""
    rows = _records(engine, sql, {**params, **bounds(periods)})
    return [{"month": p.start, **row} for p, row in zip(periods, rows, strict=True)]


def win_loss(engine: Engine, filters: Filters, period: Period, by: str = "owner") -> pl.DataFrame:
    """Per ``by`` over deals closed in the period: won, lost, revenue won, amount lost, win rate; the
    previous period's win rate and the change. Worst win rate first."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
{BOUNDS},
closed AS (  -- DESIGN "Win rate": deals closed in each period (p 0: this one, 1: the previous one)
    SELECT b.p, coalesce(d.{by}, '(none)') AS key, d.status, d.amount
    FROM bounds b JOIN deals d ON d.closed_at >= b.start_at AND d.closed_at < b.end_at
    WHERE d.status IN ('won', 'lost')
),
summary AS (
    SELECT p, key,
           count(*) FILTER (WHERE status = 'won') AS won,
           count(*) FILTER (WHERE status = 'lost') AS lost,
           cents_sum(CASE WHEN status = 'won' THEN amount END) AS revenue_won,
           cents_sum(CASE WHEN status = 'lost' THEN amount END) AS amount_lost,
           won / (won + lost) AS win_rate
    FROM closed GROUP BY p, key
)
SELECT now.key AS {by}, now.won, now.lost, now.revenue_won, now.amount_lost, now.win_rate,
       before.win_rate AS previous_win_rate, now.win_rate - before.win_rate AS change
FROM summary now LEFT JOIN summary before ON before.p = 1 AND before.key = now.key
WHERE now.p = 0
ORDER BY now.win_rate, now.key"""
    return _run(engine, sql, {**params, **bounds([period, period.previous()])})


def lost_reasons(engine: Engine, filters: Filters, period: Period) -> pl.DataFrame:
    """Lost reasons over deals lost in the period: deals, amount, share; the previous period's; change."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
{BOUNDS},
lost AS (  -- deals lost in each period (p 0: this one, 1: the previous one); no reason: '(not given)'
    SELECT b.p, coalesce(d.lost_reason, '(not given)') AS reason, count(*) AS deals, cents_sum(d.amount) AS amount
    FROM bounds b JOIN deals d ON d.closed_at >= b.start_at AND d.closed_at < b.end_at
    WHERE d.status = 'lost'
    GROUP BY b.p, reason
),
now AS (SELECT * FROM lost WHERE p = 0),
before AS (SELECT * FROM lost WHERE p = 1)
SELECT coalesce(now.reason, before.reason) AS lost_reason,
       coalesce(now.deals, 0) AS deals, coalesce(now.amount, 0) AS amount,
       coalesce(before.deals, 0) AS previous_deals, coalesce(before.amount, 0) AS previous_amount,
       coalesce(now.deals, 0) / nullif(sum(now.deals) OVER (), 0) AS share,
       coalesce(now.deals, 0) - coalesce(before.deals, 0) AS change
FROM now FULL JOIN before ON before.reason = now.reason
ORDER BY deals DESC, amount DESC, lost_reason"""
    return _run(engine, sql, {**params, **bounds([period, period.previous()])})


def forecast(engine: Engine, filters: Filters, period: Period) -> pl.DataFrame:
    """Deals open at the period end by expected close month: deals, amount, weighted amount; overdue."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
{OPEN_AT_END},
{with_stage("open_at_end")},
won AS (
    SELECT closed_at, days_between(closed_at, created_at) AS days FROM deals WHERE status = 'won'
),
cycle AS (  -- DESIGN "Expected close": the median sales cycle of deals won in the period, else of all won by its end
    SELECT coalesce(quantile_cont(days, 0.5) FILTER (WHERE closed_at >= $start_at AND closed_at < $end_at),
                    quantile_cont(days, 0.5) FILTER (WHERE closed_at < $end_at), 0) AS days
    FROM won
),
expected AS (  -- expected_close_date where present, else the day of created_at + the median sales cycle
    SELECT date_trunc('month', coalesce(s.expected_close_date::TIMESTAMP, date_trunc('day',
               s.created_at + to_microseconds(trunc(c.days * 86400000000)::BIGINT))))::DATE AS month,
           s.amount, s.amount * coalesce(s.win_probability, 0) AS weighted
    FROM staged s CROSS JOIN cycle c
)
SELECT month, count(*) AS deals, cents_sum(amount) AS amount, cents_sum(weighted) AS weighted_amount,
       month < date_trunc('month', $last_day::DATE) AS overdue
FROM expected GROUP BY month ORDER BY month"""
    return _run(engine, sql, {**params, **moments(period), "last_day": period.end})


def ageing(engine: Engine, filters: Filters, period: Period, days: int = 30) -> pl.DataFrame:
    """Deals open at the period end in their stage for more than ``days`` days, oldest first."""
    ctes, params = narrowed(filters, "deals")
    sql = f"""WITH {ctes},
{OPEN_AT_END},
{with_stage("open_at_end")},
aged AS (  -- days since entering the current stage (since creation with no history row yet)
    SELECT *, days_between($end_at, coalesce(stage_since, created_at)) AS days_in_stage FROM staged
)
SELECT opportunity_id, customer_id, owner, team, region, product, amount, stage_now AS stage, days_in_stage,
       created_at, expected_close_date
FROM aged WHERE days_in_stage > $days
ORDER BY days_in_stage DESC, opportunity_id"""
    return _run(engine, sql, {**params, "end_at": moments(period)["end_at"], "days": days})


FUNNEL_PANELS: dict[str, Callable[[Engine, Filters], object]] = {
    "funnel": lambda e, f: funnel(e, f, f.period),
    "funnel by owner": lambda e, f: funnel(e, f, f.period, "owner"),
    "deals": lambda e, f: deals(e, f, f.period),
    "stage_velocity": lambda e, f: stage_velocity(e, f, f.period),
    "win_cycle_trend (12 months)": lambda e, f: win_cycle_trend(e, f),
    "win_loss by owner": lambda e, f: win_loss(e, f, f.period, "owner"),
    "lost_reasons": lambda e, f: lost_reasons(e, f, f.period),
    "forecast": lambda e, f: forecast(e, f, f.period),
    "ageing (30 days)": lambda e, f: ageing(e, f, f.period, 30),
}
"""The Funnel page's panels for one filter, keyed like pandas_funnel_reference.PANELS."""


# --- satisfaction page --------------------------------------------------------------------------------


def months_touched(period: Period) -> int:
    """How many calendar months the period touches."""
    return (period.end.year - period.start.year) * 12 + period.end.month - period.start.month + 1


def months_back(day: date, months: int) -> date:
    """``day`` ``months`` calendar months earlier (the last day of a month stays the last day)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    length = calendar.monthrange(year, month + 1)[1]
    last = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month + 1, length if last else min(day.day, length))


SCORE_COLUMNS = {
    "nps": """n, promoters, n - promoters - detractors AS passives, detractors,
           nps_score(promoters, detractors, n) AS score,
           score - nps_half_width(promoters, detractors, n) AS low,
           score + nps_half_width(promoters, detractors, n) AS high""",
    "csat": """n, satisfied, satisfied / n AS score,
           wilson_centre(satisfied, n) - wilson_half_width(satisfied, n) AS low,
           wilson_centre(satisfied, n) + wilson_half_width(satisfied, n) AS high""",
}
"""Per group of responses of one kind (counts n, promoters, detractors, satisfied): the score, its parts and
its 95% interval (DESIGN "NPS", "CSAT")."""

COUNTS = """count(*) AS n,
           count(*) FILTER (WHERE score >= 9) AS promoters,
           count(*) FILTER (WHERE score <= 6) AS detractors,
           count(*) FILTER (WHERE score >= 4) AS satisfied"""


def score_trend_with_previous(engine: Engine, filters: Filters, period: Period, kind: str) -> pl.DataFrame:
    """NPS or CSAT per calendar month of the period (months without responses absent), with the same month
    of the previous period (the period's n months just before, cut like it) as compared_score / compared_n."""
    ctes, params = narrowed(filters, "responses")
    n = months_touched(period)
    before = Period(months_back(period.start, n), months_back(period.end, n))
    sql = f"""WITH {ctes},
{BOUNDS},
monthly AS (  -- responses of the kind per calendar month of each period (p 0: this one, 1: the one before)
    SELECT b.p, date_trunc('month', r.responded_at)::DATE AS bucket, {COUNTS}
    FROM bounds b JOIN responses r ON r.responded_at >= b.start_at AND r.responded_at < b.end_at
    WHERE r.kind = $kind
    GROUP BY b.p, bucket
),
scored AS (SELECT p, bucket, {SCORE_COLUMNS[kind]}, n < {LOW_CONFIDENCE_N} AS low_confidence FROM monthly)
SELECT now.* EXCLUDE (p), before.score AS compared_score, before.n AS compared_n
FROM scored now
LEFT JOIN scored before ON before.p = 1 AND (before.bucket + to_months($months))::DATE = now.bucket
WHERE now.p = 0
ORDER BY now.bucket"""
    return _run(engine, sql, {**params, **bounds([period, before]), "kind": kind, "months": n})


def drill(engine: Engine, filters: Filters, period: Period, level: str = "product", kind: str = "csat") -> pl.DataFrame:
    """CSAT and NPS per ``level`` value ('(none)' for a missing one) side by side (score, interval, n),
    worst ``kind`` first."""
    ctes, params = narrowed(filters, "responses")
    sql = f"""WITH {ctes},
counted AS (  -- responses in the period per {level} and kind
    SELECT coalesce({level}, '(none)') AS key, kind, {COUNTS}
    FROM responses WHERE responded_at >= $start_at AND responded_at < $end_at AND kind IN ('csat', 'nps')
    GROUP BY key, kind
),
csat AS (SELECT key, {SCORE_COLUMNS["csat"]} FROM counted WHERE kind = 'csat'),
nps AS (SELECT key, {SCORE_COLUMNS["nps"]} FROM counted WHERE kind = 'nps')
SELECT coalesce(csat.key, nps.key) AS {level},
       csat.score AS csat, csat.low AS csat_low, csat.high AS csat_high, coalesce(csat.n, 0) AS csat_n,
       nps.score AS nps, nps.low AS nps_low, nps.high AS nps_high, coalesce(nps.n, 0) AS nps_n,
       coalesce({kind}.n, 0) < {LOW_CONFIDENCE_N} AS low_confidence
FROM csat FULL JOIN nps ON nps.key = csat.key
ORDER BY {kind} NULLS LAST, {level}"""
    return _run(engine, sql, {**params, **moments(period)})


# --- service page -------------------------------------------------------------------------------------


def week_periods(period: Period) -> list[Period]:
    """The weeks (Monday–Sunday) overlapping the period, cut to it."""
    out, day = [], period.start
    while day <= period.end:
        last = min(day + timedelta(days=6 - day.weekday()), period.end)
        out.append(Period(day, last))
        day = last + timedelta(days=1)
    return out


def service_trend(engine: Engine, filters: Filters, period: Period) -> pl.DataFrame:
    """Per week of the period: tickets created, p50/p90 first response and resolution (calendar hours) and
    SLA breach rate judged at the week's end, reopened, resolved in the week, backlog at its end."""
    ctes, params = narrowed(filters, "support_tickets")
    sql = f"""WITH {ctes},
{BOUNDS},
{SERVICE},
resolved AS (
    SELECT b.p, count(*) AS resolved
    FROM bounds b JOIN support_tickets t ON t.resolved_at >= b.start_at AND t.resolved_at < b.end_at
    GROUP BY b.p
)
SELECT b.first_day AS bucket, b.last_day AS bucket_end, coalesce(s.tickets, 0) AS created,
       s.response_q[1] AS first_response_p50, s.response_q[2] AS first_response_p90,
       s.resolution_q[1] AS resolution_p50, s.resolution_q[2] AS resolution_p90,
       s.sla_breach_rate, coalesce(s.reopened, 0) AS reopened,
       coalesce(r.resolved, 0) AS resolved, coalesce(bl.backlog, 0) AS backlog
FROM bounds b
LEFT JOIN service s ON s.p = b.p
LEFT JOIN resolved r ON r.p = b.p
LEFT JOIN backlog bl ON bl.p = b.p
ORDER BY b.p"""
    return _run(engine, sql, {**params, **bounds(week_periods(period))})


def service_times(engine: Engine, filters: Filters, period: Period, by: str = "team") -> pl.DataFrame:
    """Tickets created in the period per ``by`` group ('(none)' for a missing value): p50/p90 first
    response and resolution (calendar hours), SLA breach rate, reopened; slowest first response first."""
    ctes, params = narrowed(filters, "support_tickets")
    sql = f"""WITH {ctes},
{BOUNDS},
{CREATED_TICKETS},
grouped AS (SELECT coalesce({by}, '(none)') AS key, {TICKET_STATS} FROM created_tickets GROUP BY key)
SELECT key AS {by}, tickets,
       response_q[1] AS first_response_p50, response_q[2] AS first_response_p90,
       resolution_q[1] AS resolution_p50, resolution_q[2] AS resolution_p90,
       sla_breach_rate, reopened
FROM grouped
ORDER BY first_response_p50 DESC NULLS LAST, {by}"""
    return _run(engine, sql, {**params, **bounds([period])})


def sla_by_priority(engine: Engine, filters: Filters, period: Period) -> pl.DataFrame:
    """Per priority (unknown or empty: normal): target hours, tickets created in the period, breached, rate."""
    ctes, params = narrowed(filters, "support_tickets")
    sql = f"""WITH {ctes},
{BOUNDS},
{CREATED_TICKETS},
by_priority AS (  -- DESIGN "SLA breach rate": an empty or unknown priority uses normal's target
    SELECT CASE WHEN priority IN (SELECT priority FROM sla_targets) THEN priority ELSE 'normal' END AS priority,
           count(*) AS tickets, count(*) FILTER (WHERE breached) AS breached
    FROM created_tickets GROUP BY 1
)
SELECT s.priority, s.target_hours, coalesce(b.tickets, 0) AS tickets, coalesce(b.breached, 0) AS breached,
       b.breached / nullif(b.tickets, 0) AS sla_breach_rate
FROM sla_targets s LEFT JOIN by_priority b ON b.priority = s.priority
ORDER BY s.rank"""
    return _run(engine, sql, {**params, **bounds([period])})


SERVICE_PANELS: dict[str, Callable[[Engine, Filters], object]] = {
    "kpis + previous": compute_with_previous,
    "kpi trend (12 months)": monthly_trend,
    "nps_trend (month, vs previous)": lambda e, f: score_trend_with_previous(e, f, f.period, "nps"),
    "csat_trend (month, vs previous)": lambda e, f: score_trend_with_previous(e, f, f.period, "csat"),
    "satisfaction_drill (product)": lambda e, f: drill(e, f, f.period, "product", "csat"),
    "service_trend (week)": lambda e, f: service_trend(e, f, f.period),
    "service_times (team, calendar)": lambda e, f: service_times(e, f, f.period, "team"),
    "sla (calendar)": lambda e, f: sla_by_priority(e, f, f.period),
}
"""The Satisfaction and Service pages' panels: the KPIs and their 12-month trend (both pages show them;
months ending with the period's month, as crm's trend anchored on the period's last day), and the heavy
panels keyed like pandas_service_reference.PANELS."""


@dataclass(frozen=True)
class Setup:
    """Both ways of feeding DuckDB, ready, and what setting them up took (once per data version)."""

    engines: dict[str, Engine]
    prepare_seconds: float
    """``prepare``: the Polars joins."""
    load_seconds: dict[str, float]
    """Per mode: registering the Arrow tables ("arrow"), or that and CREATE TABLE AS ("native")."""


def set_up(raw: Mapping[str, pl.DataFrame], timer: Callable[[], float]) -> Setup:
    """``prepare`` the canonical frames and ``connect`` them in every mode, timed."""
    started = timer()
    tables = prepare(raw)
    prepared = timer()
    engines, load = {}, {}
    for mode in MODES:
        begun = timer()
        engines[mode] = connect(tables, mode)
        load[mode] = timer() - begun
    return Setup(engines, prepared - started, load)


def run_panels(
    panels: Mapping[str, Callable[[Engine, Filters], object]],
    engine: Engine,
    filters: Filters,
    timer: Callable[[], float],
    names: Sequence[str] | None = None,
) -> dict[str, tuple[float, object]]:
    """The panels ``names`` (default all) for one filter: name -> (seconds, table), as the pandas references'
    ``page`` / ``panels`` return them."""
    out: dict[str, tuple[float, object]] = {}
    for name in names if names is not None else list(panels):
        started = timer()
        table = panels[name](engine, filters)
        out[name] = (timer() - started, table)
    return out
