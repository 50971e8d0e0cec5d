"""The one door to the data: every page, report, export and CLI command narrows through ``narrow``.

``narrow(frames, filters)`` applies, together and before any aggregation:

- the dimension filters (region, segment, product, team, owner) and a customer list;
- a customer selection as a rule (``filters.segment_rule``, the URL's ``seg=``), resolved here;
- the person's row scope (``filters.scope``, crm.scope): what a role may see.

Filters without a scope are refused (``UnscopedRead``): "nobody said" never means "every row". The
data layer (crm.dataset) is a leaf that only knows how to keep rows by per-table conditions; the RFM
scores a segment rule is evaluated on are computed here, on scoped rows, and kept per data version
with the scope in the key (``Frames.memo``).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from crm.dataset import Dataset, Frames
from crm.filters import DIMENSION_COLUMNS, Filters, Period, one_of
from crm.metrics import rfm
from crm.scope import Scope
from crm.segment_rules import SegmentRule, SegmentRuleError, rule_expr, scope_filters, with_previous_segment

TABLES: tuple[str, ...] = ("opportunities", "tickets", "survey_responses", "orders", "customers", "interactions")
"""The tables a filter or a scope narrows (deal history and intervals follow their deals)."""


class UnscopedRead(RuntimeError):
    """Filters without a scope reached the narrowing step: a code path forgot whose view it builds."""


def narrow(frames: Frames, filters: Filters) -> Dataset:
    """The rows ``filters`` select within ``filters.scope``, lazily (no period applied yet)."""
    scope = narrowing_scope(filters)
    members = member_ids(frames, filters.segment_rule, scope) if filters.segment_rule else None
    where: dict[str, pl.Expr] = {}
    for table in TABLES:
        expr = filters.polars_expr(table) & scope_expr(frames, scope, table)
        if members is not None:
            expr = expr & pl.col("customer_id").is_in(members.implode())
        where[table] = expr
    if not (filters.is_narrowed() or members is not None):
        where = {}  # every row: skip the filters (and the deal-history lookups) altogether
    return frames._select(where, filters.products, key=("narrow", filters.without_period()))


def narrowing_scope(filters: Filters) -> Scope:
    """``filters.scope``; raises UnscopedRead when it is missing (also for views that score before narrowing)."""
    if not isinstance(filters.scope, Scope):
        raise UnscopedRead("the filters carry no scope: build them with the signed-in person's scope "
                           "(Filters.create(..., scope=user.scope); every row is Scope())")
    return filters.scope


def scope_expr(frames: Frames, scope: Scope, table: str) -> pl.Expr:
    """The rows of ``table`` (an enriched frame) that ``scope`` lets through (crm.scope's rules)."""
    expr = pl.lit(True)
    if scope.regions:
        expr = expr & one_of(_column(table, "region"), scope.regions)
    if scope.teams:
        if table in ("opportunities", "tickets", "survey_responses"):
            expr = expr & one_of("team", scope.teams)
        else:
            expr = expr & pl.col("customer_id").is_in(_team_customers(frames, scope.teams).implode())
    if scope.owners:
        owners = list(scope.owners)
        if table in ("tickets", "survey_responses"):
            owned = _owned_customers(frames, scope.owners).implode()
            expr = expr & (pl.col("customer_id").is_in(owned) | pl.col("agent").is_in(owners))
        elif table == "interactions":
            expr = expr & (pl.col("customer_owner").is_in(owners) | pl.col("owner").is_in(owners))
        else:
            expr = expr & pl.col(_column(table, "owner")).is_in(owners)
    return expr


def _column(table: str, dimension: str) -> str:
    column = DIMENSION_COLUMNS[table][dimension]
    assert column is not None
    return column


def _team_customers(frames: Frames, teams: tuple[str, ...]) -> pl.Series:
    """Customers with a deal or a ticket of one of ``teams`` (kept per data version)."""
    def compute() -> pl.Series:
        deals = frames.opportunities.filter(pl.col("team").is_in(list(teams)))["customer_id"]
        tickets = frames.tickets.filter(pl.col("team").is_in(list(teams)))["customer_id"]
        return pl.concat([deals, tickets]).drop_nulls().unique().sort()
    return frames.memo(("team_customers", teams), compute)


def _owned_customers(frames: Frames, owners: tuple[str, ...]) -> pl.Series:
    """Customers owned by one of ``owners`` (kept per data version)."""
    def compute() -> pl.Series:
        return frames.customers.filter(pl.col("owner").is_in(list(owners)))["customer_id"]
    return frames.memo(("owned_customers", owners), compute)


# --- customer selections as rules -------------------------------------------------------------------


def scores(frames: Frames, rule: SegmentRule, as_of: date, scope: Scope) -> pl.DataFrame:
    """RFM scores as of ``as_of`` over the rule's dimension filters within ``scope`` (kept per data
    version: frames.memo, keyed by the scope too)."""
    key = ("rfm", rule.scope, as_of, scope)
    return frames.memo(key, lambda: rfm.rfm_scores(narrow(frames, scope_filters(rule, as_of, scope)),
                                                   Period(as_of, as_of)))


def evaluate(frames: Frames, rule: SegmentRule, period: Period, scope: Scope) -> pl.DataFrame:
    """The scored customers the rule selects within ``scope`` (as of its day, else ``period``'s end),
    sorted by id, with their scores (and ``previous_segment`` when the rule has a move)."""
    dated = rule.dated(period)
    assert dated.as_of is not None
    table = scores(frames, dated, dated.as_of, scope)
    if dated.moved_from:
        assert dated.since is not None
        table = with_previous_segment(table, scores(frames, dated, dated.since, scope))
    return table.filter(rule_expr(dated)).sort("customer_key")  # customer_id order, see rfm_scores


def member_ids(frames: Frames, rule_json: str, scope: Scope) -> pl.Series:
    """The customer ids a dated rule (the URL's ``seg=``) selects within ``scope``; kept per data version."""
    def compute() -> pl.Series:
        rule = SegmentRule.from_json(rule_json)
        if rule.as_of is None:
            raise SegmentRuleError("a rule in the filters needs its as_of day")
        return evaluate(frames, rule, Period(rule.as_of, rule.as_of), scope)["customer_id"]
    return frames.memo(("members", rule_json, scope), compute)


def dimension_values(frames: Frames, scope: Scope) -> dict[str, list[str]]:
    """The values each filter dimension takes in the rows ``scope`` allows, sorted (the filter bar's pickers
    and the check of a link's values: a rep is offered their own name, not every owner's). Every row:
    ``Frames.dimension_values``. Kept per data version and scope."""
    if scope.unrestricted:
        return frames.dimension_values()

    def compute() -> dict[str, list[str]]:
        ds = narrow(frames, Filters.create(Period(date.min, date.max), scope=scope))
        customers, deals = ds.customers.collect(), ds.opportunities.collect()
        tickets = ds.tickets.collect()

        def values(*series: pl.Series) -> list[str]:
            return pl.concat([s.cast(pl.String) for s in series]).drop_nulls().unique().sort().to_list()

        products = values(deals["product"], tickets["product"])
        return {
            "region": values(customers["region"], deals["region"]),
            "segment": values(customers["segment"]),
            "product": products,
            "team": values(deals["team"], tickets["team"]),
            "owner": values(deals["owner"], tickets["agent"], customers["owner"]),
        }
    return frames.memo(("dimension_values", scope), compute)
