"""The reports and commands behind the Next product and Churn risk pages, on hand-made data: `report cross_sell`
on the baskets of tests/unit/test_cross_sell.py (every figure worked out there by hand), and `report churn_risk` /
`churn-model` on a store with a planted rule (a customer who meets an SLA breach orders nothing again)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl
import pytest

from crm import auth, schema
from crm.cli import main
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.reports import CROSS_SELL_COLUMNS, ReportOptionError, ReportOptions, build_report
from crm.scope import Scope
from crm.store import Store
from tests.unit.test_cross_sell import JUNE, ORDERS

# --- cross_sell --------------------------------------------------------------------------------------------


def basket_rows() -> dict[str, list[dict[str, object]]]:
    """The hand-made baskets of tests/unit/test_cross_sell.py as canonical rows; customers X…W owned by Ann,
    U and T by Bob."""
    orders = [{"order_id": o, "customer_id": c, "ordered_at": datetime.fromisoformat(at), "amount": amount}
              for o, c, at, amount, _ in ORDERS]
    items = [{"order_id": o, "product": p, "quantity": 1, "amount": 1.0} for o, *_, products in ORDERS for p in products]
    customers = [{"customer_id": c, "name": f"Customer {c}", "owner": "Bob" if c in "UT" else "Ann", "region": "Europe",
                  "segment": "SMB", "created_at": datetime(2026, 1, 1)} for c in "XYZWVUT"]
    return {"orders": orders, "order_items": items, "customers": customers}


def test_cross_sell_gives_one_row_per_rule_above_both_thresholds():
    frames = frames_from_rows(basket_rows())
    rules = build_report("cross_sell", frames, Filters.create(JUNE, scope=Scope()),
                         ReportOptions(min_support=0.3, min_confidence=0.6))
    assert rules.columns == list(CROSS_SELL_COLUMNS)
    # support 2/6 for every pair; confidence 2/3 for B → A, C → A, B → C, C → B (A → B and A → C: 1/2, left out);
    # lift 4/3 for B and C both ways, 1 for the pairs with A; bought the antecedent by 30 June, never the
    # consequent: C → B only Z
    assert rules.rows() == [
        ("B", "C", pytest.approx(2 / 6), pytest.approx(2 / 3), pytest.approx(4 / 3), 0),
        ("C", "B", pytest.approx(2 / 6), pytest.approx(2 / 3), pytest.approx(4 / 3), 1),
        ("B", "A", pytest.approx(2 / 6), pytest.approx(2 / 3), pytest.approx(1.0), 0),
        ("C", "A", pytest.approx(2 / 6), pytest.approx(2 / 3), pytest.approx(1.0), 0),
    ]
    everything = build_report("cross_sell", frames, Filters.create(JUNE, scope=Scope()), ReportOptions(0, 0))
    assert everything.height == 6  # the defaults of 1% and 10% keep every pair bought together (D with nothing)
    with pytest.raises(ReportOptionError, match="from 0 to 1"):
        build_report("cross_sell", frames, Filters.create(JUNE, scope=Scope()), ReportOptions(min_support=5))


def _store(tmp_path: Path, rows: dict[str, list[dict[str, object]]]) -> Store:
    """A SQLite store holding ``rows`` (canonical tables), and the rep bob who sees Bob's customers."""
    frames = {}
    for name, records in rows.items():
        target = schema.polars_schema(name)
        frames[name] = pl.DataFrame([{c: r.get(c) for c in target} for r in records], schema=target, orient="row")
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.replace_business_data(frames)
    auth.add_user(store, "bob", "rep", "a long enough password", scope=Scope(owners=("Bob",)))
    return store


