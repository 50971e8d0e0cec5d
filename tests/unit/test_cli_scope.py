"""`python -m crm --as USER ...`: the user's scope narrows metrics, reports and exports; their role decides
what they may change; an unknown or disabled user is an error, never "every row"."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest
from argon2 import PasswordHasher

from crm import auth
from crm.cli import main
from crm.store import Store
from tests.conftest import AS_OF

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
Q2 = ["--from", "2026-04-01", "--to", "2026-06-30"]
REP_OWNER = auth.DEMO_OWNER


@pytest.fixture
def store(tmp_path, demo_frames, monkeypatch) -> Store:
    monkeypatch.setattr(auth, "HASHER", CHEAP)
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.replace_business_data(demo_frames)
    auth.add_demo_users(store)
    return store


def run(capsys, store: Store, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", str(store.url), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def won_in_q2(deals: pl.DataFrame) -> pl.DataFrame:
    closed = pl.col("closed_at").cast(pl.Datetime("us"))
    return deals.filter((pl.col("status") == "won") & (closed >= datetime(2026, 4, 1)) & (closed < datetime(2026, 7, 1)))


def test_as_a_rep_the_metrics_are_their_own_deals(store, demo_frames, capsys):
    deals = demo_frames["opportunities"]
    code, out, err = run(capsys, store, "--as", "rep", "metrics", "--json", *Q2)
    assert code == 0, err
    mine = won_in_q2(deals.filter(pl.col("owner") == REP_OWNER))
    every = won_in_q2(deals)
    seen = json.loads(out)
    assert seen["won_deals"] == mine.height and 0 < mine.height < every.height
    assert seen["revenue_won"] == pytest.approx(float(mine["amount"].sum()), abs=0.005)
    code, out, _ = run(capsys, store, "metrics", "--json", *Q2)  # without --as: whoever holds the URL
    assert json.loads(out)["won_deals"] == every.height


def test_as_a_rep_a_filter_on_another_owner_shows_nothing(store, capsys):
    code, out, err = run(capsys, store, "--as", "rep", "report", "deals", "--format", "json", "--owner", "Kai Lopes", *Q2)
    assert code == 0, err
    assert json.loads(out) == []
    code, out, err = run(capsys, store, "--as", "rep", "report", "deals", "--format", "json", *Q2)
    owners = {row["owner"] for row in json.loads(out)}
    assert owners == {REP_OWNER}


def test_as_a_manager_every_deal_is_in_their_region(store, demo_frames, capsys):
    code, out, err = run(capsys, store, "--as", "manager", "report", "deals", "--format", "json", *Q2)
    assert code == 0, err
    rows = json.loads(out)
    assert rows and {row["region"] for row in rows} == {"Europe"}


@pytest.mark.parametrize(("who", "argv", "words"), [
    ("rep", ["settings", "set", "churn_basis", "subscription"], "the rep role may not change what counts as churn"),
    ("analyst", ["users", "list"], "the analyst role may not manage users"),
    ("manager", ["audit"], "the manager role may not read the audit log"),
    ("exec", ["customers", "merges"], "the executive role may not merge customers"),
    ("analyst", ["imports", "list"], "the analyst role may not import data"),
])
def test_as_a_role_without_the_right_a_change_is_refused_and_nothing_is_written(store, capsys, who, argv, words):
    before = store.data_version()
    code, _, err = run(capsys, store, "--as", who, *argv)
    assert code == 1 and words in err
    assert store.data_version() == before


def test_as_an_unknown_or_disabled_user_is_an_error_not_every_row(store, capsys):
    code, out, err = run(capsys, store, "--as", "nobody", "metrics", "--json", *Q2)
    assert code == 1 and out == "" and "no user named 'nobody'" in err
    auth.disable_user(store, "rep", actor="test", now=datetime.combine(AS_OF, datetime.min.time()))
    code, out, err = run(capsys, store, "--as", "rep", "metrics", "--json", *Q2)
    assert code == 1 and out == "" and "disabled" in err


def test_as_an_admin_a_change_is_audited_as_that_user(store, capsys):
    code, _, err = run(capsys, store, "--as", "admin", "settings", "set", "churn_basis", "subscription")
    assert code == 0, err
    code, _, err = run(capsys, store, "--as", "admin", "users", "disable", "analyst")
    assert code == 0, err
    entries = auth.read_audit(store).filter(pl.col("action") == "user.disabled")
    assert entries["actor"].to_list() == ["admin"]
