"""The import commands of the CLI: `import --mapping`, `imports list|undo`, `mapping suggest`; exit codes and messages."""

from __future__ import annotations

import getpass
import subprocess
import sys
from datetime import datetime

import pytest
import sqlalchemy as sa

from crm.cli import main
from crm.mapping import parse_mapping
from crm.store import Store
from tests.conftest import ROOT
from tests.unit.importing import rows, sales_mapping, write


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"


def cli(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _store_state(url: str) -> tuple[list[tuple], int]:
    with Store(url) as store:
        if not store.has_schema():
            return [], 0
        return rows(store, "tickets", ["ticket_id", "created_at", "priority"]), store.data_version()


TICKETS = """[[import]]
table = "tickets"
file = "t.csv"
[import.columns]
ticket_id = "id"
created_at = "opened"
priority = "prio"
"""


def test_import_mapping_prints_counts_and_how_each_file_was_read(tmp_path, url, capsys):
    write(tmp_path, "m.toml", sales_mapping(tmp_path))
    code, out, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))
    assert code == 0 and out == ""
    assert "sales.csv: CSV, utf-8 (detected), delimiter comma, 3 rows, 7 columns" in err
    assert "import 1: 3 into pipeline_stages, 3 into opportunities, 5 into opportunity_stages; data version 1" in err
    with Store(url) as store:
        assert store.row_count("opportunity_stages") == 5


def test_a_bad_row_exits_1_naming_row_column_value_and_rule(tmp_path, url, capsys):
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,2026-01-02,someday\n")
    write(tmp_path, "m.toml", TICKETS)
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))
    assert code == 1
    assert ("error: t.csv was not imported into tickets: 1 problem(s); nothing was written.\n"
            "  t.csv: row 3, column priority, value 'someday': must be one of urgent, high, normal, low") in err
    assert _store_state(url) == ([], 0)


def test_dry_run_exit_codes(tmp_path, url, capsys):
    write(tmp_path, "m.toml", TICKETS)
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,2026-01-02,High\n")
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"), "--dry-run")
    assert code == 0
    assert "dry run: would write 2 row(s) to tickets" in err and "nothing was written (dry run)" in err
    assert "problem" not in err

    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,2026-01-02,someday\nT3,later,low\n")
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"), "--dry-run")
    assert code == 1
    assert "2 problem(s), by rule:" in err
    assert "t.csv: row 3, column priority, value 'someday'" in err and "t.csv: row 4, column created_at, value 'later'" in err
    # with a quarantine folder the bad rows would be set aside: not a failure
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"), "--dry-run", "--quarantine",
                       str(tmp_path / "q"))
    assert code == 0 and "dry run: would write 1 row(s) to tickets" in err
    assert _store_state(url) == ([], 0) and not (tmp_path / "q").exists()


def test_quarantine_on_the_command_line(tmp_path, url, capsys):
    write(tmp_path, "m.toml", TICKETS)
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,2026-01-02,someday\n")
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"), "--quarantine", str(tmp_path / "q"))
    assert code == 0 and f"import 1: 1 into tickets; 1 bad row(s) written to {tmp_path / 'q'}; data version 1" in err
    assert (tmp_path / "q" / "tickets.csv").read_text().splitlines()[1].startswith("3,T2,2026-01-02,someday,\"priority: must be")

    write(tmp_path, "t.csv", "id,opened,prio\nT5,never,low\nT6,2026-01-02,someday\n")
    before = _store_state(url)
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"), "--quarantine", str(tmp_path / "q2"))
    assert code == 1 and "no valid rows to import (tickets from t.csv); nothing was written" in err
    assert _store_state(url) == before and not (tmp_path / "q2").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["import"], "import takes --mapping FILE.toml, or TABLE FILE"),
    (["import", "tickets"], "import TABLE FILE takes both a table and a file"),
    (["import", "--mapping", "m.json"], "a JSON mapping renames columns for import TABLE FILE"),
    (["import", "tickets", "t.csv", "--dry-run"], "--dry-run works with a mapping file"),
    (["import", "tickets", "t.csv", "--mapping", "m.toml"], "a TOML mapping names its own tables and files"),
    (["import", "deals", "t.csv"], "unknown table 'deals'"),
    (["imports", "undo"], "imports undo takes the id of an import"),
])
def test_usage_errors_exit_2(url, capsys, argv, message):
    code, _, err = cli(capsys, url, *argv)
    assert code == 2 and f"error: {message}" in err and err.startswith("usage: python -m crm")


