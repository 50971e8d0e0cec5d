"""Words on screen: waits in hours or days, headers in words, the watchlist as a person reads it."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from crm.format import (
    column_label,
    format_wait,
    labelled_missing,
    missing_last,
    tickets,
    value_label,
    wait_text,
    watchlist_table,
)


def test_waits_read_in_hours_below_48_and_in_days_from_there():
    assert [format_wait(h) for h in (0.5, 7.0, 47.9, 48.0, 176.0, 17_101.0)] == [
        "0.5 h", "7.0 h", "47.9 h", "2.0 d", "7.3 d", "712.5 d"]
    assert format_wait(None) == "—"
    hours = pl.DataFrame({"h": [0.5, 7.0, 47.9, 48.0, 176.0, 17_101.0]})
    assert hours.select(wait_text("h"))["h"].to_list() == ["0.5 h", "7.0 h", "47.9 h", "2.0 d", "7.3 d", "712.5 d"]


def test_headers_are_words_not_column_names():
    assert column_label("sla") == "SLA"
    assert column_label("waited_days") == "Waited (days)"
    assert column_label("created_at") == "Created at"
    assert column_label("customer_id") == "Customer ID"


def test_the_watchlist_table_says_how_far_over_or_how_much_is_left():
    watch = pl.DataFrame({
        "ticket_id": ["E", "Z"], "created_at": [datetime(2026, 1, 24, 16), datetime(2026, 1, 31, 17)],
        "priority": ["normal", None], "sla": ["breached", "due soon"], "waited_hours": [176.0, 7.0],
        "target_hours": [8.0, 8.0], "over_by_hours": [168.0, -1.0], "team": ["A", "B"], "agent": [None, None],
        "channel": [None, None], "product": [None, None], "customer_id": ["C1", "C2"],
        "customer_name": ["Acme", None],
    })
    table = watchlist_table(watch)
    assert table.columns[:6] == ["ticket_id", "priority", "sla", "waited", "vs_target", "target"]
    assert table.select("waited", "vs_target", "target").rows() == [("7.3 d", "7.0 d over", "8.0 h"),
                                                                      ("7.0 h", "1.0 h left", "8.0 h")]


def test_an_empty_value_reads_as_no_value_and_leaves_the_ranking():
    assert value_label("team", "(none)") == "— no team"
    assert value_label("team", "Support") == "Support"
    # worst first: B 0.2, (none) 0.1 would rank first, C 0.5
    drill = pl.DataFrame({"team": ["(none)", "B", "C"], "csat": [0.1, 0.2, 0.5]})
    ranked = missing_last(drill, "team")
    assert ranked.rows() == [("B", 0.2), ("C", 0.5), ("(none)", 0.1)]
    assert labelled_missing(ranked, "team")["team"].to_list() == ["B", "C", "— no team"]


def test_counts_of_tickets_agree_in_number():
    assert [tickets(n) for n in (0, 1, 2, 17_101)] == ["0 tickets", "1 ticket", "2 tickets", "17,101 tickets"]
    assert tickets(1, "open ticket") == "1 open ticket"
