"""PostgreSQL for real: the same demo data and the same numbers as SQLite, imports all or nothing.

Each run creates and drops its own databases (tests/conftest.py). Without a
server these skip; in CI (CRM_REQUIRE_POSTGRES=1) they fail instead.
"""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import schema
from crm.cli import main
from crm.dataset import COLUMNS, enrich, load_frames
from crm.filters import Filters, Period
from crm.metrics import compute_with_previous
from crm.narrowing import narrow
from crm.reports import ReportOptions, build_report
from crm.scope import Scope
from crm.store import Store
from tests.conftest import AS_OF

pytestmark = pytest.mark.postgres

Q2 = Period(date(2026, 4, 1), AS_OF)


def _key(name: str) -> list[str]:
    primary = [c.name for c in schema.table(name).primary_key.columns]
    return primary or list(COLUMNS[name])


@pytest.mark.parametrize("name", list(COLUMNS))
def test_every_table_reads_back_identically(pg_store, sqlite_store, demo_frames, name):
    pg = pg_store.read_table(name, COLUMNS[name])
    lite = sqlite_store.read_table(name, COLUMNS[name])
    assert (pg.path, lite.path) == ("adbc", "connectorx")  # the fastest reliable path per dialect
    expected = demo_frames[name].select(COLUMNS[name]).sort(_key(name))
    assert_frame_equal(pg.frame.sort(_key(name)), expected, check_column_order=False)
    assert_frame_equal(lite.frame.sort(_key(name)), expected, check_column_order=False)


def test_every_read_path_agrees_on_postgresql(pg_store):
    frames = {path: pg_store.read_table("tickets", path=path) for path in ("adbc", "connectorx", "sqlalchemy")}
    assert {path: read.path for path, read in frames.items()} == {p: p for p in frames}
    assert_frame_equal(frames["adbc"].frame.sort("ticket_id"), frames["sqlalchemy"].frame.sort("ticket_id"))
    assert_frame_equal(frames["connectorx"].frame.sort("ticket_id"), frames["sqlalchemy"].frame.sort("ticket_id"))


@pytest.fixture(scope="module")
def both_frames(pg_store, sqlite_store):
    return load_frames(pg_store), load_frames(sqlite_store)


@pytest.mark.parametrize(
    "filters",
    [
        Filters.create(Q2, scope=Scope()),
        Filters.create(Period(date(2026, 6, 1), AS_OF), regions=["Europe"], scope=Scope()),
        Filters.create(Period(date(2025, 7, 1), AS_OF), segments=["Enterprise"], teams=["Tier 1", "Team Atlas"], scope=Scope()),
    ],
    ids=["q2", "june-europe", "year-enterprise"],
)
def test_same_metrics_from_sqlite_postgresql_and_memory(both_frames, demo_frames, filters):
    pg, lite = both_frames
    memory = enrich(dict(demo_frames))
    results = [compute_with_previous(narrow(f, filters), filters.period) for f in (pg, lite, memory)]
    assert results[0] == results[1] == results[2]
    current, _ = results[0]
    assert current["new_opportunities"] > 0 and current["tickets_created"] > 0  # the filters keep real data


def test_same_funnel_on_both_stores(both_frames):
    pg, lite = both_frames
    for mode in ("cohort", "strict", "snapshot"):
        options = ReportOptions(mode=mode)
        assert_frame_equal(build_report("funnel", pg, Filters.create(Q2, scope=Scope()), options),
                           build_report("funnel", lite, Filters.create(Q2, scope=Scope()), options))