def test_imports_list_and_undo(tmp_path, url, capsys):
    assert cli(capsys, url, "imports", "list")[2] == "no imports yet\n"
    write(tmp_path, "m.toml", TICKETS)
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\n")
    assert cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))[0] == 0
    write(tmp_path, "t.csv", "id,opened,prio\nT2,2026-01-02,high\nT3,2026-01-03,\n")
    assert cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))[0] == 0
    code, out, _ = cli(capsys, url, "imports", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "id,at,tables,files,rows,rejected,actor,status,undone_at,undone_by"
    assert [line.split(",")[0] for line in lines[1:]] == ["2", "1"]  # newest first
    actor = f"cli:{getpass.getuser()}"  # who ran the command, also in the audit log
    assert lines[1].endswith(f",tickets,t.csv,2,0,{actor},loaded,,")

    code, _, err = cli(capsys, url, "imports", "undo", "1")
    assert code == 1 and "error: import 2 changed the same tables after import 1: undo it first" in err
    code, _, err = cli(capsys, url, "imports", "undo", "2")
    assert code == 0 and err == "import 2 undone: removed 2 from tickets; data version 3\n"
    code, _, err = cli(capsys, url, "imports", "undo", "2")
    assert code == 1 and "error: import 2 was already undone on" in err
    assert _store_state(url) == ([("T1", datetime(2026, 1, 1), "low")], 3)
    code, out, _ = cli(capsys, url, "imports", "list")
    undone = out.splitlines()[1].split(",")
    assert undone[0] == "2" and undone[-3] == "loaded" and undone[-2] != "" and undone[-1] == actor  # undone_at is set


def test_a_database_error_exits_1_with_a_message(tmp_path, url, capsys):
    with Store(url) as store:
        store.ensure_schema()
        with store.transaction() as conn:
            conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON tickets BEGIN SELECT RAISE(ABORT, 'read only'); END"))
    write(tmp_path, "m.toml", TICKETS)
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\n")
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))
    assert code == 1 and "error: the database refused the import (read only); nothing was written" in err
    assert _store_state(url) == ([], 0)


def test_an_unreadable_file_is_named_in_the_rejection(tmp_path, url, capsys):
    (tmp_path / "junk.xlsx").write_bytes(bytes(range(256)) * 3)
    write(tmp_path, "m.toml", '[[import]]\ntable = "customers"\nfile = "junk.xlsx"\n[import.columns]\ncustomer_id = "id"\n')
    code, _, err = cli(capsys, url, "import", "--mapping", str(tmp_path / "m.toml"))
    assert code == 1
    assert "error: junk.xlsx was not imported into customers: 1 problem(s); nothing was written." in err
    assert "junk.xlsx: column (file): junk.xlsx is not a readable workbook" in err


def test_mapping_suggest_prints_a_mapping_that_reads_back(tmp_path, url, capsys):
    path = write(tmp_path, "deals.csv", "opportunity_id,deal_stage,close_value,engage_date\nA,Won,10,01/31/2026\n"
                                        "B,Lost,0,02/01/2026\nC,Engaging,,02/15/2026\n")
    code, out, _ = cli(capsys, url, "mapping", "suggest", str(path))
    assert code == 0 and out.startswith("# Draft mapping of deals.csv onto opportunities (CSV, utf-8 (detected)")
    block = parse_mapping(out, tmp_path).blocks[0]
    assert block.table == "opportunities" and block.file == path and block.date_formats == ("%m/%d/%Y",)


@pytest.mark.parametrize(("name", "content", "mapping", "message"), [
    ("m.toml", b"[[import]\n", None, "error: the mapping is not valid TOML"),
    ("m.toml", b'[[import]]\ntable = "customers"\nfile = "gone.csv"\n[import.columns]\ncustomer_id = "id"\n', None,
     "error: gone.csv was not imported into customers: 1 problem(s); nothing was written.\n"
     "  gone.csv: column (file): no such file"),
    ("junk.xlsx", bytes(range(256)) * 3,
     b'[[import]]\ntable = "customers"\nfile = "junk.xlsx"\n[import.columns]\ncustomer_id = "id"\n',
     "junk.xlsx is not a readable workbook"),
    ("none.toml", None, None, "error: cannot read mapping file"),
])
def test_no_traceback_for_bad_input(tmp_path, name, content, mapping, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    target = tmp_path / "m.toml"
    if mapping is not None:
        target.write_bytes(mapping)
    elif name == "none.toml":
        target = tmp_path / name
    done = subprocess.run([sys.executable, "-m", "crm", "--db", f"sqlite:///{tmp_path / 'crm.db'}", "import", "--mapping",
                           str(target)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
