"""The one door to the data (crm.narrowing): every report refuses filters without a scope, and a scope
shows exactly the rows its rules allow.

The "rows a scope allows" are worked out here a second way: the raw demo tables are cut by hand with the
rules of crm/scope.py's docstring (plain Polars on the raw columns, no crm.narrowing), enriched on their
own, and every report over them (with every row allowed) must equal the same report over all the data
narrowed by the scope.
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import dataset
from crm.dataset import COLUMNS, Frames, enrich
from crm.filters import Filters, Period
from crm.narrowing import UnscopedRead, dimension_values, narrow
from crm.quality import usable
from crm.reports import REPORTS, ReportOptionError, build_report
from crm.scope import Scope
from tests.conftest import ROOT

Q2 = Period(date(2026, 4, 1), date(2026, 6, 30))

SCOPES = {
    "manager of Europe": Scope(regions=("Europe",)),
    "rep Elena Rossi": Scope(owners=("Elena Rossi",)),
    "manager of Team Cirrus": Scope(teams=("Team Cirrus",)),
    "Team Cirrus in Asia Pacific, two owners": Scope(regions=("Asia Pacific",), teams=("Team Cirrus",),
                                                     owners=("Elena Rossi", "Jun Tanaka", "Isha Patel")),
}


def raw_tables(demo_frames) -> dict[str, pl.DataFrame]:
    """The demo tables as load_frames reads them (projected columns, unusable rows left out)."""
    return {name: usable(name, demo_frames[name].select(columns)) for name, columns in COLUMNS.items()}


def cut_by_hand(raw: dict[str, pl.DataFrame], scope: Scope) -> dict[str, pl.DataFrame]:
    """The raw rows ``scope`` allows, by crm/scope.py's rules, written out table by table."""
    customers, deals, tickets = raw["customers"], raw["opportunities"], raw["tickets"]
    surveys, orders = raw["survey_responses"], raw["orders"]
    keep_customers = set(customers["customer_id"])
    keep_deals = set(deals["opportunity_id"])
    keep_tickets = set(tickets["ticket_id"])
    keep_surveys = set(surveys["response_id"])
    keep_orders = set(orders["order_id"])
    touches = raw["interactions"]
    keep_touches = set(touches["interaction_id"])

    def ids(frame: pl.DataFrame, condition: pl.Expr, column: str) -> set[str]:
        return set(frame.filter(condition)[column])

    if scope.regions:
        in_region = ids(customers, pl.col("region").is_in(scope.regions), "customer_id")
        keep_customers &= in_region
        keep_deals &= ids(deals, pl.col("region").is_in(scope.regions), "opportunity_id")
        keep_tickets &= ids(tickets, pl.col("customer_id").is_in(in_region), "ticket_id")
        keep_surveys &= ids(surveys, pl.col("customer_id").is_in(in_region), "response_id")
        keep_orders &= ids(orders, pl.col("customer_id").is_in(in_region), "order_id")
        keep_touches &= ids(touches, pl.col("customer_id").is_in(in_region), "interaction_id")
    if scope.teams:
        touched = (ids(deals, pl.col("team").is_in(scope.teams), "customer_id")
                   | ids(tickets, pl.col("team").is_in(scope.teams), "customer_id"))
        keep_customers &= touched
        keep_deals &= ids(deals, pl.col("team").is_in(scope.teams), "opportunity_id")
        keep_tickets &= ids(tickets, pl.col("team").is_in(scope.teams), "ticket_id")
        keep_surveys &= ids(surveys, pl.col("team").is_in(scope.teams), "response_id")
        keep_orders &= ids(orders, pl.col("customer_id").is_in(touched), "order_id")
        keep_touches &= ids(touches, pl.col("customer_id").is_in(touched), "interaction_id")
    if scope.owners:
        owned = ids(customers, pl.col("owner").is_in(scope.owners), "customer_id")
        keep_customers &= owned
        keep_deals &= ids(deals, pl.col("owner").is_in(scope.owners), "opportunity_id")
        keep_tickets &= ids(tickets, pl.col("customer_id").is_in(owned) | pl.col("agent").is_in(scope.owners), "ticket_id")
        keep_surveys &= ids(surveys, pl.col("customer_id").is_in(owned) | pl.col("agent").is_in(scope.owners),
                            "response_id")
        keep_orders &= ids(orders, pl.col("customer_id").is_in(owned), "order_id")
        keep_touches &= ids(touches, pl.col("customer_id").is_in(owned) | pl.col("owner").is_in(scope.owners),
                            "interaction_id")
    cut = dict(raw)
    cut["customers"] = customers.filter(pl.col("customer_id").is_in(keep_customers))
    cut["opportunities"] = deals.filter(pl.col("opportunity_id").is_in(keep_deals))
    cut["opportunity_stages"] = raw["opportunity_stages"].filter(pl.col("opportunity_id").is_in(keep_deals))
    cut["tickets"] = tickets.filter(pl.col("ticket_id").is_in(keep_tickets))
    cut["survey_responses"] = surveys.filter(pl.col("response_id").is_in(keep_surveys))
    cut["orders"] = orders.filter(pl.col("order_id").is_in(keep_orders))
    cut["interactions"] = touches.filter(pl.col("interaction_id").is_in(keep_touches))
    return cut


