"""Failures a CLI user can cause end in one clear line and exit 1 or 2, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def crm(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crm", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "crm.db"
    done = crm("--db", f"sqlite:///{path}", "init-demo", "--scale", "0.05", "--as-of", "2026-06-30")
    assert done.returncode == 0, done.stderr
    return path


def test_a_missing_table(demo_db, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(demo_db.read_bytes())
    with sqlite3.connect(broken) as conn:
        conn.execute("DROP TABLE tickets")
    done = crm("--db", f"sqlite:///{broken}", "metrics", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: cannot read tickets from" in done.stderr and "no such table: tickets" in done.stderr


def test_a_read_only_store_refuses_an_import_and_keeps_its_data(demo_db, tmp_path):
    rows = tmp_path / "deals.csv"
    rows.write_text("opportunity_id,amount,created_at,status\nNEW1,5,2026-06-01,open\n")
    done = crm("--db", f"sqlite:///file:{demo_db}?mode=ro&uri=true", "import", "opportunities", str(rows))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "readonly database" in done.stderr and "nothing was written" in done.stderr
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT count(*) FROM opportunities WHERE opportunity_id = 'NEW1'").fetchone() == (0,)


def test_an_sqlite_folder_that_cannot_be_created():
    done = crm("--db", "sqlite:////proc/no-such-folder/crm.db", "metrics", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot create the folder /proc/no-such-folder for the SQLite store" in done.stderr


def test_export_out_naming_a_folder(demo_db, tmp_path):
    done = crm("--db", f"sqlite:///{demo_db}", "export", "segment", "--rule", '{"tiers": ["high value"]}', "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--out names a folder ({tmp_path})" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["metrics", "--from", "0001-01-01", "--to", "9999-12-31", "--json"], "0001-01-01 is outside 1900-01-01..2100-12-31"),
    (["report", "kpis", "--to", "2101-01-01"], "2101-01-01 is outside 1900-01-01..2100-12-31"),
])
def test_far_dates_on_the_command_line(demo_db, argv, message):
    done = crm("--db", f"sqlite:///{demo_db}", *argv)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_far_dates_in_the_store_are_left_out_of_the_numbers(demo_db, tmp_path):
    store = tmp_path / "far.db"
    store.write_bytes(demo_db.read_bytes())
    before = crm("--db", f"sqlite:///{store}", "metrics", "--from", "2026-04-01", "--to", "2026-06-30", "--json")
    with sqlite3.connect(store) as conn:  # another tool wrote placeholder dates
        conn.execute("INSERT INTO opportunities (opportunity_id, amount, created_at, status, closed_at) "
                     "VALUES ('FAR1', 10, '9999-12-31 00:00:00.000000', 'won', '9999-12-31 00:00:00.000000'), "
                     "('FAR2', 10, '0001-01-01 00:00:00.000000', 'lost', NULL)")
    after = crm("--db", f"sqlite:///{store}", "metrics", "--from", "2026-04-01", "--to", "2026-06-30", "--json")
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
