"""The data-quality report (crm.quality findings, drill rows, completeness, freshness, scores) on hand-made
tables whose every finding is counted by hand below."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm import quality, schema
from crm.quality import (
    CALENDAR_RULE,
    DUPLICATE_KEY_RULE,
    EMAIL_RULE,
    FINDINGS_SCHEMA,
    REQUIRED_RULE,
    SCALE_RULE,
    completeness,
    finding_rows,
    findings,
    freshness,
    quality_scores,
    reference_rule,
)

D = datetime
STATUS_RULE = "must be one of open, won, lost (map other values with values = { ... })"


def frame(name: str, rows: list[dict]) -> pl.DataFrame:
    columns = list(rows[0])
    return pl.DataFrame(rows, schema=schema.polars_schema(name, columns), orient="row").select(columns)


@pytest.fixture
def tables() -> dict[str, pl.DataFrame]:
    return {
        "customers": frame("customers", [
            {"customer_id": "C1", "email": "a@example.com", "created_at": D(2026, 1, 1)},  # clean
            {"customer_id": "C2", "email": "broken@", "created_at": D(2026, 1, 2)},  # invalid email; key twice
            {"customer_id": "C2", "email": None, "created_at": D(2026, 1, 3)},  # key twice
            {"customer_id": None, "email": "  ", "created_at": D(9999, 12, 31)},  # no id, off the calendar
        ]),
        "opportunities": frame("opportunities", [
            {"opportunity_id": "O1", "customer_id": "C1", "amount": 100.0, "created_at": D(2026, 1, 1),
             "closed_at": D(2026, 2, 1), "status": "won"},  # clean
            {"opportunity_id": "O2", "customer_id": "C9", "amount": -5.0, "created_at": D(2026, 1, 5),
             "closed_at": D(2026, 1, 1), "status": "open"},  # negative, closed before created, no customer C9
            {"opportunity_id": "O3", "customer_id": None, "amount": 50.0, "created_at": D(2026, 3, 1),
             "closed_at": None, "status": "maybe"},  # unknown status (an empty customer is allowed)
        ]),
        "orders": frame("orders", [
            {"order_id": "X1", "customer_id": "C1", "ordered_at": D(2026, 1, 15), "amount": 10.0},
        ]),
        "tickets": frame("tickets", [
            {"ticket_id": "T1", "customer_id": "C1", "created_at": D(2026, 1, 10), "resolved_at": D(2026, 1, 9)},
            {"ticket_id": "T2", "customer_id": "C1", "created_at": D(2026, 1, 11), "resolved_at": None},
        ]),
        "survey_responses": frame("survey_responses", [
            {"response_id": "R1", "customer_id": "C1", "ticket_id": None, "kind": "nps", "score": 7.5,
             "responded_at": D(2026, 1, 12)},  # off the scale (not whole)
            {"response_id": "R2", "customer_id": "C1", "ticket_id": "T9", "kind": "csat", "score": 5.0,
             "responded_at": D(2026, 1, 12)},  # no ticket T9
            {"response_id": "R3", "customer_id": "C1", "ticket_id": "T2", "kind": "nps", "score": 9.0,
             "responded_at": D(2026, 1, 13)},  # clean
        ]),
    }


def test_findings_counts_every_rule_by_hand(tables):
    expected = pl.DataFrame([
        ("customers", "customer_id", DUPLICATE_KEY_RULE, "duplicate key", 2, 4, True, False),
        ("customers", "email", EMAIL_RULE, "contact", 2, 4, False, False),  # "broken@" and "  " (blank, not empty)
        ("customers", "created_at", CALENDAR_RULE, "invalid", 1, 4, True, False),  # nullable: blanked, not left out
        ("customers", "customer_id", REQUIRED_RULE, "completeness", 1, 4, True, True),
        ("opportunities", "amount", "must not be negative", "invalid", 1, 3, True, True),
        ("opportunities", "closed_at", "closed before the deal was created", "invalid", 1, 3, True, True),
        ("opportunities", "customer_id", reference_rule("customers"), "reference", 1, 3, True, False),
        ("opportunities", "status", STATUS_RULE, "invalid", 1, 3, True, False),
        ("tickets", "resolved_at", "resolved before the ticket was created", "invalid", 1, 2, True, True),
        ("survey_responses", "score", SCALE_RULE, "invalid", 1, 3, True, True),
        ("survey_responses", "ticket_id", reference_rule("tickets"), "reference", 1, 3, True, False),
    ], schema=FINDINGS_SCHEMA, orient="row")
    assert_frame_equal(findings(tables), expected)


def test_excluded_findings_are_the_rows_the_metrics_leave_out(tables):
    kept = quality.usable("opportunities", tables["opportunities"])
    assert kept["opportunity_id"].to_list() == ["O1", "O3"]  # O2 (negative, out of order) is left out; O3 counts
    assert quality.usable("survey_responses", tables["survey_responses"])["response_id"].to_list() == ["R2", "R3"]


def test_clean_tables_have_no_findings_and_full_scores(tables):
    clean = {"orders": tables["orders"]}
    assert findings(clean).is_empty()
    assert quality_scores(clean).row(0, named=True) == {"table": "orders", "rows": 1, "clean": 1, "score": 100.0,
                                                        "below": False}


def test_drill_rows_put_the_columns_that_matter_first(tables):
    rows = finding_rows(tables, "opportunities", "amount", "must not be negative")
    assert rows["opportunity_id"].to_list() == ["O2"]
    assert rows.columns[:2] == ["opportunity_id", "amount"]
    assert sorted(rows.columns) == sorted(tables["opportunities"].columns)

    order = finding_rows(tables, "tickets", "resolved_at", "resolved before the ticket was created")
    assert order.columns[:3] == ["ticket_id", "resolved_at", "created_at"] and order["ticket_id"].to_list() == ["T1"]

    email = finding_rows(tables, "customers", "email", EMAIL_RULE)
    assert email.select("customer_id", "email").rows() == [("C2", "broken@"), (None, "  ")]
    assert "email_ok" not in email.columns

    assert finding_rows(tables, "customers", "customer_id", DUPLICATE_KEY_RULE)["created_at"].to_list() == [
        D(2026, 1, 2), D(2026, 1, 3)]
    assert finding_rows(tables, "survey_responses", "ticket_id", reference_rule("tickets"))["response_id"].to_list() == ["R2"]
    assert finding_rows(tables, "orders", "amount", "must not be negative").is_empty()
    assert finding_rows(tables, "orders", "amount", "no such rule").is_empty()


def test_completeness_share_of_filled_values(tables):
    got = completeness({"customers": tables["customers"]})
    assert got.select("column", "required", "filled", "rows").rows() == [
        ("customer_id", True, 3, 4), ("email", False, 2, 4), ("created_at", False, 4, 4)]  # "  " is empty
    assert got["share"].to_list() == [0.75, 0.5, 1.0]
    empty = completeness({"orders": tables["orders"].head(0)})
    assert empty["share"].to_list() == [None] * 4 and empty["filled"].to_list() == [0] * 4


def test_freshness_ignores_placeholder_dates(tables):
    got = freshness(tables, now=D(2026, 1, 5))
    customers = got.filter(pl.col("table") == "customers").row(0, named=True)
    assert customers == {"table": "customers", "column": "created_at", "rows": 4, "latest": D(2026, 1, 3),
                         "days_ago": 2.0}  # 9999-12-31 is no record of activity
    assert got["table"].to_list() == ["customers", "opportunities", "orders", "tickets", "survey_responses"]
    assert got.filter(pl.col("table") == "survey_responses")["days_ago"].item() == pytest.approx(-8.0)  # in the future


def test_scores_are_the_share_of_rows_without_an_error(tables):
    got = quality_scores(tables)
    assert got.select("table", "rows", "clean", "below").rows() == [
        ("customers", 4, 1, True),  # C2 twice (key), no id (required, off calendar); the bad email is not scored
        ("opportunities", 3, 1, True),  # O2 and O3
        ("orders", 1, 1, False),
        ("tickets", 2, 1, True),
        ("survey_responses", 3, 1, True),
    ]
    assert got["score"].to_list() == pytest.approx([25.0, 100 / 3, 100.0, 50.0, 100 / 3])
    assert quality_scores(tables, threshold=20)["below"].to_list() == [False] * 5
    assert quality_scores({"orders": tables["orders"].head(0)})["score"].to_list() == [None]


@pytest.mark.parametrize(("days", "text"), [
    (None, "no records"), (-2.0, "in the future"), (-0.01, "just now"), (0.5 / 24, "just now"),
    (1 / 24, "1 hour ago"), (1.5, "36 hours ago"), (2.0, "2 days ago"), (1234.9, "1,234 days ago"),
])
def test_age_in_words(days, text):
    assert quality.age_text(days) == text
