"""What keeps narrow windows readable, as plain code: grid column order and widths, the deals grid's columns,
heatmap text that contrasts with its cell."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from crm.charts import TEXT_DARK, TEXT_LIGHT, build_breakdown_heatmap, build_transition_chart, contrast_text_colors
from crm.dataset import frames_from_rows
from crm.filters import Filters, Period
from crm.grid import DEAL_COLUMNS_FIRST, DEAL_COLUMNS_LAST, build_grid_options, column_order
from crm.metrics import funnel
from crm.narrowing import narrow
from crm.scope import Scope

JAN = Period(date(2026, 1, 1), date(2026, 1, 31))


def test_column_order_puts_named_columns_first_and_ids_last():
    columns = ["opportunity_id", "customer_id", "customer_name", "owner", "team", "amount", "stage"]
    assert column_order(columns, ("customer_name", "stage", "amount", "missing"), ("opportunity_id", "customer_id")) == [
        "customer_name", "stage", "amount", "owner", "team", "opportunity_id", "customer_id"]
    assert column_order(columns) == columns


def test_grid_options_follow_the_order_and_size_columns_to_their_contents():
    frame = pl.DataFrame({"opportunity_id": ["D1"], "customer_id": ["C1"], "customer_name": ["Acme"], "owner": ["Ann"],
                          "amount": [10.0], "stage": ["lead"], "expected_close_date": [date(2026, 2, 1)]})
    options = build_grid_options(frame, first=DEAL_COLUMNS_FIRST, last=DEAL_COLUMNS_LAST)
    assert [c["field"] for c in options["columnDefs"]] == [
        "customer_name", "stage", "amount", "owner", "expected_close_date", "opportunity_id", "customer_id"]
    amount = next(c for c in options["columnDefs"] if c["field"] == "amount")
    assert amount["filter"] == "agNumberColumnFilter"  # the definition still follows the column's own type
    assert options["autoSizeStrategy"] == {"type": "fitCellContents"}


def test_deals_behind_carries_the_customer_name_and_expected_close():
    frames = frames_from_rows({
        "customers": [{"customer_id": "C1", "name": "Acme GmbH"}],
        "opportunities": [
            {"opportunity_id": "D1", "customer_id": "C1", "amount": 5.0, "created_at": datetime(2026, 1, 2),
             "expected_close_date": date(2026, 3, 1), "status": "open"},
            {"opportunity_id": "D2", "customer_id": "C9", "amount": 7.0, "created_at": datetime(2026, 1, 3),
             "status": "open"},  # a customer the store does not hold: no name, still listed
        ],
    })
    deals = funnel.deals_behind(narrow(frames, Filters.create(JAN, scope=Scope())), JAN)
    assert deals["opportunity_id"].to_list() == ["D1", "D2"]
    assert deals["customer_name"].to_list() == ["Acme GmbH", None]
    assert deals["expected_close_date"].to_list() == [date(2026, 3, 1), None]
    assert set(DEAL_COLUMNS_FIRST + DEAL_COLUMNS_LAST) <= set(deals.columns)


@pytest.mark.parametrize(("scale", "value", "text"), [
    ("RdYlGn", 0, TEXT_LIGHT),     # dark red
    ("RdYlGn", 50, TEXT_DARK),     # pale yellow
    ("RdYlGn", 100, TEXT_LIGHT),   # dark green
    ("Blues", 5, TEXT_DARK),       # near white
    ("Blues", 100, TEXT_LIGHT),    # dark blue
])
def test_contrast_text_colors_by_hand(scale, value, text):
    assert contrast_text_colors([value], scale, 0, 100) == [text]


def test_breakdown_heatmap_text_is_light_on_the_extremes_and_dark_in_the_middle():
    breakdown = pl.DataFrame({
        "owner": ["Ann"] * 4, "stage": ["lead", "qualified", "proposal", "won"], "step": [1, 2, 3, 4],
        "reached": [10, 2, 1, 1], "step_conversion": [None, 0.2, 0.5, 1.0],
    })
    coloured = build_breakdown_heatmap(breakdown, "owner").data[1]
    assert list(coloured.text) == ["20.0%", "50.0%", "100.0%"]
    assert list(coloured.textfont.color) == [TEXT_LIGHT, TEXT_DARK, TEXT_LIGHT]  # lowest red, middle yellow, top green


def test_transition_chart_text_is_light_on_dark_blue():
    moves = pl.DataFrame({"from_segment": ["Loyal", "Loyal"], "to_segment": ["Loyal", "Lost"], "customers": [95, 5],
                          "share_of_from": [0.95, 0.05]})
    trace = build_transition_chart(moves, ("Loyal", "Lost")).data[0]
    assert list(trace.textfont.color) == [TEXT_LIGHT, TEXT_DARK]
