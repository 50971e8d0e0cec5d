"""AppTest: the Data quality page on a small store with known bad rows written straight into it (counts,
drill rows, merge of a duplicate pair and its undo), and the cockpit's footer link to it."""

from __future__ import annotations

import time
from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from crm import quality, schema
from crm.dataset import DEMO_PIPELINE
from crm.store import Store
from tests.app.conftest import open_page

D = datetime
CUSTOMERS = [
    {"customer_id": "C1", "name": "Ada Works", "email": "ada@example.com", "country": "Germany", "city": "Berlin",
     "created_at": D(2025, 1, 1)},
    {"customer_id": "C2", "name": "Bob Foods", "email": "bob@example.com", "country": "France", "city": "Paris",
     "created_at": D(2025, 1, 2)},
    {"customer_id": "C3", "name": "Cora Metals", "email": "not an email", "country": "Italy", "city": "Rome",
     "created_at": D(2025, 1, 3)},
    {"customer_id": "DUP-A", "name": "Twin Trading", "email": "twin@example.com", "country": "United Kingdom",
     "city": "London", "created_at": D(2025, 1, 4)},
    {"customer_id": "DUP-B", "name": "Quay Supplies", "email": "twin@example.com", "country": "United Kingdom",
     "city": "London", "created_at": D(2025, 1, 5)},
]
ROWS: dict[str, list[dict]] = {
    "customers": CUSTOMERS,
    "pipeline_stages": DEMO_PIPELINE,
    "opportunities": [
        {"opportunity_id": "O1", "customer_id": "C1", "amount": 1000.0, "created_at": D(2026, 5, 1), "status": "open",
         "stage": "lead"},
        {"opportunity_id": "O2", "customer_id": "C2", "amount": -250.0, "created_at": D(2026, 5, 2), "status": "open",
         "stage": "lead"},  # negative amount
    ],
    "orders": [
        {"order_id": "X1", "customer_id": "DUP-B", "ordered_at": D(2026, 5, 3), "amount": 40.0},
        {"order_id": "X2", "customer_id": "NO-SUCH", "ordered_at": D(2026, 5, 4), "amount": 10.0},  # no customer
    ],
    "tickets": [
        {"ticket_id": "T1", "customer_id": "DUP-B", "created_at": D(2026, 5, 5, 9), "priority": "normal"},
        {"ticket_id": "T2", "customer_id": "C1", "created_at": D(2026, 5, 6, 10),
         "resolved_at": D(2026, 5, 6, 8), "priority": "high"},  # resolved before it was created
    ],
    "survey_responses": [
        {"response_id": "R1", "customer_id": "C1", "kind": "nps", "score": 9.0, "responded_at": D(2026, 5, 7)},
        {"response_id": "R2", "customer_id": "C2", "kind": "nps", "score": 7.5, "responded_at": D(2026, 5, 8)},
    ],
}
"""Five bad rows, one per rule; the counts below are these, by hand."""
SHOWN = {  # (table as shown, column, rows breaking the rule)
    ("Customers", "Email", 1), ("Opportunities", "Amount", 1), ("Orders", "Customer ID", 1),
    ("Tickets", "Resolved at", 1), ("Survey responses", "Score", 1),
}


def write_bad_store(url: str) -> Store:
    """A store holding ROWS, written with SQLAlchemy as another tool would (no validation)."""
    store = Store(url)
    store.ensure_schema()
    with store.transaction() as conn:
        for name, rows in ROWS.items():  # one executemany takes its columns from the first row: give every row all
            columns = {c for row in rows for c in row}
            conn.execute(schema.table(name).insert(), [{c: row.get(c) for c in columns} for row in rows])
        store.bump_version(conn)
    return store


@pytest.fixture
def bad_store(tmp_path, monkeypatch):
    """A SQLite store holding ROWS (see write_bad_store)."""
    store = write_bad_store(f"sqlite:///{tmp_path / 'bad.db'}")
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    yield store
    store.close()