def test_init_demo_and_metrics_cli_agree_across_stores(new_pg_url, tmp_path, capsys):
    outputs = []
    for url in (new_pg_url(), f"sqlite:///{tmp_path / 'crm.db'}"):
        assert main(["--db", url, "init-demo", "--seed", "5", "--scale", "0.1", "--as-of", "2026-05-31"]) == 0
        capsys.readouterr()
        assert main(["--db", url, "metrics", "--json", "--with-previous"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["revenue_won"] > 0


def test_import_into_an_empty_postgresql_store_is_all_or_nothing(new_pg_url, tmp_path, capsys, request):
    url = new_pg_url()
    good = tmp_path / "customers.csv"
    good.write_text("customer_id,name,region,created_at\nA,Alpha,Europe,2026-01-01\nB,Beta,Asia,2026-01-02 10:00\n")
    assert main(["--db", url, "import", "customers", str(good)]) == 0  # creates the schema
    store = Store(url)
    request.addfinalizer(store.close)
    assert store.row_count("customers") == 2 and store.data_version() == 1

    bad = tmp_path / "more.csv"
    bad.write_text("customer_id,name,created_at\nC,Gamma,2026-01-03\nD,Delta,31/01/2026\n")
    assert main(["--db", url, "import", "customers", str(bad)]) == 1
    assert "row 3, column created_at, value '31/01/2026'" in capsys.readouterr().err
    assert store.row_count("customers") == 2 and store.data_version() == 1
    read = store.read("customers", ["customer_id", "created_at"]).sort("customer_id")
    assert read["created_at"].dt.hour().to_list() == [0, 10]


def test_a_failing_write_leaves_postgresql_untouched(new_pg_url, request):
    store = Store(new_pg_url())
    request.addfinalizer(store.close)
    store.replace_business_data({"customers": pl.DataFrame({"customer_id": ["A"]})})
    duplicate = pl.DataFrame({"customer_id": ["X", "X"]})  # primary key violation, after the delete
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.replace_business_data({"customers": duplicate})
    assert store.read("customers", ["customer_id"])["customer_id"].to_list() == ["A"]
    assert store.data_version() == 1


def test_segments_on_both_stores_and_saved_segments_on_postgresql(both_frames, new_pg_url, tmp_path, capsys):
    from crm import segments

    pg, lite = both_frames
    rule = segments.SegmentRule.for_filters(Filters.create(Q2, scope=Scope()), tiers=["Churn risk"],
                                            moved_from=["Loyal", "At Risk"])
    assert_frame_equal(segments.evaluate(pg, rule, Q2, scope=Scope()), segments.evaluate(lite, rule, Q2, scope=Scope()))
    assert_frame_equal(build_report("rfm_transitions", pg, Filters.create(Q2, scope=Scope())),
                       build_report("rfm_transitions", lite, Filters.create(Q2, scope=Scope())))

    url = new_pg_url()
    assert main(["--db", url, "init-demo", "--seed", "5", "--scale", "0.1", "--as-of", "2026-05-31"]) == 0
    with Store(url) as store:
        segments.save_segment(store, "Lapsing", segments.SegmentRule.create(tiers=["Churn risk", "Potential"]))
        segments.rename_segment(store, "Lapsing", "Lapsing customers")
        assert segments.list_saved(store)["name"].to_list() == ["Lapsing customers"]
    out = tmp_path / "lapsing.parquet"
    assert main(["--db", url, "export", "segment", "--name", "Lapsing customers", "--format", "parquet",
                 "--out", str(out)]) == 0
    exported = pl.read_parquet(out)
    with Store(url) as store:
        frames = load_frames(store)
        scores = segments.scores(frames, segments.SegmentRule(), frames.last_event_date(), scope=Scope())
        segments.delete_segment(store, "Lapsing customers")
        assert segments.list_saved(store).is_empty()
    expected = scores.filter(pl.col("tier").is_in(["Churn risk", "Potential"]))["customer_id"].sort()
    assert exported["customer_id"].sort().to_list() == expected.to_list()
    assert json.loads((tmp_path / "lapsing.parquet.manifest.json").read_text())["rows"] == exported.height


def test_subscription_churn_basis_agrees_across_stores(new_pg_url, tmp_path, capsys):
    outputs = []
    for url in (new_pg_url(), f"sqlite:///{tmp_path / 'basis.db'}"):
        assert main(["--db", url, "init-demo", "--seed", "5", "--scale", "0.1", "--as-of", "2026-05-31"]) == 0
        assert main(["--db", url, "metrics", "--json"]) == 0
        activity = json.loads(capsys.readouterr().out)
        assert main(["--db", url, "settings", "set", "churn_basis", "subscription"]) == 0
        assert main(["--db", url, "settings", "show"]) == 0
        assert capsys.readouterr().out.startswith("churn_basis = subscription")
        assert main(["--db", url, "metrics", "--json"]) == 0
        subscription = json.loads(capsys.readouterr().out)
        assert main(["--db", url, "report", "churn_trend", "--from", "2025-06-01", "--to", "2026-05-31", "--format", "json"]) == 0
        outputs.append((activity, subscription, json.loads(capsys.readouterr().out)))
    assert outputs[0] == outputs[1]
    activity, subscription, trend = outputs[0]
    assert subscription["active_customers"] != activity["active_customers"]  # the setting changed the numbers
    assert subscription["revenue_won"] == activity["revenue_won"]  # and only the customer ones
    assert sum(month["churned"] for month in trend) > 0  # demo customers carry cancellations


def test_a_postgresql_store_from_before_churned_at_reads_and_gains_the_column(new_pg_url, request):
    store = Store(new_pg_url())
    request.addfinalizer(store.close)
    store.replace_business_data({"customers": pl.DataFrame({"customer_id": ["A", "B"]})})
    with store.transaction() as conn:
        conn.exec_driver_sql("ALTER TABLE customers DROP COLUMN churned_at")
    frames = load_frames(store)  # read as empty; nothing written
    assert frames.customers["churned_at"].null_count() == 2
    assert "churned_at" not in store.column_names(["customers"])["customers"]
    store.ensure_schema()  # the next write adds it: ALTER TABLE ... ADD COLUMN churned_at TIMESTAMP
    assert "churned_at" in store.column_names(["customers"])["customers"]
    assert load_frames(store).customers["churned_at"].dtype == pl.Datetime("us")