def _run(capsys, store: Store, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", str(store.url), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cross_sell_through_the_cli_with_thresholds_and_a_scope(tmp_path, capsys):
    store = _store(tmp_path, basket_rows())
    june = ["--from", "2026-06-01", "--to", "2026-06-30"]
    code, out, err = _run(capsys, store, "report", "cross_sell", *june, "--min-support", "0.3", "--min-confidence",
                          "0.6", "--format", "json")
    assert code == 0, err
    assert [(r["antecedent"], r["consequent"], r["customers_missing"]) for r in json.loads(out)] == [
        ("B", "C", 0), ("C", "B", 1), ("B", "A", 0), ("C", "A", 0)]
    # Bob sees U and T: in June one basket, U's {D}; T bought A in May. No pair bought together: no rule
    code, out, err = _run(capsys, store, "--as", "bob", "report", "cross_sell", *june, "--format", "json")
    assert (code, json.loads(out)) == (0, []), err
    with pytest.raises(SystemExit) as usage:
        _run(capsys, store, "report", "cross_sell", *june, "--min-support", "2")
    assert usage.value.code == 2 and "a share from 0 to 1" in capsys.readouterr().err


def test_cross_sell_targets_lists_who_bought_the_first_product_and_never_the_second(tmp_path, capsys):
    store = _store(tmp_path, basket_rows())
    june = ["--from", "2026-06-01", "--to", "2026-06-30"]
    # A → B: Z (A in June, never B; June orders 30 + 5) and T (A in May only, 60): by June revenue, then lifetime
    code, out, err = _run(capsys, store, "report", "cross_sell_targets", *june, "--rule", "A -> B", "--format", "json")
    assert code == 0, err
    assert [(r["customer_id"], r["name"], r["revenue"], r["lifetime_revenue"]) for r in json.loads(out)] == [
        ("Z", "Customer Z", 35.0, 35.0), ("T", "Customer T", 0.0, 60.0)]
    # the arrow may be →; Bob sees only T among them
    code, out, err = _run(capsys, store, "--as", "bob", "report", "cross_sell_targets", *june, "--rule", "A→B",
                          "--format", "json")
    assert (code, [r["customer_id"] for r in json.loads(out)]) == (0, ["T"]), err
    # A → C: only T (X, Y and Z bought C); its count is the cross_sell report's customers_missing for A → C
    code, out, err = _run(capsys, store, "report", "cross_sell_targets", *june, "--rule", "A -> C")
    assert code == 0 and out.splitlines()[1:] == ["T,Customer T,Bob,Europe,SMB,0.0,60.0"], err
    for argv, message in ((["--rule", "A -> Q"], "no order holds 'Q'; the products: A, B, C, D"),
                          (["--rule", "A -> A"], "names 'A' on both sides"), ([], "needs --rule 'A -> B'")):
        code, out, err = _run(capsys, store, "report", "cross_sell_targets", *june, *argv)
        assert (code, out) == (2, "") and message in err
    with pytest.raises(SystemExit) as usage:
        _run(capsys, store, "report", "cross_sell_targets", *june, "--rule", "A B")
    assert usage.value.code == 2 and "two products joined by ->" in capsys.readouterr().err


# --- churn_risk and churn-model ----------------------------------------------------------------------------

D = date(2026, 6, 30)
GRID = [D - timedelta(days=495 - 15 * k) for k in range(34)]
"""Every 15 days from D − 495 to D, the data's last day: the days everyone orders (until they leave) and opens
a ticket."""
STOP = {i: GRID[4 + i] for i in range(30)}
"""Customers B00…B29 order for the last time on GRID[4 + i] (D − 435 + 15 i); C00…C29 never stop."""


def planted_rows() -> dict[str, list[dict[str, object]]]:
    """60 customers alike in every way but one: from the day of their last order on, every ticket of B00…B29
    breaches its 4-hour target (answered after 6 h), and they never order again; C00…C29's tickets are answered
    in 1 h and they keep ordering. On any day a customer is active, "1+ SLA breaches in the last 90 days" holds
    exactly for those who churn (no order in the 90 days after): the ticket of their last order's day counts."""
    customers, orders, tickets = [], [], []
    for i in range(60):
        leaver = i < 30
        cid = f"B{i:02d}" if leaver else f"C{i - 30:02d}"
        customers.append({"customer_id": cid, "name": f"Customer {cid}", "owner": "Bob" if i % 2 else "Ann",
                          "region": "Europe", "segment": "SMB", "created_at": datetime(2024, 1, 1)})
        for k, day in enumerate(GRID):
            if not leaver or day <= STOP[i]:
                orders.append({"order_id": f"{cid}-o{k}", "customer_id": cid, "amount": 10.0,
                               "ordered_at": datetime.combine(day, time(10))})
            created = datetime.combine(day, time(12))
            late = leaver and day >= STOP[i]
            tickets.append({"ticket_id": f"{cid}-t{k}", "customer_id": cid, "created_at": created, "priority": "high",
                            "first_response_at": created + timedelta(hours=6 if late else 1), "status": "closed"})
    return {"customers": customers, "orders": orders, "tickets": tickets}


@pytest.fixture(scope="module")
def planted():
    return frames_from_rows(planted_rows())


def test_churn_risk_ranks_the_customers_the_planted_rule_puts_at_risk(planted):
    risk = build_report("churn_risk", planted, Filters.create(Period(D - timedelta(days=89), D), scope=Scope()))
    # active on D (an order from D − 89 on): every C, and B24…B29 (last orders D − 75 … D), who churn: risk 1
    # (their tree leaf: every training case churned). Revenue = their orders in the 365 days up to D: GRID[9] =
    # D − 360 … their last, i − 4 orders of $10 for B_i.
    leavers = [f"B{i}" for i in range(29, 23, -1)]
    assert risk.height == 36
    assert risk["customer_id"].head(6).to_list() == leavers
    assert risk["risk"].to_list() == [1.0] * 6 + [0.0] * 30
    assert risk["revenue"].head(6).to_list() == [10.0 * (i - 4) for i in range(29, 23, -1)]
    assert risk["revenue_at_risk"].head(6).to_list() == risk["revenue"].head(6).to_list()
    assert set(risk["rule"].head(6)) == {"1+ SLA breaches in the last 90 days → 100% churned"}
    assert set(risk["rule"].tail(30)) == {"no SLA breaches in the last 90 days → 0% churned"}
    assert risk["customer_id"].tail(30).to_list() == sorted(f"C{i:02d}" for i in range(30))  # no risk: by id
    bob = build_report("churn_risk", planted, Filters.create(Period(D, D), scope=Scope(owners=("Bob",))))
    assert bob["customer_id"].to_list() == ["B29", "B27", "B25", *(f"C{i:02d}" for i in range(1, 30, 2))]
    assert bob.drop("customer_id").equals(risk.filter(pl.col("owner") == "Bob").drop("customer_id"))


def test_churn_risk_of_a_view_without_active_customers_lists_nobody(planted):
    nobody = build_report("churn_risk", planted, Filters.create(Period(D, D), customers=["B00", "nobody"], scope=Scope()))
    assert nobody.is_empty() and "revenue_at_risk" in nobody.columns  # B00 left long ago


def test_churn_risk_on_too_little_history_lists_nobody(planted):
    early = build_report("churn_risk", planted, Filters.create(Period(GRID[12], GRID[12]), scope=Scope()))
    assert early.is_empty() and "revenue_at_risk" in early.columns


def test_churn_model_commands(tmp_path, capsys):
    store = _store(tmp_path, planted_rows())
    code, out, err = _run(capsys, store, "churn-model", "evaluate", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["as_of"], summary["evaluation_date"], summary["model"]) == ("2026-06-30", "2026-04-01", "tree")
    assert summary["auc"] == summary["models"]["tree"]["auc"] == 1.0  # the planted rule, found on the held-back date
    assert summary["naive_rule"]["auc"] < 1.0 and {"precision_top10", "recall_top10"} <= set(summary)
    code, out, err = _run(capsys, store, "churn-model", "train", "--json")
    fitted = json.loads(out)
    assert (code, fitted["model"], fitted["as_of"]) == (0, "tree", "2026-06-30")
    assert [(r["rule"], r["churn_rate"]) for r in fitted["rules"]] == [
        ("1+ SLA breaches in the last 90 days", 1.0), ("no SLA breaches in the last 90 days", 0.0)]
    code, out, err = _run(capsys, store, "--as", "bob", "churn-model", "score", "--json")
    assert code == 0, err
    assert [r["customer_id"] for r in json.loads(out)][:3] == ["B29", "B27", "B25"]
    code, out, err = _run(capsys, store, "--as", "bob", "churn-model", "evaluate")
    assert code == 1 and out == "" and "describes every customer of the store" in err
    code, out, err = _run(capsys, store, "churn-model", "evaluate", "--as-of", "2025-06-01")
    assert code == 1 and "too little history" in err
