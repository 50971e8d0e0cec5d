"""The example exports in data/examples/ imported through the CLI, checked against their READMEs.

Each folder's README.md lists EXPECTED values computed on the raw file with
pandas / plain Python (no ``crm`` code). Every test here starts from a fresh
SQLite store, runs ``import --mapping`` exactly as a user would, and compares
the store (``Store.read``) and the CLI's ``metrics`` / ``report`` JSON with
those values. Decoded texts (Latin-1 accents, GBK Chinese) are also compared
with the raw bytes decoded by the standard library's ``csv`` module.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from crm import schema
from crm.cli import main
from crm.store import Store
from tests.conftest import ROOT

EXAMPLES = ROOT / "data" / "examples"
FULL = ["--from", "2026-01-01", "--to", "2026-11-30"]
MAY = ["--from", "2026-05-01", "--to", "2026-05-31"]
REL = 1e-9  # floats: the READMEs print 6 decimals, the CLI must match the exact value

ROWS: dict[str, dict[str, int]] = {
    "sales_pipeline": {"pipeline_stages": 4, "customers": 19, "opportunities": 40, "opportunity_stages": 99},
    "helpdesk_events": {"tickets": 12},
    "helpdesk_tickets": {"tickets": 32, "survey_responses": 22},
    "survey_latin1": {"survey_responses": 35},
    "orders_whitespace": {"orders": 53, "order_items": 53},
    "customer_status_xlsx": {"customers": 30},
    "customers_gbk": {"customers": 30},
}
"""Rows per table after importing each example (README "rows: ...")."""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def mapping_of(name: str) -> Path:
    return EXAMPLES / name / "mapping.toml"


def import_example(capsys, tmp_path: Path, name: str) -> tuple[str, str]:
    """Import one example into a fresh store; returns (url, stderr)."""
    url = f"sqlite:///{tmp_path}/crm.db"
    code, _, err = run(capsys, "--db", url, "import", "--mapping", str(mapping_of(name)))
    assert code == 0, err
    written = ", ".join(f"{n} into {t}" for t, n in ROWS[name].items())
    assert re.search(rf"import \d+: {re.escape(written)}; data version 1", err), err
    return url, err


def metrics(capsys, url: str, period: list[str]) -> dict:
    code, out, err = run(capsys, "--db", url, "metrics", *period, "--json")
    assert code == 0, err
    return json.loads(out)


def report(capsys, url: str, name: str, period: list[str], *extra: str) -> list[dict]:
    code, out, err = run(capsys, "--db", url, "report", name, *period, *extra, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def read(url: str, table: str) -> pl.DataFrame:
    with Store(url) as store:
        return store.read(table)


def counts(frame: pl.DataFrame, column: str) -> dict:
    return dict(Counter(frame[column].to_list()))


def per_month(frame: pl.DataFrame, column: str) -> dict[int, int]:
    return dict(Counter(frame[column].dt.month().to_list()))


def raw_rows(name: str, file: str, encoding: str, delimiter: str = ",") -> list[dict[str, str]]:
    """The source file read with the standard library only (the independent decoding)."""
    text = (EXAMPLES / name / file).read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def approx(value: float) -> object:
    return pytest.approx(value, rel=REL, abs=1e-9)


# --- sales_pipeline -----------------------------------------------------------


def test_sales_pipeline(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "sales_pipeline")
    assert "sales_pipeline.csv: CSV, utf-8" in err

    stages = read(url, "pipeline_stages").sort("position")
    assert stages.select("stage", "position", "win_probability", "kind").rows() == [
        ("Prospecting", 1, 0.1, "open"), ("Engaging", 2, 0.5, "open"), ("Won", 3, 1.0, "won"), ("Lost", 4, 0.0, "lost")]

    opps = read(url, "opportunities")
    assert opps.height == 40 and opps["opportunity_id"].n_unique() == 40
    customers = read(url, "customers")  # one per account, created on its first deal (README)
    assert customers.height == 19 and set(customers["customer_id"]) == set(opps["customer_id"])
    assert (customers["name"] == customers["customer_id"]).all()
    created = dict(customers.select("customer_id", "created_at").rows())
    assert (created["Acme Corporation"], created["Betasoloin"]) == (datetime(2026, 8, 26), datetime(2026, 2, 28))
    assert counts(opps, "stage") == {"Won": 16, "Lost": 10, "Engaging": 8, "Prospecting": 6}
    assert counts(opps, "status") == {"won": 16, "lost": 10, "open": 14}
    assert counts(opps, "product") == {"GTK 500": 5, "GTX Basic": 5, "GTX Plus Basic": 8, "GTX Plus Pro": 9,
                                       "GTX Pro": 4, "MG Advanced": 4, "MG Special": 5}
    assert counts(opps, "team") == {"Cara Losch": 5, "Celia Rouche": 7, "Dustin Brinkmann": 10,
                                    "Melvin Marxen": 9, "Rocco Neubert": 9}
    assert counts(opps, "region") == {"Central": 19, "East": 14, "West": 7}
    open_deals = opps.filter(pl.col("status") == "open")
    assert open_deals["amount"].to_list() == [0.0] * 14  # blank close_value, default = 0
    assert open_deals["closed_at"].null_count() == 14
    assert opps["amount"].null_count() == 0 and opps["created_at"].null_count() == 0
    assert opps.filter(pl.col("status") == "won")["amount"].sum() == approx(103448.0)

    history = read(url, "opportunity_stages")
    assert history.height == 99
    assert counts(history, "stage") == {"Prospecting": 40, "Engaging": 33, "Won": 16, "Lost": 10}
    lost_early = history.filter(pl.col("opportunity_id") == "ELTSPGZ4").sort("entered_at")
    assert lost_early.select("stage", "entered_at").rows() == [
        ("Prospecting", datetime(2026, 1, 27)), ("Lost", datetime(2026, 2, 6))]
    # MM/DD/YYYY: the history's dates equal the deal's own created/closed dates
    created = history.filter(pl.col("stage") == "Prospecting").join(opps, on="opportunity_id")
    assert (created["entered_at"] == created["created_at"]).all()
    final = history.filter(pl.col("stage").is_in(["Won", "Lost"])).join(opps, on="opportunity_id")
    assert final.height == 26 and (final["entered_at"] == final["closed_at"]).all()
    assert (final["stage"] == final["stage_right"]).all()

    full = metrics(capsys, url, FULL)
    assert full["new_opportunities"] == 40
    assert full["revenue_won"] == approx(103448.0)
    assert (full["won_deals"], full["lost_deals"], full["open_deals"]) == (16, 10, 14)
    assert full["win_rate"] == approx(16 / 26)
    assert full["sales_cycle_days"] == approx(47.0)
    assert full["pipeline_value"] == approx(0.0) and full["weighted_pipeline"] == approx(0.0)

    may = metrics(capsys, url, MAY)
    assert may["new_opportunities"] == 2
    assert may["revenue_won"] == approx(16347.0)
    assert (may["won_deals"], may["lost_deals"], may["open_deals"]) == (5, 2, 4)
    assert may["win_rate"] == approx(5 / 7)
    assert may["sales_cycle_days"] == approx(45.0)
    assert may["pipeline_value"] == approx(7120.0)
    assert may["weighted_pipeline"] == approx(3560.0)

    funnel = report(capsys, url, "funnel", FULL)
    assert [(r["stage"], r["reached"]) for r in funnel] == [("Prospecting", 40), ("Engaging", 33), ("Won", 16)]
    velocity = {r["stage"]: r for r in report(capsys, url, "stage_velocity", FULL)}
    assert (velocity["Prospecting"]["deals"], velocity["Prospecting"]["median_days"], velocity["Prospecting"]["p75_days"]) \
        == (34, approx(7.0), approx(9.0))
    assert (velocity["Engaging"]["deals"], velocity["Engaging"]["median_days"], velocity["Engaging"]["p75_days"]) \
        == (25, approx(45.0), approx(64.0))


# --- helpdesk_events ----------------------------------------------------------

EVENT_TICKETS = [  # README table: created_at, first_response_at, resolved_at, agent, priority
    ("Case 1", "2026-01-12 09:14:37", "2026-01-12 10:50:32", "2026-01-15 08:40:42", "Marco Rossi", "normal"),
    ("Case 2", "2026-02-03 14:02:11", "2026-02-03 19:14:35", "2026-02-08 01:00:20", "Giulia Bianchi", "high"),
    ("Case 3", "2026-03-17 08:31:02", "2026-03-18 05:41:52", "2026-03-24 16:41:52", "Sara Colombo", "low"),
    ("Case 4", "2026-04-08 11:45:50", "2026-04-08 18:06:30", "2026-04-11 10:37:00", "Marco Rossi", "high"),
    ("Case 5", "2026-05-04 10:05:19", "2026-05-04 10:46:56", "2026-05-05 13:52:21", "Paolo Greco", "urgent"),
    ("Case 6", "2026-05-14 16:20:44", None, "2026-05-14 16:47:06", None, "normal"),
    ("Case 7", "2026-05-26 09:00:03", "2026-05-26 11:30:33", "2026-05-30 13:02:03", "Sara Colombo", "high"),
    ("Case 8", "2026-06-22 13:37:58", "2026-06-22 23:37:58", "2026-06-27 05:37:58", "Giulia Bianchi", "low"),
    ("Case 9", "2026-08-10 07:55:26", "2026-08-10 15:35:46", None, "Marco Rossi", "normal"),
    ("Case 10", "2026-09-29 15:10:40", "2026-09-29 16:06:15", None, "Paolo Greco", "urgent"),
    ("Case 11", "2026-11-03 12:12:12", "2026-11-03 15:32:52", "2026-11-06 01:43:42", "Sara Colombo", "high"),
    ("Case 12", "2026-11-24 17:48:09", None, None, None, "low"),
]


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def test_helpdesk_events(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "helpdesk_events")
    assert "helpdesk_events.csv: CSV, utf-8" in err and "46 rows" in err

    tickets = read(url, "tickets")
    got = {r["ticket_id"]: r for r in tickets.to_dicts()}
    assert sorted(got) == sorted(t[0] for t in EVENT_TICKETS)
    for ticket_id, created, first, resolved, agent, priority in EVENT_TICKETS:
        row = got[ticket_id]
        assert (row["created_at"], row["first_response_at"], row["resolved_at"], row["agent"], row["priority"]) \
            == (_ts(created), _ts(first), _ts(resolved), agent, priority), ticket_id
    assert counts(tickets, "priority") == {"normal": 3, "high": 4, "low": 3, "urgent": 2}

    full = metrics(capsys, url, FULL)
    assert full["tickets_created"] == 12
    assert full["first_response_p50_hours"] == approx(3.3444444444444444)  # 3 h 20 min 40 s
    assert full["first_response_p90_hours"] == approx(10.0)
    assert full["resolution_p50_hours"] == approx(257165 / 3600)          # 71.434722
    assert full["resolution_p90_hours"] == approx(124.83611111111111)
    assert full["sla_breach_rate"] == approx(3 / 12)                     # Case 2, Case 4, Case 12
    assert full["backlog"] == 3                                          # Case 9, 10, 12

    sla = {r["priority"]: (r["tickets"], r["breached"]) for r in report(capsys, url, "sla", FULL)}
    assert sla == {"urgent": (2, 0), "high": (4, 2), "normal": (3, 0), "low": (3, 1)}
    watch = report(capsys, url, "sla_watchlist", FULL)
    assert [(r["ticket_id"], r["sla"]) for r in watch] == [("Case 12", "breached")]


# --- helpdesk_tickets ---------------------------------------------------------


def test_helpdesk_tickets(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "helpdesk_tickets")
    assert err.count("tickets.csv: CSV, utf-8") == 1 and "32 rows, 16 columns" in err

    tickets = read(url, "tickets")
    assert tickets.height == 32 and tickets["ticket_id"].n_unique() == 32  # the quoted line break is one cell
    assert counts(tickets, "priority") == {"high": 11, "low": 9, "normal": 9, "urgent": 3}
    assert per_month(tickets, "created_at") == {1: 3, 2: 4, 3: 3, 4: 3, 5: 4, 7: 2, 8: 5, 9: 2, 10: 1, 11: 5}
    by_id = {r["ticket_id"]: r for r in tickets.to_dicts()}
    # offsets converted to naive UTC, including the three boundary rows
    assert by_id["TCK-260001"]["created_at"] == datetime(2026, 1, 8, 19, 21, 30)   # 20:21:30+01:00
    assert by_id["TCK-260007"]["created_at"] == datetime(2026, 2, 28, 23, 30, 5)   # 2026-03-01 00:30:05+01:00
    assert by_id["TCK-260017"]["resolved_at"] == datetime(2026, 5, 31, 23, 40, 40)  # 2026-06-01 01:40:40+02:00
    assert by_id["TCK-260032"]["created_at"] == datetime(2026, 11, 30, 23, 30, 0)  # 2026-12-01 00:30:00+01:00
    assert by_id["TCK-260016"]["first_response_at"] is None and by_id["TCK-260016"]["resolved_at"] is not None
    assert tickets["resolved_at"].null_count() == 6
    # every timestamp equals the raw offset timestamp converted to UTC (standard library only)
    raw = raw_rows("helpdesk_tickets", "tickets.csv", "utf-8")
    assert len(raw) == 32
    for source, column in (("Created", "created_at"), ("First Response", "first_response_at"), ("Resolved", "resolved_at")):
        for r in raw:
            want = None
            if r[source]:
                aware = datetime.fromisoformat(r[source])
                want = (aware - aware.utcoffset()).replace(tzinfo=None)
            assert by_id[r["Ticket ID"]][column] == want, (r["Ticket ID"], column)

    responses = read(url, "survey_responses")
    assert responses.height == 22
    assert counts(responses, "kind") == {"csat": 22}
    assert (responses["response_id"] == responses["ticket_id"]).all()
    assert sorted(int(s) for s in responses["score"]) == [1, 2, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4,
                                                         5, 5, 5, 5, 5, 5, 5]
    rated_17 = responses.filter(pl.col("response_id") == "TCK-260017").row(0, named=True)
    assert (rated_17["score"], rated_17["responded_at"]) == (5, datetime(2026, 5, 31, 23, 40, 40))

    full = metrics(capsys, url, FULL)
    assert (full["csat"], full["csat_responses"]) == (approx(14 / 22), 22)
    assert full["tickets_created"] == 32  # TCK-260032 is in the full period in UTC
    assert full["first_response_p50_hours"] == approx(4.207638888888889)
    assert full["first_response_p90_hours"] == approx(24.583277777777777)
    assert full["resolution_p50_hours"] == approx(50.228333333333333)
    assert full["resolution_p90_hours"] == approx(89.590694444444444)
    assert full["sla_breach_rate"] == approx(11 / 32)
    assert full["backlog"] == 6

    may = metrics(capsys, url, MAY)
    assert (may["csat"], may["csat_responses"]) == (approx(2 / 3), 3)  # scores 3, 4, 5; TCK-260017 counts in May


# --- survey_latin1 ------------------------------------------------------------


def test_survey_latin1(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "survey_latin1")
    assert "latin-1 (detected)" in err
    assert "delimiter semicolon" in err and "40 rows, 6 columns" in err

    responses = read(url, "survey_responses")
    assert responses.height == 35
    assert counts(responses, "kind") == {"nps": 35}
    by_id = {r["response_id"]: r for r in responses.to_dicts()}
    assert by_id["R_7X8s51fbLtByHwi"]["comment"] == "Mécontent : produit reçu abîmé"  # the first row
    assert by_id["R_D5bgfTFAbGOUBwX"]["product"] == "Señal Router"
    assert by_id["R_QlNnVxKW3x9KsQu"]["comment"] == "Rápido y fácil; volveré a comprar"  # quoted ";"
    # every text equals the Latin-1 decoding of the raw bytes, and NA rows are skipped
    raw = raw_rows("survey_latin1", "surveys.csv", "latin-1", ";")
    assert len(raw) == 40 and sum(r["NPS"] == "NA" for r in raw) == 5
    scored = [r for r in raw if r["NPS"] != "NA"]
    assert sorted(by_id) == sorted(r["RespondentID"] for r in scored)
    for r in scored:
        row = by_id[r["RespondentID"]]
        assert (row["comment"], row["product"], row["score"]) == (r["Comment"] or None, r["Product"], int(r["NPS"]))
        day, month, year = map(int, r["Date"].split("/"))  # dd/mm/yyyy
        assert row["responded_at"] == datetime(year, month, day)
    assert sum('"' in r["Comment"] for r in scored) == 1  # the doubled "" quote, read as one
    texts = "".join(responses["comment"].drop_nulls().to_list() + responses["product"].drop_nulls().to_list())
    assert not set(texts) & set("ńŕčżŞį")  # cp1250 / iso8859_10 mis-decodings
    assert per_month(responses, "responded_at") == {2: 3, 3: 2, 4: 4, 5: 12, 6: 2, 7: 4, 10: 6, 11: 2}

    full = metrics(capsys, url, FULL)
    assert (full["nps"], full["nps_responses"]) == (approx(100 * (16 - 12) / 35), 35)
    may = metrics(capsys, url, MAY)
    assert (may["nps"], may["nps_responses"]) == (approx(100 * (7 - 3) / 12), 12)
    trend = {r["bucket"]: r for r in report(capsys, url, "nps_trend", FULL)}
    assert sum(r["promoters"] for r in trend.values()) == 16
    assert sum(r["passives"] for r in trend.values()) == 7
    assert sum(r["detractors"] for r in trend.values()) == 12
    may_bucket = trend["2026-05-01"]
    assert (may_bucket["n"], may_bucket["promoters"], may_bucket["passives"], may_bucket["detractors"]) == (12, 7, 2, 3)


# --- orders_whitespace --------------------------------------------------------


def test_orders_whitespace(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "orders_whitespace")
    assert err.count("orders.txt: CSV") == 1 and "delimiter whitespace" in err and "53 rows, 4 columns" in err

    orders = read(url, "orders")
    items = read(url, "order_items")
    assert orders.height == 53 and items.height == 53
    assert sorted(orders["order_id"].to_list(), key=int) == [str(i) for i in range(1, 54)]  # @row, 1-based
    customers = sorted(set(orders["customer_id"].to_list()))
    assert len(customers) == 18 and customers[0] == "00001" and customers[-1] == "00018"  # zero padding kept
    assert orders.schema["customer_id"] == pl.String
    by_id = {r["order_id"]: r for r in orders.to_dicts()}
    assert (by_id["1"]["customer_id"], by_id["1"]["ordered_at"], by_id["1"]["amount"]) \
        == ("00001", datetime(2026, 5, 12), approx(52.61))
    assert (by_id["53"]["customer_id"], by_id["53"]["ordered_at"], by_id["53"]["amount"]) \
        == ("00018", datetime(2026, 8, 17), approx(15.32))
    assert orders["amount"].sum() == approx(1429.27)
    assert items["amount"].sum() == approx(1429.27)
    assert items["quantity"].sum() == 111
    zero = orders.filter(pl.col("amount") == 0)
    assert zero.select("customer_id", "ordered_at").rows() == [("00007", datetime(2026, 1, 13))]
    monthly = orders.group_by(pl.col("ordered_at").dt.month().alias("m")).agg(pl.col("amount").sum())
    assert {m: round(v, 2) for m, v in monthly.rows()} == {
        1: 75.49, 2: 12.34, 3: 68.42, 5: 188.92, 6: 319.44, 7: 168.08, 8: 160.77, 9: 41.01, 10: 322.67, 11: 72.13}
    # the item lines are the same lines: same @row id, same amount
    joined = orders.join(items, on="order_id")
    assert joined.height == 53 and (joined["amount"] == joined["amount_right"]).all()

    assert metrics(capsys, url, FULL)["active_customers"] == 8
    q3 = metrics(capsys, url, ["--from", "2026-07-01", "--to", "2026-09-30"])
    assert q3["churn_rate"] == approx(6 / 11)
    autumn = metrics(capsys, url, ["--from", "2026-10-01", "--to", "2026-11-30"])
    assert autumn["churn_rate"] == approx(3 / 9)


# --- customer_status_xlsx -----------------------------------------------------


def test_customer_status_xlsx(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "customer_status_xlsx")
    assert "customer_status.xlsx: XLSX, 30 rows, 10 columns" in err  # the Customers sheet, not About

    customers = read(url, "customers")
    assert customers.height == 30 and customers["customer_id"].n_unique() == 30
    assert counts(customers, "lifecycle_stage") == {"active": 23, "churned": 7}  # also "yes" and "no "
    assert counts(customers, "country") == {"Germany": 6, "United Kingdom": 13, "Ireland": 11}
    assert counts(customers, "segment") == {"Enterprise": 10, "Small Business": 12, "Consumer": 8}
    assert per_month(customers, "created_at") == {1: 4, 2: 1, 3: 2, 4: 2, 5: 5, 6: 4, 7: 1, 8: 2, 9: 5, 10: 4}
    assert customers["created_at"].min() == datetime(2026, 1, 2)
    assert customers["created_at"].max() == datetime(2026, 10, 29)
    assert (customers["created_at"].dt.time() == datetime.min.time()).all()  # Excel dates: no time of day
    assert customers.filter(pl.col("phone").is_null())["customer_id"].to_list() == ["6054-WOKEL"]
    first = customers.filter(pl.col("customer_id") == "1201-PDYME").row(0, named=True)
    assert (first["name"], first["created_at"], first["lifecycle_stage"]) == \
        ("Emily Clarke", datetime(2026, 1, 24), "active")
    assert customers["customer_id"].str.contains(r"^\d{4}-[A-Z]{5}$").all()

    # churned_at: "Yes" is the snapshot date 2026-11-30 (README), "No" is missing
    churned = customers.filter(pl.col("churned_at").is_not_null())
    assert churned["churned_at"].unique().to_list() == [datetime(2026, 11, 30)]
    assert sorted(churned["customer_id"]) == sorted(customers.filter(pl.col("lifecycle_stage") == "churned")["customer_id"])
    assert sorted(churned["customer_id"]) == ["1540-PTIIR", "2572-VSWGA", "4011-RORWQ", "4357-SCDAY", "5385-DUDGG",
                                              "7020-GKUHP", "9822-ORECA"]
    assert "every customers.churned_at in customer_status.xlsx is on 2026-11-30" in err  # expected for a snapshot

    # README "Expected values": activity basis (no orders), then the subscription basis
    november, october = ["--from", "2026-11-01", "--to", "2026-11-30"], ["--from", "2026-10-01", "--to", "2026-10-31"]
    m = metrics(capsys, url, november)
    assert (m["active_customers"], m["churn_rate"]) == (0, None)
    assert main(["--db", url, "settings", "set", "churn_basis", "subscription"]) == 0
    capsys.readouterr()
    m = metrics(capsys, url, november)
    assert (m["active_customers"], m["churn_rate"]) == (23, approx(7 / 30))
    m = metrics(capsys, url, october)
    assert (m["active_customers"], m["churn_rate"]) == (30, 0.0)
    m = metrics(capsys, url, FULL)
    assert (m["active_customers"], m["churn_rate"]) == (23, None)
    [summary] = report(capsys, url, "churn_summary", november)
    assert (summary["active_customers"], summary["churn_rate"]) == (23, approx(7 / 30))
    # the previous period, 2 .. 31 October: active on 1 October 26 (no signup on 1 Oct), on 31 October 30
    assert (summary["active_customers_previous"], summary["churn_rate_previous"]) == (30, 0.0)
    trend = {r["month"]: r for r in report(capsys, url, "churn_trend", FULL)}
    assert {int(k[5:7]): r["new"] for k, r in trend.items() if r["new"]} == \
        {1: 4, 2: 1, 3: 2, 4: 2, 5: 5, 6: 4, 7: 1, 8: 2, 9: 5, 10: 4}  # "created per month"
    assert [(r["active_before"], r["churned"]) for r in trend.values()][-2:] == [(26, 0), (30, 7)]  # Oct, Nov


# --- customers_gbk ------------------------------------------------------------


def test_customers_gbk(tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, "customers_gbk")
    assert "gb18030 (detected)" in err and "30 rows, 7 columns" in err

    customers = read(url, "customers")
    assert customers.height == 30 and customers["customer_id"].n_unique() == 30
    first = customers.filter(pl.col("customer_id") == "KH2026101").row(0, named=True)
    assert [first[c] for c in ("customer_id", "name", "region", "city", "phone")] == \
        ["KH2026101", "南京华强商贸有限公司", "江苏省", "南京市", "+8619870890672"]
    assert first["created_at"] == datetime(2026, 10, 23)
    assert counts(customers, "region") == {"上海市": 2, "北京市": 1, "四川省": 7, "山东省": 1, "广东省": 6,
                                           "江苏省": 6, "浙江省": 6, "湖北省": 1}
    assert counts(customers, "industry") == {"信息技术服务": 2, "制造业": 6, "医疗器械": 4, "建筑业": 5,
                                             "批发和零售业": 4, "教育培训": 2, "物流运输": 5, "餐饮业": 2}
    assert counts(customers, "country") == {"China": 30}
    assert per_month(customers, "created_at") == {1: 2, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 1, 8: 4, 9: 4, 10: 6, 11: 5}
    q1 = customers.filter(pl.col("created_at").is_between(datetime(2026, 1, 1), datetime(2026, 3, 31)))
    assert q1.height == 4
    municipalities = customers.filter(pl.col("region").is_in(["北京市", "上海市"]))
    assert municipalities.height == 3 and (municipalities["region"] == municipalities["city"]).all()
    # every text and date equals the GBK decoding of the raw bytes (standard library only)
    raw = raw_rows("customers_gbk", "customers.csv", "gbk")
    assert len(raw) == 30
    assert sum("/" in r["注册日期"] for r in raw) == 20 and sum("-" in r["注册日期"] for r in raw) == 10
    by_id = {r["customer_id"]: r for r in customers.to_dicts()}
    for r in raw:
        row = by_id[r["客户编号"]]
        assert (row["name"], row["region"], row["city"], row["phone"], row["industry"]) == \
            (r["客户名称"], r["省"], r["市"], e164_china(r["手机"]), r["行业"])
        assert row["created_at"] == datetime.combine(date.fromisoformat(r["注册日期"].replace("/", "-")),
                                                     datetime.min.time())
    phones = customers["phone"].to_list()
    assert {"+8619692619242", "+861088618889", "+8619341909169"} <= set(phones)  # every style, one E.164 form


def e164_china(typed: str) -> str:
    """A Chinese number as E.164 by the numbering plan's rule: digits only, +86 in front, the trunk 0 of a
    landline's area code dropped (010-88618889 -> +861088618889)."""
    digits = "".join(ch for ch in typed if ch.isdigit())
    digits = digits.removeprefix("86") if typed.startswith("+") else digits.removeprefix("0")
    return "+86" + digits


