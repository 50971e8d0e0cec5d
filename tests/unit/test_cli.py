"""The command line contract: import (all or nothing), metrics JSON, reports, init-demo, clear errors.

The store is built through ``python -m crm import`` from tiny CSV files whose
metric values are worked out by hand below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crm import schema
from crm.cli import main
from crm.metrics import METRICS
from crm.store import Store
from tests.conftest import ROOT

CSV: dict[str, str] = {
    "customers": """customer_id,name,email,region,segment,created_at
A,Alpha Ltd,ops@alpha.example,Europe,SMB,2025-01-01
B,Beta GmbH,,Asia,Enterprise,2025-02-01 10:00:00
""",
    "pipeline_stages": """stage,position,win_probability,kind
lead,1,0.1,open
qualified,2,0.25,open
proposal,3,0.5,open
negotiation,4,0.75,open
won,5,1,won
lost,6,0,lost
""",
    "opportunities": """opportunity_id,customer_id,owner,team,region,product,amount,created_at,expected_close_date,closed_at,stage,status,lost_reason
O1,A,Ann,East,Europe,Suite,100,2026-05-01 00:00:00,,2026-05-11 00:00:00,won,won,
O2,B,Bob,West,Asia,Suite,50,2026-05-02,,2026-05-05,lost,lost,price
O3,A,Ann,East,Europe,Suite,"1,200",2026-05-10,2026-07-15,,proposal,open,
""",
    "opportunity_stages": """opportunity_id,stage,entered_at
O1,lead,2026-05-01
O1,won,2026-05-11
O2,lead,2026-05-02
O2,lost,2026-05-05
O3,lead,2026-05-10
O3,proposal,2026-05-20T09:30
""",
    "tickets": """ticket_id,customer_id,created_at,first_response_at,resolved_at,status,priority,channel,team,agent,product,category,reopened
T1,A,2026-05-03 10:00,2026-05-03 10:30,2026-05-03 12:00,solved,urgent,email,Support,Eve,Suite,billing,0
T2,B,2026-05-04 09:00,,,open,normal,chat,Support,Fay,Suite,bug,
""",
    "survey_responses": """response_id,customer_id,ticket_id,kind,score,responded_at,comment,product,team,agent
S1,A,T1,nps,10,2026-05-04,great,Suite,Support,Eve
S2,A,,nps,9,2026-05-05,,Suite,,
S3,B,,nps,3,2026-05-06,slow,Suite,,
S4,A,T1,csat,5,2026-05-04,,Suite,Support,Eve
S5,B,,csat,2,2026-05-07,,Suite,Support,Fay
""",
    "orders": """order_id,customer_id,ordered_at,amount,channel
R1,A,2026-03-15,40,web
R2,B,2026-05-20,60,sales
""",
    "order_items": """order_id,product,quantity,amount
R1,Suite,1,40
R2,Suite,2,60
""",
    "interactions": """interaction_id,customer_id,opportunity_id,kind,occurred_at,owner,due_at,completed_at
I1,A,O1,call,2026-05-02 11:00,Ann,2026-05-02 12:00,2026-05-02 11:30
""",
}

MAY = ["--from", "2026-05-01", "--to", "2026-05-31"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def imported(tmp_path, capsys) -> str:
    """A new SQLite store filled table by table through `import` (the first import creates the schema)."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    for name in schema.BUSINESS_TABLES:
        path = tmp_path / f"{name}.csv"
        path.write_text(CSV[name], encoding="utf-8")
        code, _, err = run(capsys, "--db", url, "import", name, str(path))
        assert code == 0, err
        assert f"into {name}" in err
    return url


def test_every_canonical_table_imports(imported):
    store = Store(imported)
    expected = {name: CSV[name].strip().count("\n") for name in schema.BUSINESS_TABLES}
    assert {name: store.row_count(name) for name in schema.BUSINESS_TABLES} == expected
    assert store.data_version() == len(schema.BUSINESS_TABLES)  # every import bumps it once


def test_metrics_json_by_hand(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "metrics", *MAY, "--json", "--with-previous")
    assert code == 0
    m = json.loads(out)
    assert set(m) == {x.key for x in METRICS} | {"previous"}
    assert set(m["previous"]) == {x.key for x in METRICS}
    assert m["revenue_won"] == 100.0
    assert m["new_opportunities"] == 3
    assert m["win_rate"] == 0.5
    assert m["sales_cycle_days"] == 10.0
    assert m["pipeline_value"] == 1200.0  # "1,200" in the CSV
    assert m["weighted_pipeline"] == pytest.approx(600.0)  # proposal since 20 May: 0.5
    assert m["nps"] == pytest.approx(100 / 3) and m["nps_responses"] == 3  # 2 promoters, 1 detractor
    assert m["csat"] == 0.5 and m["csat_responses"] == 2
    assert m["first_response_p50_hours"] == 0.5  # only T1 was answered
    assert m["resolution_p50_hours"] == 2.0
    assert m["sla_breach_rate"] == 0.5  # T2 never answered, weeks past its 8 h target
    assert m["backlog"] == 1
    # active on 31 May: orders 3 Mar..31 May -> A, B; on 30 Apr: A only, still active in May: no churn
    assert m["active_customers"] == 2 and m["churn_rate"] == 0.0
    previous = m["previous"]  # 31 days before: 31 Mar .. 30 Apr
    assert previous["new_opportunities"] == 0 and previous["nps"] is None and previous["win_rate"] is None
    assert previous["active_customers"] == 1


