"""Filters: periods and presets, the URL round trip, bad links, Polars and SQL renderings."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
import sqlalchemy as sa

from crm import schema
from crm.dataset import frames_from_rows
from crm.filters import PAGE_PARAMS, Filters, Period, month_periods, period_from_range, resolve_preset
from crm.narrowing import narrow
from crm.scope import Scope
from crm.store import Store
from crm.views import param_names

ANCHOR = date(2026, 6, 30)


def test_period_bounds_and_previous_period():
    q2 = Period(date(2026, 4, 1), date(2026, 6, 30))
    assert q2.days == 91
    assert q2.start_ts == datetime(2026, 4, 1) and q2.end_ts == datetime(2026, 7, 1)
    # the same 91 days just before 1 April: 31 Dec .. 31 Mar
    assert q2.previous() == Period(date(2025, 12, 31), date(2026, 3, 31))
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 2, 1), date(2026, 1, 31))


@pytest.mark.parametrize(
    ("preset", "start"),
    [("last_30", date(2026, 6, 1)), ("last_90", date(2026, 4, 2)), ("qtd", date(2026, 4, 1)),
     ("ytd", date(2026, 1, 1)), ("last_365", date(2025, 7, 1))],
)
def test_presets_end_on_the_anchor(preset, start):
    assert resolve_preset(preset, ANCHOR) == Period(start, ANCHOR)


def test_quarter_to_date_previous_period_has_the_same_length():
    qtd = resolve_preset("qtd", date(2026, 5, 10))  # 1 Apr .. 10 May: 40 days
    assert qtd.previous() == Period(date(2026, 2, 20), date(2026, 3, 31))


def test_month_periods_cut_the_last_month_at_the_end():
    months = month_periods(date(2026, 3, 15), 3)
    assert months == [Period(date(2026, 1, 1), date(2026, 1, 31)), Period(date(2026, 2, 1), date(2026, 2, 28)),
                      Period(date(2026, 3, 1), date(2026, 3, 15))]


def test_equal_selections_give_equal_cache_keys():
    a = Filters.create(Period(ANCHOR, ANCHOR), regions=["Europe", " Asia ", "Europe"], teams=[], scope=Scope())
    b = Filters.create(Period(ANCHOR, ANCHOR), regions=["Asia", "Europe"], scope=Scope())
    assert a == b and hash(a) == hash(b)
    assert a.regions == ("Asia", "Europe")


def test_url_round_trip_custom_dates_dimensions_customers_and_selection():
    original = Filters.create(
        Period(date(2026, 4, 1), date(2026, 4, 30)), compare=False, regions=["Europe", "North America"],
        owners=["Ann Lee"], customers=["C1", "C2"], selection=[("step", "3")], scope=Scope(owners=("Ann Lee",)),
    )
    params = original.to_query_params()  # the scope is never in a link: it comes from who is signed in
    assert params == {"from": ["2026-04-01"], "to": ["2026-04-30"], "compare": ["0"],
                      "region": ["Europe", "North America"], "owner": ["Ann Lee"], "customers": ["C1,C2"],
                      "select": ["step:3"]}
    restored, notices = Filters.from_query_params(params, ANCHOR)
    assert notices == []
    assert restored.scope is None and restored.with_scope(Scope(owners=("Ann Lee",))) == original


def test_url_round_trip_of_a_preset_resolves_against_the_anchor():
    original = Filters.create(resolve_preset("last_30", ANCHOR), preset="last_30")  # as a link gives it: no scope
    params = original.to_query_params()
    assert params == {"period": ["last_30"]}
    restored, _ = Filters.from_query_params(params, ANCHOR)
    assert restored == original
    later, _ = Filters.from_query_params(params, date(2026, 7, 31))
    assert later.period == Period(date(2026, 7, 2), date(2026, 7, 31))


def test_an_empty_query_string_gives_the_default_view():
    filters, notices = Filters.from_query_params({}, ANCHOR)
    assert notices == []
    assert filters.preset == "last_90" and filters.period == Period(date(2026, 4, 2), ANCHOR)
    assert filters.compare and not filters.is_narrowed()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"from": ["2026-13-45"], "to": ["2026-06-30"]}, "Ignored the period"),
        ({"from": ["2026-06-30"], "to": ["2026-06-01"]}, "from ≤ to"),
        ({"period": ["last_week"]}, "unknown period 'last_week'"),
        ({"compare": ["maybe"]}, "compare='maybe'"),
        ({"region": ["Atlantis"]}, "unknown region value(s) from the link: 'Atlantis'"),
        ({"select": ["nocolon"]}, "Ignored the selection 'nocolon'"),
        ({"utm_source": ["mail"]}, "unknown link parameter(s): utm_source"),
    ],
)
def test_bad_link_parameters_are_ignored_with_a_notice(params, fragment):
    filters, notices = Filters.from_query_params(params, ANCHOR, known={"region": ["Europe"]})
    assert any(fragment in n for n in notices), notices
    assert filters.period.end <= ANCHOR and filters.regions == ()


def test_every_pages_own_parameters_are_known_link_parameters():
    # the segments page's x/y axes were reported as unknown ("Ignored unknown link parameter(s): x, y")
    params = {"period": ["last_30"], "by": ["segment"], "x": ["frequency"], "y": ["monetary"]}
    assert Filters.from_query_params(params, ANCHOR)[1] == []
    assert set(PAGE_PARAMS) == set(param_names())  # the filters know what crm.views says pages own


def test_a_pages_parameters_are_unknown_on_another_page():
    params = {"period": ["last_30"], "mode": ["strict"], "x": ["frequency"]}
    notices = Filters.from_query_params(params, ANCHOR, page_keys=param_names("pages/segments.py"))[1]
    assert notices == ["Ignored unknown link parameter(s): mode."]


def test_good_parts_of_a_partly_bad_link_are_kept():
    params = {"from": ["2026-05-01"], "to": ["2026-05-31"], "region": ["Europe", "Atlantis"]}
    filters, notices = Filters.from_query_params(params, ANCHOR, known={"region": ["Europe"]})
    assert filters.period == Period(date(2026, 5, 1), date(2026, 5, 31))
    assert filters.regions == ("Europe",)
    assert len(notices) == 1


def test_a_link_running_past_the_last_day_is_cut_there_with_a_notice():
    params = {"from": ["2026-06-01"], "to": ["2027-12-31"]}
    filters, notices = Filters.from_query_params(params, ANCHOR, latest=ANCHOR)
    assert filters.period == Period(date(2026, 6, 1), ANCHOR)
    assert notices == ["The link's period ran past 2026-06-30, the last day that can be shown; it now ends there."]
    later, notices = Filters.from_query_params({"from": ["2027-01-01"], "to": ["2027-01-31"]}, ANCHOR, latest=ANCHOR)
    assert later.preset == "last_90" and later.period.end == ANCHOR
    assert "starts after 2026-06-30" in notices[0]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


TABLES = {
    "customers": [
        {"customer_id": "A", "region": "Europe", "segment": "SMB", "owner": "Ann"},
        {"customer_id": "B", "region": "Asia", "segment": "Enterprise", "owner": "Bob"},
    ],
    "opportunities": [
        {"opportunity_id": "O1", "customer_id": "A", "region": "Asia", "team": "East", "owner": "Cy", "product": "P1",
         "amount": 1.0, "created_at": _ts("2026-01-01")},
        {"opportunity_id": "O2", "customer_id": "B", "region": "Europe", "team": "West", "owner": "Di", "product": "P2",
         "amount": 1.0, "created_at": _ts("2026-01-01")},
    ],
    "tickets": [
        {"ticket_id": "T1", "customer_id": "A", "team": "Support", "agent": "Eve", "created_at": _ts("2026-01-01")},
        {"ticket_id": "T2", "customer_id": "B", "team": "Support", "agent": "Fay", "created_at": _ts("2026-01-01")},
    ],
    "orders": [
        {"order_id": "R1", "customer_id": "A", "ordered_at": _ts("2026-01-01"), "amount": 5.0},
        {"order_id": "R2", "customer_id": "B", "ordered_at": _ts("2026-01-01"), "amount": 5.0},
    ],
    "order_items": [
        {"order_id": "R1", "product": "P1", "amount": 5.0},
        {"order_id": "R2", "product": "P2", "amount": 5.0},
    ],
}
JAN = Period(date(2026, 1, 1), date(2026, 1, 31))


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        # deals use their own region; tickets and orders the customer's
        ({"regions": ["Europe"]}, {"opportunities": ["O2"], "tickets": ["T1"], "orders": ["R1"]}),
        # segment is always the customer's
        ({"segments": ["SMB"]}, {"opportunities": ["O1"], "tickets": ["T1"], "orders": ["R1"]}),
        # owner: deal owner, ticket agent, the customer's owner for orders
        ({"owners": ["Di", "Fay", "Ann"]}, {"opportunities": ["O2"], "tickets": ["T2"], "orders": ["R1"]}),
        # team does not narrow orders; product narrows orders to those with an item of it
        ({"teams": ["East"]}, {"opportunities": ["O1"], "tickets": [], "orders": ["R1", "R2"]}),
        ({"products": ["P2"]}, {"opportunities": ["O2"], "tickets": [], "orders": ["R2"]}),
        ({"customers": ["B"]}, {"opportunities": ["O2"], "tickets": ["T2"], "orders": ["R2"]}),
    ],
)
def test_polars_and_sql_renderings_select_the_same_rows(tmp_path, dims, expected):
    filters = Filters.create(JAN, **dims, scope=Scope())
    narrowed = narrow(frames_from_rows(TABLES), filters)
    got = {
        "opportunities": narrowed.opportunities.select("opportunity_id").collect().to_series().sort().to_list(),
        "tickets": narrowed.tickets.select("ticket_id").collect().to_series().sort().to_list(),
        "orders": narrowed.orders.select("order_id").collect().to_series().sort().to_list(),
    }
    assert got == expected

    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    store.ensure_schema()
    with store.transaction() as conn:
        for name, rows in TABLES.items():
            target = schema.polars_schema(name)
            store.insert_frame(conn, name, pl.DataFrame([{c: r.get(c) for c in target} for r in rows], schema=target))
    for name, key in (("opportunities", "opportunity_id"), ("tickets", "ticket_id"), ("orders", "order_id")):
        table = schema.table(name)
        read = store.read_table(name, [key], where=filters.sql_conditions(table)).frame
        assert sorted(read[key].to_list()) == expected[name], name


def test_sql_conditions_are_bound_parameters_and_cut_at_the_period_end():
    filters = Filters.create(JAN, regions=["Europe'; DROP TABLE customers; --"], scope=Scope())
    conditions = filters.sql_conditions(schema.tickets)
    sql = str(sa.select(schema.tickets.c.ticket_id).where(*conditions).compile())
    assert "DROP TABLE" not in sql  # the value travels as a parameter, not in the SQL text
    assert "tickets.created_at <" in sql


@pytest.mark.parametrize(
    ("low", "high", "grain", "expected"),
    [
        # months drawn at their first day: the brush covers the 1 Feb and 1 Mar points
        (date(2026, 1, 20), date(2026, 3, 10), "month", Period(date(2026, 2, 1), date(2026, 3, 31))),
        # a brush between two points takes the month holding its middle
        (date(2026, 2, 3), date(2026, 2, 20), "month", Period(date(2026, 2, 1), date(2026, 2, 28))),
        # weeks start on Monday: 2 Feb and 9 Feb 2026 are Mondays
        (date(2026, 2, 1), date(2026, 2, 9), "week", Period(date(2026, 2, 2), date(2026, 2, 15))),
        # kept inside the current period: June is cut at its 20th
        (date(2026, 5, 15), date(2026, 6, 25), "month", Period(date(2026, 6, 1), date(2026, 6, 20))),
        # dragged right to left
        (date(2026, 3, 10), date(2026, 1, 20), "month", Period(date(2026, 2, 1), date(2026, 3, 31))),
    ],
)
def test_a_brushed_range_becomes_whole_buckets(low, high, grain, expected):
    within = Period(date(2025, 7, 1), date(2026, 6, 20))
    assert period_from_range(low, high, grain, within) == expected