@pytest.fixture(scope="module")
def everything(demo_frames):
    return enrich(raw_tables(demo_frames))


COMPANY_MODEL_REPORTS = {"churn_risk": ("risk", "revenue_at_risk", "rule")}
"""Reports scored by a model fitted on every customer of the store (crm.churn_risk): a scope gets exactly its
customers and their facts, while the columns the model gives come from the store's model, not one fitted on the
scope's rows alone."""


def report_names() -> list[str]:
    return sorted(REPORTS)


def test_every_report_refuses_filters_without_a_scope(everything):
    refused = []
    for name in report_names():
        with pytest.raises(UnscopedRead):
            build_report(name, everything, Filters.create(Q2))
        refused.append(name)
    assert len(refused) == len(REPORTS) > 20


def test_narrowing_refuses_filters_from_a_link_until_a_scope_is_added(everything):
    from_link, _ = Filters.from_query_params({"from": ["2026-04-01"], "to": ["2026-06-30"]}, date(2026, 6, 30))
    with pytest.raises(UnscopedRead, match="no scope"):
        narrow(everything, from_link)
    assert narrow(everything, from_link.with_scope(Scope())).opportunities.collect().height == everything.opportunities.height


@pytest.mark.parametrize("who", list(SCOPES))
def test_a_scope_sees_exactly_the_rows_its_rules_allow_in_every_report(demo_frames, everything, who):
    scope = SCOPES[who]
    raw = raw_tables(demo_frames)
    cut = enrich(cut_by_hand(raw, scope))
    assert 0 < cut.opportunities.height < everything.opportunities.height  # the scope does narrow
    compared = 0
    for name in report_names():
        try:
            expected = build_report(name, cut, Filters.create(Q2, scope=Scope()))
        except ReportOptionError:
            continue  # needs options (e.g. a drill level); covered by the pages' tests
        seen = build_report(name, everything, Filters.create(Q2, scope=scope))
        if name in COMPANY_MODEL_REPORTS:  # the model learns from every customer: the rows and facts are the scope's
            model = list(COMPANY_MODEL_REPORTS[name])
            seen, expected = (f.drop(model).sort("customer_id") for f in (seen, expected))
            assert seen.height > 0, name
        assert_frame_equal(seen, expected, check_exact=False, rel_tol=1e-9, abs_tol=1e-9), name
        compared += 1
    assert compared >= 20
    rows = narrow(everything, Filters.create(Q2, scope=scope))
    for table, key in (("interactions", "interaction_id"), ("customers", "customer_id"), ("orders", "order_id")):
        assert sorted(getattr(rows, table).collect()[key]) == sorted(getattr(cut, table)[key]), table


def test_a_scope_and_a_filter_combine_and_a_filter_cannot_widen_a_scope(everything):
    europe = Scope(regions=("Europe",))
    widened = build_report("kpis", everything, Filters.create(Q2, regions=["Asia Pacific"], scope=europe))
    nothing = build_report("kpis", everything, Filters.create(Q2, regions=["Asia Pacific"],
                                                              scope=Scope(regions=("Nowhere",))))
    assert_frame_equal(widened, nothing)  # Asia Pacific inside Europe: no rows, like a scope of no region


def test_nothing_but_crm_narrowing_selects_rows_and_nothing_calls_the_old_method():
    """Frames._select keeps rows by conditions it is given: only the one door may call it."""
    callers = []
    for path in [*sorted((ROOT / "crm").rglob("*.py")), *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"_select", "narrow"} and isinstance(node.ctx, ast.Load):
                callers.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert [c for c in callers if not c.startswith("crm/narrowing.py:")] == []
    assert [c.split(" ")[1] for c in callers] == ["._select"]


