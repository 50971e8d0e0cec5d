"""A load says what it is doing: table N of M with the rows read so far, then preparing, then ready."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from crm.dataset import COLUMNS, READ_SHARE, load_frames
from crm.store import Store


def test_load_frames_reports_each_table_then_preparing(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    # two customers (table 1 of 8) and three orders (table 5): 2 rows read before table 2, 5 after table 5
    store.replace_business_data({
        "customers": pl.DataFrame({"customer_id": ["A", "B"], "name": ["Alpha", "Bravo"],
                                   "created_at": [datetime(2026, 1, 1)] * 2}),
        "orders": pl.DataFrame({"order_id": ["O1", "O2", "O3"], "customer_id": ["A", "A", "B"],
                                "ordered_at": [datetime(2026, 1, 2)] * 3, "amount": [1.0, 2.0, 3.0]}),
    })
    steps: list[tuple[float, str]] = []
    frames = load_frames(store, progress=lambda fraction, text: steps.append((fraction, text)))
    assert frames.customers.height == 2 and frames.orders.height == 3
    assert list(COLUMNS) == ["customers", "opportunities", "opportunity_stages", "pipeline_stages", "orders",
                             "order_items", "tickets", "survey_responses", "interactions"]
    assert [text for _, text in steps] == [
        "Reading table 1 of 9: customers (0 rows so far)",
        "Reading table 2 of 9: opportunities (2 rows so far)",
        "Reading table 3 of 9: opportunity_stages (2 rows so far)",
        "Reading table 4 of 9: pipeline_stages (2 rows so far)",
        "Reading table 5 of 9: orders (2 rows so far)",
        "Reading table 6 of 9: order_items (5 rows so far)",
        "Reading table 7 of 9: tickets (5 rows so far)",
        "Reading table 8 of 9: survey_responses (5 rows so far)",
        "Reading table 9 of 9: interactions (5 rows so far)",
        "Preparing 5 rows: joins, stage history, business hours",
        "Saving a prepared snapshot of 5 rows for the next start",  # the CLI waits for it; the app does not
        "Ready: 5 rows",
    ]
    assert [f for f, _ in steps] == pytest.approx([READ_SHARE * i / 9 for i in range(9)] + [READ_SHARE, 1.0, 1.0])


def test_without_a_callback_a_load_is_silent(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    store.ensure_schema()
    assert load_frames(store).customers.height == 0