# --- every example: dry run, undo -------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROWS))
def test_dry_run_writes_nothing(name, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/crm.db"
    code, _, err = run(capsys, "--db", url, "import", "--mapping", str(mapping_of(name)), "--dry-run")
    assert code == 0, err
    assert "dry run: would write " + ", ".join(f"{n} row(s) to {t}" for t, n in ROWS[name].items()) in err
    assert "nothing was written (dry run)" in err
    with Store(url) as store:
        assert store.data_version() == 0
        assert all(store.row_count(t) == 0 for t in schema.BUSINESS_TABLES)
    code, _, err = run(capsys, "--db", url, "imports", "list")
    assert code == 0 and "no imports yet" in err


@pytest.mark.parametrize("name", sorted(ROWS))
def test_undo_leaves_the_store_empty(name, tmp_path, capsys):
    url, err = import_example(capsys, tmp_path, name)
    batch = re.search(r"import (\d+): ", err)
    assert batch is not None, err
    with Store(url) as store:
        assert {t: store.row_count(t) for t in ROWS[name]} == ROWS[name]
    code, _, err = run(capsys, "--db", url, "imports", "undo", batch.group(1))
    assert code == 0, err
    assert f"import {batch.group(1)} undone: removed " in err
    with Store(url) as store:
        assert store.data_version() == 2
        for table in schema.BUSINESS_TABLES:
            assert read(url, table).height == 0, table
