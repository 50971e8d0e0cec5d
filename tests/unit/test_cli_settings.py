"""``python -m crm settings show`` / ``settings set churn_basis ...``: the store setting, its errors, and the
metrics, reports and stores that follow it."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from crm.cli import main
from crm.dataset import load_frames
from crm.settings import ChurnBasis, load_churn_basis
from crm.store import Store

CUSTOMERS = """customer_id,name,region,created_at,churned_at
A,Alpha,Europe,2026-01-01,
B,Beta,Europe,2026-01-01,2026-05-15
C,Gamma,Asia,2026-05-10,
"""
ORDERS = """order_id,customer_id,ordered_at,amount
R1,A,2026-05-20,40
R2,B,2026-04-01,60
"""
MAY = ["--from", "2026-05-01", "--to", "2026-05-31"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url(tmp_path, capsys) -> str:
    """A SQLite store with three customers (one cancelled on 15 May) and two orders."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    for name, text in (("customers", CUSTOMERS), ("orders", ORDERS)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        code, _, err = run(capsys, "--db", url, "import", name, str(path))
        assert code == 0, err
    return url


def test_show_on_a_new_store_prints_the_defaults_and_writes_nothing(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, out, err = run(capsys, "--db", url, "settings", "show")
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith("churn_basis = activity  # active on a day = an order dated within the 90 days")
    assert 'sla_targets = {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}' in out
    assert not Store(url).has_schema()


def test_set_saves_the_basis_bumps_the_version_and_show_reads_it(url, capsys):
    store = Store(url)
    assert store.data_version() == 2  # two imports
    code, _, err = run(capsys, "--db", url, "settings", "set", "churn_basis", " Subscription ")
    assert code == 0
    assert err.startswith("churn_basis = subscription (was activity): active on a day = created (creation date) on or before it")
    assert err.rstrip().endswith("data version 3")
    assert load_churn_basis(store) is ChurnBasis.SUBSCRIPTION and store.data_version() == 3
    code, out, _ = run(capsys, "--db", url, "settings", "show")
    assert code == 0 and out.startswith("churn_basis = subscription  # ")
    code, _, err = run(capsys, "--db", url, "settings", "set", "churn_basis", "subscription")
    assert code == 0 and "(unchanged)" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["set", "churn_basis", "monthly"], "error: churn_basis is activity or subscription, not 'monthly'"),
    (["set", "window", "30"], "error: unknown setting 'window'; settings set changes churn_basis"),
    (["set", "churn_basis"], "error: settings set takes KEY VALUE, e.g. settings set churn_basis subscription"),
    (["show", "churn_basis"], "error: settings show takes no KEY"),
])
def test_bad_settings_are_usage_errors_and_change_nothing(url, capsys, argv, message):
    code, out, err = run(capsys, "--db", url, "settings", *argv)
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith(message)
    assert "Traceback" not in err
    store = Store(url)
    assert load_churn_basis(store) is ChurnBasis.ACTIVITY and store.data_version() == 2


def test_metrics_and_reports_follow_the_basis(url, capsys):
    # activity (90 days): 30 Apr sees orders of 31 Jan .. 30 Apr {B (1 Apr)}; 31 May sees 3 Mar .. 31 May
    # {A (20 May), B}: nobody churned
    code, out, _ = run(capsys, "--db", url, "metrics", *MAY, "--json")
    m = json.loads(out)
    assert code == 0 and (m["active_customers"], m["churn_rate"]) == (2, 0.0)
    assert run(capsys, "--db", url, "settings", "set", "churn_basis", "subscription")[0] == 0
    # subscription: 30 Apr {A, B}; 31 May {A, C}: B cancelled on 15 May -> 1 of 2
    code, out, _ = run(capsys, "--db", url, "metrics", *MAY, "--json")
    m = json.loads(out)
    assert code == 0 and (m["active_customers"], m["churn_rate"]) == (2, 0.5)
    code, out, _ = run(capsys, "--db", url, "report", "churn_trend", *MAY, "--format", "json")
    [may] = json.loads(out)
    assert (may["active_before"], may["active_customers"], may["churned"], may["new"], may["returning"]) == (2, 2, 1, 1, 1)
    code, out, _ = run(capsys, "--db", url, "report", "churn_by", *MAY, "--by", "region", "--format", "json")
    assert [(r["region"], r["active_before"], r["churned"]) for r in json.loads(out)] == [("Europe", 2, 1), ("Asia", 0, 0)]


def test_a_store_from_before_churned_at_reads_and_gains_the_column(url):
    """A store written before customers had churned_at: reads see the column empty (nothing is written
    on a read); the next write adds it with ALTER TABLE."""
    store = Store(url)
    with store.transaction() as conn:
        conn.execute(sa.text('ALTER TABLE customers DROP COLUMN churned_at'))
    assert "churned_at" not in store.column_names(["customers"])["customers"]
    frames = load_frames(store)
    assert frames.customers.height == 3 and frames.customers["churned_at"].null_count() == 3
    store.ensure_schema()
    assert "churned_at" in store.column_names(["customers"])["customers"]
    assert load_frames(store).customers["churned_at"].null_count() == 3
