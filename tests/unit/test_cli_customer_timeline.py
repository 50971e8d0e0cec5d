"""`python -m crm report customer_timeline --customer ID`: the timeline crm.customer_view builds, as CSV or JSON;
a missing --customer is a usage error (exit 2), an id outside the person's view an error (exit 1)."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import polars as pl
import pytest
from argon2 import PasswordHasher
from polars.testing import assert_frame_equal

from crm import auth
from crm.cli import main
from crm.customer_view import TIMELINE_SCHEMA, customer_timeline, view_filters
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.narrowing import narrow
from crm.scope import Scope
from crm.store import Store
from tests.conftest import AS_OF

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory, demo_frames) -> Store:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "HASHER", CHEAP)
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('timeline') / 'crm.db'}")
        store.replace_business_data(demo_frames)
        auth.add_demo_users(store)
    return store


@pytest.fixture(scope="module")
def busy(demo_frames) -> str:
    """The demo customer with the most deals (owned by someone other than the demo rep)."""
    deals = demo_frames["opportunities"].join(demo_frames["customers"].select("customer_id", owner_c="owner"),
                                              on="customer_id")
    counts = deals.filter(pl.col("owner_c") != auth.DEMO_OWNER).group_by("customer_id").len()
    return str(counts.sort(["len", "customer_id"], descending=[True, False])["customer_id"][0])


def run(capsys, store: Store, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", str(store.url), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected(store: Store, customer: str, day: date, scope: Scope | None = None) -> pl.DataFrame:
    filters = view_filters(Filters.create(Period(day, day), scope=scope or Scope()))
    return customer_timeline(narrow(load_frames(store), filters), customer, day)


def test_csv_is_the_timeline_crm_builds(store, busy, capsys):
    code, out, err = run(capsys, store, "report", "customer_timeline", "--customer", busy, "--to", "2026-05-31")
    assert code == 0, err
    printed = pl.read_csv(io.StringIO(out), schema=TIMELINE_SCHEMA, try_parse_dates=True)
    want = expected(store, busy, date(2026, 5, 31))
    assert want.height > 10 and set(want["kind"]) >= {"order", "deal_created", "ticket_opened"}
    assert printed.columns == ["at", "kind", "summary", "amount", "hours", "target_hours", "ref"]
    # CSV writes whole seconds, as every report does
    assert_frame_equal(printed, want.with_columns(pl.col("at").dt.truncate("1s")), check_exact=False)
    assert printed["at"].max() < datetime(2026, 6, 1)


def test_json_rows_and_the_default_day_is_the_last_day_with_data(store, busy, capsys):
    code, out, _ = run(capsys, store, "report", "customer_timeline", "--customer", busy, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    want = expected(store, busy, AS_OF)
    assert len(rows) == want.height
    assert [r["summary"] for r in rows] == want["summary"].to_list()
    assert rows[0].keys() == {"at", "kind", "summary", "amount", "hours", "target_hours", "ref"}


def test_missing_customer_is_a_usage_error(store, capsys):
    code, out, err = run(capsys, store, "report", "customer_timeline")
    assert code == 2 and out == ""
    assert "customer_timeline needs --customer ID" in err


def test_dimension_filters_are_refused(store, busy, capsys):
    code, _, err = run(capsys, store, "report", "customer_timeline", "--customer", busy, "--region", "Europe")
    assert code == 2 and "drop the --region" in err


def test_unknown_customer_and_a_customer_outside_the_scope_are_errors(store, busy, capsys):
    code, out, err = run(capsys, store, "report", "customer_timeline", "--customer", "C-NOPE")
    assert (code, out) == (1, "") and "no customer 'C-NOPE' in your view" in err
    code, out, err = run(capsys, store, "--as", "rep", "report", "customer_timeline", "--customer", busy)
    assert (code, out) == (1, "") and f"no customer '{busy}' in your view" in err


def test_as_a_rep_their_own_customer_shows_only_their_rows(store, demo_frames, capsys):
    own = demo_frames["customers"].filter(pl.col("owner") == auth.DEMO_OWNER)["customer_id"].sort()[0]
    code, out, err = run(capsys, store, "--as", "rep", "report", "customer_timeline", "--customer", own, "--format", "json")
    assert code == 0, err
    want = expected(store, own, AS_OF, Scope.create(owners=[auth.DEMO_OWNER]))
    assert [r["ref"] for r in json.loads(out)] == want["ref"].to_list()
    shown = {r["ref"] for r in json.loads(out) if r["kind"] == "deal_created"}
    theirs = demo_frames["opportunities"].filter((pl.col("customer_id") == own) & (pl.col("created_at") < datetime(2026, 7, 1)))
    mine = set(theirs.filter(pl.col("owner") == auth.DEMO_OWNER)["opportunity_id"])
    assert shown == mine and 0 < len(mine) < theirs.height  # the scope: a rep sees the deals they own, not the others