def test_the_filter_pickers_offer_only_the_values_inside_the_scope(everything):
    rep = dimension_values(everything, Scope(owners=("Elena Rossi",)))
    assert set(rep["owner"]) - {"Elena Rossi"} <= set(everything.tickets["agent"])  # their customers' agents
    assert "Kai Lopes" not in rep["owner"] and "Kai Lopes" in everything.dimension_values()["owner"]
    europe = dimension_values(everything, Scope(regions=("Europe",)))
    assert europe["region"] == ["Europe"]
    assert dimension_values(everything, Scope()) == everything.dimension_values()


def test_a_scope_is_named_in_the_filters_description_an_export_manifest_carries():
    assert Filters.create(Q2, scope=Scope(regions=("Europe",))).describe().endswith("within the scope region=Europe")
    assert "scope" not in Filters.create(Q2, scope=Scope()).describe()


NARROWED_VIEWS = {
    "one region": Filters.create(Q2, regions=["Europe"], scope=Scope()),
    "two regions and a segment": Filters.create(Q2, regions=["Europe", "Asia Pacific"], segments=["Enterprise"],
                                                scope=Scope()),
    "a product": Filters.create(Q2, products=["Data Connect"], scope=Scope()),
    "nine owners (looked up, not compared)": Filters.create(Q2, owners=[
        "Elena Rossi", "Jun Tanaka", "Isha Patel", "Kai Lopes", "Ana Silva", "Tom Berg", "Lea Roux", "Omar Haddad",
        "Mia Chen"], scope=Scope()),
    "a team's scope and a region": Filters.create(Q2, regions=["Asia Pacific"], scope=SCOPES["manager of Team Cirrus"]),
}


@pytest.mark.parametrize("gather_rows", [None, 7], ids=["one slice", "slices of 7 rows"])
@pytest.mark.parametrize("view", list(NARROWED_VIEWS))
def test_rows_worked_out_once_per_filter_are_the_rows_each_query_would_filter(everything, monkeypatch, view,
                                                                              gather_rows):
    """narrow works a filter's rows out once per table (Frames._row_mask) and keeps them; they must be the rows
    the same conditions keep when every table is filtered on its own, written here in plain Polars: each
    table by its condition, the deal history and intervals by their deal's id, the orders by their products.
    The history's deals are looked up a slice at a time (GATHER_ROWS): with slices of 7 rows, the last one
    partial, they must be the same rows."""
    if gather_rows is not None:
        monkeypatch.setattr(dataset, "GATHER_ROWS", gather_rows)
        everything = dataclasses.replace(everything)  # no masks kept from another test
    original = Frames._select
    asked: list[tuple] = []

    def spy(self, where, products, key):
        asked.append((where, products))
        return original(self, where, products, key)

    monkeypatch.setattr(Frames, "_select", spy)
    filters = NARROWED_VIEWS[view]
    kept = narrow(everything, filters)
    where, products = asked[-1]
    tables = {"opportunities": everything.opportunities, "tickets": everything.tickets,
              "survey_responses": everything.surveys, "orders": everything.orders,
              "customers": everything.customers, "interactions": everything.interactions}
    expected = {name: table.filter(where.get(name, pl.lit(True))) for name, table in tables.items()}
    if products:
        holding = everything.order_items.filter(pl.col("product").is_in(list(products)))["order_id"]
        expected["orders"] = expected["orders"].filter(pl.col("order_id").is_in(holding.implode()))
    deals = expected["opportunities"]["deal_key"]  # the deal's row number (crm.dataset)
    for child in ("stages", "deal_intervals"):
        expected[child] = getattr(everything, child).filter(pl.col("deal_key").is_in(deals.implode()))
    expected["surveys"] = expected.pop("survey_responses")
    narrowed_somewhere = False
    for table, rows in expected.items():
        assert_frame_equal(getattr(kept, table).collect(), rows)
        narrowed_somewhere |= rows.height < getattr(everything, table).height
    assert narrowed_somewhere
    # the same filter over another period reads the kept masks: no table is worked out again
    looked_up = []
    monkeypatch.setattr(Frames, "_deals_of", lambda self, name, deal: looked_up.append(name))
    again = narrow(everything, filters.with_period(Period(date(2026, 1, 1), date(2026, 3, 31))))
    assert again.stages.collect().height == kept.stages.collect().height
    assert looked_up == []


def test_the_masks_of_the_last_filters_only_are_kept(demo_frames):
    frames = enrich(raw_tables(demo_frames))
    views = [Filters.create(Q2, owners=[owner], scope=Scope())
             for owner in frames.dimension_values()["owner"][:Frames.KEPT_MASKS + 1]]
    for filters in views:
        narrow(frames, filters).opportunities.collect()
    assert len(frames._masks) == Frames.KEPT_MASKS
    assert ("narrow", views[0].without_period()) not in frames._masks
    assert ("narrow", views[-1].without_period()) in frames._masks