def frame_with(at: AppTest, column: str) -> pl.DataFrame:
    """The one dataframe shown with a column called ``column``."""
    found = [pl.from_pandas(d.value) for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def footer_links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link") if link.proto.label.endswith("review")]


def open_quality(monkeypatch) -> tuple[AppTest, list[pl.DataFrame]]:
    grids: list[pl.DataFrame] = []
    monkeypatch.setattr("crm.ui.quality.data_grid", lambda frame, **_: grids.append(frame) or frame.head(0))
    at = open_page("pages/quality.py", {})
    assert not at.exception, at.exception
    return at, grids


def test_counts_scores_and_drill_on_a_store_with_bad_rows(bad_store, monkeypatch):
    at, grids = open_quality(monkeypatch)
    findings = frame_with(at, "Rule")
    assert set(findings.select("Table", "Column", "Rows").iter_rows()) == SHOWN
    assert findings.filter(pl.col("Column") == "Amount")["Rule"].to_list() == ["must not be negative"]
    assert findings.filter(pl.col("Column") == "Amount")["Left out of the numbers"].to_list() == [True]
    assert findings.filter(pl.col("Column") == "Email")["Left out of the numbers"].to_list() == [False]

    scores = frame_with(at, "Rows without an error")
    assert dict(scores.select("Table", "Score").iter_rows()) == {
        "Customers": 100.0, "Pipeline stages": 100.0,  # an invalid email is reported, not scored
        "Opportunities": 50.0, "Orders": 50.0, "Tickets": 50.0, "Survey responses": 50.0}
    assert next(m.value for m in at.metric if m.label == "Tables below 95") == "4 of 6"

    references = frame_with(at, "Problem")
    assert references.select("Table", "Column", "Rows").rows() == [("Orders", "Customer ID", 1)]

    fresh = frame_with(at, "How long ago")
    assert fresh.filter(pl.col("Table") == "Tickets")["Latest record"].to_list() == [D(2026, 5, 6, 10)]

    options = at.selectbox(key="dq_finding").options
    amount = next(i for i, text in enumerate(options) if text.startswith("Opportunities · amount"))
    at.selectbox(key="dq_finding").set_value(amount).run()
    assert not at.exception, at.exception
    drilled = grids[-1]
    assert drilled.columns[:2] == ["opportunity_id", "amount"]
    assert drilled.select("opportunity_id", "amount").rows() == [("O2", -250.0)]
    assert any(b.label == "Download CSV (1 rows)" for b in at.get("download_button"))

    orphan = next(i for i, text in enumerate(options) if text.startswith("Orders · customer_id"))
    at.selectbox(key="dq_finding").set_value(orphan).run()
    assert grids[-1].select("order_id", "customer_id").rows() == [("X2", "NO-SUCH")]


def test_merge_a_duplicate_pair_then_undo_restores_the_store(bad_store, monkeypatch):
    before = {name: bad_store.read(name).sort(schema.primary_key(name) or "order_id")
              for name in ("customers", "orders", "tickets")}
    at, _ = open_quality(monkeypatch)
    pairs = frame_with(at, "Reason")
    assert pairs.select("Customer", "Other", "Score").rows() == [("DUP-A", "DUP-B", 100.0)]
    assert pairs["Reason"].item().startswith("same email")

    at.radio(key="dq_keep_0").set_value("DUP-A").run()
    next(b for b in at.button if b.key == "dq_merge").click().run()
    assert not at.exception, at.exception
    assert bad_store.read("customers")["customer_id"].sort().to_list() == ["C1", "C2", "C3", "DUP-A"]
    assert bad_store.read("orders").filter(pl.col("order_id") == "X1")["customer_id"].item() == "DUP-A"
    assert bad_store.read("tickets").filter(pl.col("ticket_id") == "T1")["customer_id"].item() == "DUP-A"
    assert any("Merged DUP" in s.value for s in at.success)
    assert not any("Reason" in d.value.columns for d in at.dataframe)  # no candidates left
    history = frame_with(at, "Kept")
    assert history.select("Kept", "Merged", "Rows moved").rows() == [("DUP-A", "DUP-B", 2)]

    next(b for b in at.button if b.key == "dq_undo").click().run()
    assert not at.exception, at.exception
    for name, frame in before.items():
        assert_frame_equal(bad_store.read(name).sort(schema.primary_key(name) or "order_id"), frame)
    assert frame_with(at, "Reason").select("Customer", "Other").rows() == [("DUP-A", "DUP-B")]
    assert frame_with(at, "Kept")["Undone"].is_not_null().all()


CHECKING = "Data quality: the tables are being checked in the background"


def checked_cockpit() -> AppTest:
    """The cockpit, run again until its footer no longer says the tables are being checked (the check runs
    in a background thread; in a browser the page redraws itself when it is done)."""
    at = open_page("pages/cockpit.py", {})
    deadline = time.monotonic() + 90
    while any(c.value.startswith(CHECKING) for c in at.caption):
        assert time.monotonic() < deadline, "the quality check did not finish in 90 s"
        time.sleep(0.1)
        at.run()
    assert not at.exception, at.exception
    return at


def test_cockpit_links_to_data_quality_when_a_table_scores_low(bad_store):
    at = checked_cockpit()
    assert footer_links(at) == [f"Data quality: 4 tables below {quality.QUALITY_THRESHOLD:g} — review"]
    help_text = next(link.proto.help for link in at.get("page_link") if link.proto.label.endswith("review"))
    assert help_text.endswith("Opportunities, Orders, Tickets, Survey responses")  # the four, by hand (ROWS)


def test_cockpit_has_no_quality_link_on_the_clean_demo_store(app_store):
    at = checked_cockpit()
    assert at.get("page_link")  # the tiles' links are there ...
    assert footer_links(at) == []  # ... but every table scores 100
    assert not any(c.value.startswith("Data quality") for c in at.caption)


def test_a_failed_check_says_so_and_the_cockpit_still_works(bad_store, monkeypatch):
    def fail(*_, **__):
        raise RuntimeError("the store went away")

    monkeypatch.setattr("crm.quality.store_scores", fail)
    at = checked_cockpit()
    assert footer_links(at) == []
    assert any(c.value.startswith("Data quality: the tables could not be checked") for c in at.caption)
    assert at.metric  # the tiles are there


def test_demo_store_shows_no_findings_but_its_invalid_emails(app_store, monkeypatch):
    at, _ = open_quality(monkeypatch)
    expected = quality.findings(quality.read_tables(app_store))
    assert expected["kind"].unique().to_list() == ["contact"]
    findings = frame_with(at, "Rule")
    assert findings.select("Table", "Column", "Rows").rows() == [("Customers", "Email", expected["count"].item())]
    assert frame_with(at, "Rows without an error")["Score"].to_list() == [100.0] * 9


def test_the_page_says_so_when_the_tables_cannot_be_checked(bad_store, monkeypatch):
    def fail(*_, **__):
        raise RuntimeError("the store went away")

    monkeypatch.setattr("crm.quality.store_report", fail)
    at = open_page("pages/quality.py", {})
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["The tables could not be checked (RuntimeError); the server log has the "
                                           "details. The other pages are not affected."]
    assert not at.dataframe
