"""Every metric and report survives any store (issue 11), including one written by another tool.

Random values in every column of every business table are written straight into a new SQLite store (no
import checks them: NaN, infinities, negative and huge amounts, year 1 and year 9999, NUL bytes, scores off
their scale, events out of order, ids pointing nowhere). Then the data is loaded the way the app and the CLI
load it, every metric and every report is built for two periods, and the data version is read: nothing may
raise. Through the CLI, the same store answers `metrics --json` with exit code 0.

The import side (random files and mappings: loads or changes nothing) is tests/unit/test_ingest_properties.py.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm import cross_sell, schema
from crm.cli import main
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.metrics import compute_with_previous
from crm.narrowing import narrow
from crm.reports import REPORTS, ReportOptions, build_report
from crm.scope import Scope
from crm.store import Store

IDS = ["C1", "C2", "D1", "D2", "T1", "R1", "x" * 64, "ü北", "", "a\x00b"]
TEXTS = [None, "", "won", "lost", "open", "WON", "nps", "csat", "urgent", "low", "Europe", "lead", "won ", "<b>x</b>",
         "[l](http://x.example)", "=1+1", "a\x00b", "北京", "x" * 200]
FLOATS = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 7.5, 10.0, 11.0, 1e300, -1e300]),
                   st.floats(allow_nan=True, allow_infinity=True))
STAMPS = st.one_of(st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59), datetime(1899, 12, 31),
                                    datetime(2026, 1, 1), datetime(2026, 3, 15, 12), datetime(2026, 3, 31, 23, 59)]),
                   st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))


def _value(column: sa.Column) -> st.SearchStrategy[Any]:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        base: st.SearchStrategy[Any] = STAMPS
    elif isinstance(kind, sa.Date):
        base = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
    elif isinstance(kind, sa.Float):  # SQLite stores NaN as NULL: only a nullable column can hold it there
        base = FLOATS if column.nullable else FLOATS.filter(lambda v: not math.isnan(v))
    elif isinstance(kind, sa.Integer):
        base = st.integers(min_value=-(2**31), max_value=2**31 - 1)
    elif column.name.endswith("_id"):
        base = st.sampled_from([i for i in IDS if i])
    else:
        base = st.sampled_from([t for t in TEXTS if t is not None])
    return base if not column.nullable else st.one_of(st.none(), base)


@st.composite
def tables(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in schema.BUSINESS_TABLES:
        table = schema.table(name)
        columns = [c for c in table.columns if c.name != schema.IMPORT_BATCH]
        rows = draw(st.lists(st.fixed_dictionaries({c.name: _value(c) for c in columns}), max_size=4))
        key = schema.primary_key(name)
        if key is not None:  # the store's own key constraint: another tool cannot break that one
            seen: set[str] = set()
            rows = [r for r in rows if not (r[key] in seen or seen.add(r[key]))]  # type: ignore[func-returns-value]
        out[name] = rows
    return out


PERIODS = [Period(date(2026, 3, 1), date(2026, 3, 31))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=tables())
def test_any_store_gives_every_metric_and_report(rows):
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'crm.db'}"
        with Store(url) as store:
            store.ensure_schema()
            with store.transaction() as conn:
                for name, records in rows.items():
                    if records:
                        conn.execute(schema.table(name).insert(), records)
            frames = load_frames(store)
            for period in PERIODS:
                filters = Filters.create(period, scope=Scope())
                current, _ = compute_with_previous(narrow(frames, filters), filters.period)
                assert all(v is None or not isinstance(v, float) or math.isfinite(v) for v in current.values()), current
                anyone = frames.customers["customer_id"].drop_nulls().head(1).to_list()
                for name in REPORTS:
                    if name == "customer_timeline":  # the one report about one customer: any, when there is one
                        if anyone:
                            build_report(name, frames, filters, ReportOptions(customer=anyone[0]))
                        continue
                    if name == "cross_sell_targets":  # one rule: between the first two products, when there are two
                        products = cross_sell.products_ordered(frames)
                        if len(products) >= 2:
                            build_report(name, frames, filters, ReportOptions(rule=(products[0], products[1])))
                        continue
                    build_report(name, frames, filters, ReportOptions())


def test_a_hostile_store_through_the_cli(tmp_path, capsys):
    """One fixed store of the worst values, through `metrics --json`: exit 0 and finite numbers."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with Store(url) as store:
        store.ensure_schema()
        with store.transaction() as conn:
            conn.execute(schema.opportunities.insert(), [
                {"opportunity_id": "A", "amount": math.inf, "created_at": datetime(2026, 3, 1), "status": "won",
                 "closed_at": datetime(2026, 3, 2)},
                {"opportunity_id": "B", "amount": -1e300, "created_at": datetime(9999, 12, 31), "status": "won",
                 "closed_at": datetime(1, 1, 1)},
                {"opportunity_id": "C", "amount": 10.0, "created_at": datetime(2026, 3, 1), "status": "won",
                 "closed_at": datetime(2026, 3, 3)}])
            conn.execute(schema.survey_responses.insert(), [
                {"response_id": "S", "kind": "nps", "score": math.inf, "responded_at": datetime(2026, 3, 1)}])
    code = main(["--db", url, "metrics", "--json", "--from", "2026-03-01", "--to", "2026-03-31"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    m = json.loads(out)
    assert (m["revenue_won"], m["won_deals"], m["nps_responses"]) == (10.0, 1, 0)  # only C counts; no response


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_on_an_empty_store(tmp_path, name, capsys):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    Store(url).ensure_schema()
    one = {"customer_timeline": ["--customer", "C1"],  # the report about one customer
           "cross_sell_targets": ["--rule", "A -> B"]}.get(name, [])  # the report about one rule
    code = main(["--db", url, "report", name, "--format", "json", "--from", "2026-03-01", "--to", "2026-03-31", *one])
    _, err = capsys.readouterr()
    if name == "customer_timeline":  # an empty store has no customer C1: a clear error, not an empty table
        assert code == 1 and "no customer 'C1' in your view" in err and "Traceback" not in err, err
        return
    if name == "cross_sell_targets":  # an empty store has no orders, so no product A or B: a usage error
        assert code == 2 and "no order holds 'A', 'B'; the products: none" in err and "Traceback" not in err, err
        return
    assert code == 0 and "Traceback" not in err, err