def test_region_filter_on_the_command_line(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "metrics", *MAY, "--region", "Asia", "--json")
    m = json.loads(out)
    assert code == 0
    assert m["new_opportunities"] == 1 and m["win_rate"] == 0.0  # only O2 (lost)
    assert m["nps"] == -100.0 and m["backlog"] == 1  # B's detractor; T2 is B's


def test_funnel_report_json_is_a_list_of_rows(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "report", "funnel", *MAY, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    # cohort: 3 deals at lead; O3 reached proposal (so qualified too), O1 won (every open stage)
    assert [(r["stage"], r["reached"]) for r in rows] == [
        ("lead", 3), ("qualified", 2), ("proposal", 2), ("negotiation", 1), ("won", 1)]
    assert rows[1]["step_conversion"] == pytest.approx(2 / 3)
    assert rows[4]["cumulative_conversion"] == pytest.approx(1 / 3)


def test_report_csv_has_a_header_and_rows(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "report", "kpis", *MAY, "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("key,label,unit,value,previous")
    assert len(lines) == len(METRICS) + 1


def test_a_bad_row_rejects_the_whole_file(imported, tmp_path, capsys):
    store = Store(imported)
    before = (store.row_count("orders"), store.data_version())
    bad = tmp_path / "orders_bad.csv"
    bad.write_text("order_id,customer_id,ordered_at,amount\nR3,A,2026-05-21,10\nR4,B,yesterday,abc\nR1,A,2026-05-22,5\n")
    code, _, err = run(capsys, "--db", imported, "import", "orders", str(bad))
    assert code == 1
    assert "nothing was written" in err
    assert "row 3, column amount, value 'abc': not a number" in err
    assert "row 3, column ordered_at, value 'yesterday': not a timestamp" in err
    assert "row 4, column order_id, value 'R1': key already exists in the store" in err
    assert (store.row_count("orders"), store.data_version()) == before


def test_quarantine_loads_the_good_rows_and_keeps_the_bad(imported, tmp_path, capsys):
    bad = tmp_path / "surveys.csv"
    bad.write_text("response_id,kind,score,responded_at\nS9,nps,11,2026-05-09\nS10,csat,4,2026-05-09\nS11,vote,1,2026-05-09\n")
    quarantine = tmp_path / "rejected.csv"
    code, _, err = run(capsys, "--db", imported, "import", "survey_responses", str(bad), "--quarantine", str(quarantine))
    assert code == 0 and "2 bad row(s)" in err
    assert Store(imported).row_count("survey_responses") == 6
    rejected = quarantine.read_text()
    assert "S9" in rejected and "NPS scores are 0–10" in rejected
    assert "S11" in rejected and "must be one of nps, csat" in rejected
    assert "S10" not in rejected


def test_a_missing_required_column_rejects_the_file(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    path = tmp_path / "tickets.csv"
    path.write_text("ticket_id,priority\nT1,urgent\n")
    code, _, err = run(capsys, "--db", url, "import", "tickets", str(path))
    assert code == 1 and "column created_at" in err and "required column is missing" in err


def test_imported_stages_with_other_names_drive_the_funnel(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    files = {
        "pipeline_stages": "stage,position,win_probability,kind\nProspecting,1,0.2,open\nEngaging,2,0.6,open\n"
                           "Won,3,1,won\nLost,4,0,lost\n",
        "opportunities": "opportunity_id,amount,created_at,status,closed_at\nD1,10,2026-05-01,open,\n"
                         "D2,20,2026-05-02,won,2026-05-09\nD3,30,2026-05-03,lost,2026-05-04\n",
        "opportunity_stages": "opportunity_id,stage,entered_at\nD1,Prospecting,2026-05-01\nD1,Engaging,2026-05-03\n"
                              "D2,Prospecting,2026-05-02\nD2,Won,2026-05-09\nD3,Prospecting,2026-05-03\nD3,Lost,2026-05-04\n",
    }
    for name, text in files.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        assert run(capsys, "--db", url, "import", name, str(path))[0] == 0
    code, out, _ = run(capsys, "--db", url, "report", "funnel", *MAY, "--format", "json")
    assert code == 0
    assert [(r["stage"], r["reached"]) for r in json.loads(out)] == [("Prospecting", 3), ("Engaging", 2), ("Won", 1)]
    code, out, _ = run(capsys, "--db", url, "metrics", *MAY, "--json")
    assert json.loads(out)["weighted_pipeline"] == pytest.approx(6.0)  # D1 engaging: 10 × 0.6


def test_init_demo_is_deterministic_and_ends_on_the_as_of_date(tmp_path, capsys):
    outputs = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        code, _, err = run(capsys, "--db", url, "init-demo", "--seed", "3", "--scale", "0.1", "--as-of", "2026-03-31")
        assert code == 0 and "through 2026-03-31" in err
        outputs.append(run(capsys, "--db", url, "metrics", "--json")[1])
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["new_opportunities"] > 0  # the default 90 days end on the last day with data


def test_usage_errors_exit_2(imported, capsys):
    code, _, err = run(capsys, "--db", imported, "metrics", "--from", "2026-06-01", "--to", "2026-05-01")
    assert code == 2 and "is after --to" in err
    code, _, err = run(capsys, "--db", imported, "report", "no_such_report")
    assert code == 2 and "unknown report 'no_such_report'" in err


def test_the_module_entry_point_reports_errors_without_a_traceback(tmp_path):
    missing = tmp_path / "missing.csv"
    for argv, message in (
        (["--db", "postgresql://nobody@127.0.0.1:1/x", "metrics", "--json"], "cannot reach the database"),
        (["--db", f"sqlite:///{tmp_path / 'x.db'}", "import", "orders", str(missing)], "no such file"),
    ):
        done = subprocess.run([sys.executable, "-m", "crm", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""


def test_cli_finds_the_store_like_the_app(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    assert run(capsys, "init-demo", "--scale", "0.05", "--as-of", "2026-01-31")[0] == 0
    assert Path(tmp_path / "env.db").is_file()


def test_satisfaction_drill_report_by_hand(imported, capsys):
    argv = ["--db", imported, "report", "satisfaction_drill", *MAY, "--level", "agent", "--within", "product:Suite",
            "--within", "team:Support", "--format", "json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    rows = json.loads(out)
    # CSAT: Fay 2 -> 0 %, Eve 5 -> 100 %, worst first; NPS: Eve's promoter only (S2, S3 have no team)
    assert [(r["agent"], r["csat"], r["csat_n"], r["nps"], r["nps_n"]) for r in rows] == [
        ("Fay", 0.0, 1, None, 0), ("Eve", 1.0, 1, 100.0, 1)]
    assert all(r["low_confidence"] for r in rows)
    code, _, err = run(capsys, "--db", imported, "report", "satisfaction_drill", "--within", "Suite")
    assert code == 2 and "--within takes LEVEL:VALUE" in err


def test_nps_trend_report_by_hand(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "report", "nps_trend", *MAY, "--format", "json")
    assert code == 0
    (may,) = json.loads(out)
    assert (may["bucket"], may["n"], may["promoters"], may["passives"], may["detractors"]) == ("2026-05-01", 3, 2, 0, 1)
    assert may["score"] == pytest.approx(100 / 3)
    # x = (+1, +1, -1): mean 1/3, population variance 1 - 1/9 = 8/9; half width 1.96 * 100 * sqrt(8/27)
    assert may["high"] - may["score"] == pytest.approx(1.96 * 100 * (8 / 27) ** 0.5)
    assert may["compared_score"] is None  # no responses in April


def test_sla_and_service_times_reports_by_hand(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "report", "sla", *MAY, "--format", "json")
    assert code == 0
    assert [(r["priority"], r["target_hours"], r["tickets"], r["breached"]) for r in json.loads(out)] == [
        ("urgent", 1.0, 1, 0), ("high", 4.0, 0, 0), ("normal", 8.0, 1, 1), ("low", 24.0, 0, 0)]
    code, out, _ = run(capsys, "--db", imported, "report", "service_times", *MAY, "--by", "agent", "--format", "json")
    rows = {r["agent"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"Eve", "Fay"}
    assert rows["Eve"]["first_response_p50"] == 0.5 and rows["Eve"]["resolution_p50"] == 2.0
    assert rows["Fay"]["first_response_p50"] is None and rows["Fay"]["sla_breach_rate"] == 1.0
    # T1 was answered Sunday 3 May 10:00-10:30: no business time at all
    code, out, _ = run(capsys, "--db", imported, "report", "service_times", *MAY, "--basis", "business", "--format", "json")
    assert json.loads(out)[0]["first_response_p50"] == 0.0


def test_an_option_a_report_cannot_use_is_a_usage_error(imported, capsys):
    code, _, err = run(capsys, "--db", imported, "report", "service_times", "--by", "owner")
    assert code == 2 and "unknown breakdown 'owner'; one of team, agent, priority, channel" in err
    code, _, err = run(capsys, "--db", imported, "report", "funnel", "--by", "agent")
    assert code == 2 and "unknown breakdown 'agent'" in err


def test_churn_trend_report_by_hand(imported, capsys):
    code, out, _ = run(capsys, "--db", imported, "report", "churn_trend", *MAY, "--window", "30", "--format", "json")
    assert code == 0
    (may,) = json.loads(out)
    # 30-day window: nobody ordered 1..30 April; B's first order on 20 May makes B new and active on 31 May
    assert (may["active_before"], may["active_customers"], may["churned"], may["churn_rate"]) == (0, 1, 0, None)
    assert (may["new"], may["returning"], may["reactivated"]) == (1, 0, 0)
