"""The grid's filter and sort state applied on the server the way AG Grid applies it in the browser.

AG Grid's defaults: the text filter lower-cases both sides; a blank cell (null, or "" for text) passes
only "not equal", "does not contain" and "blank"; a number filter's inRange leaves out both ends and a
blank cell fails every number condition; nulls sort first ascending and last descending. Dates reach the
grid as text (display_frame), so they are filtered on that text.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from crm.grid import GridFilterError, apply_grid_state, display_frame

FRAME = pl.DataFrame({
    "id": ["r0", "r1", "r2", "r3", "r4"],
    "name": ["Ann", "bob", None, "Émile", ""],
    "amount": [10.0, 20.0, None, 30.0, 20.0],
    "day": [date(2026, 6, 1), date(2026, 6, 15), None, date(2026, 7, 1), date(2026, 6, 15)],
    "at": [datetime(2026, 6, 1, 9, 30), datetime(2026, 6, 15), None, datetime(2026, 7, 1, 23, 5, 59),
           datetime(2026, 6, 1, 9, 5)],
})


def text(kind: str, value: str | None = None) -> dict:
    return {"filterType": "text", "type": kind, "filter": value}


def number(kind: str, value: float | None = None, to: float | None = None) -> dict:
    return {"filterType": "number", "type": kind, "filter": value, "filterTo": to}


def filtered(**models: dict) -> list[str]:
    return apply_grid_state(FRAME, {"filter": {"filterModel": models}})["id"].to_list()


def sorted_by(*keys: tuple[str, str]) -> list[str]:
    state = {"sort": {"sortModel": [{"colId": c, "sort": s} for c, s in keys]}}
    return apply_grid_state(FRAME, state)["id"].to_list()


def test_display_frame_turns_dates_and_timestamps_into_text():
    shown = display_frame(FRAME)
    assert shown.schema["day"] == pl.String and shown.schema["at"] == pl.String
    assert shown["day"].to_list() == ["2026-06-01", "2026-06-15", None, "2026-07-01", "2026-06-15"]
    # to the minute: 23:05:59 shows as 23:05
    assert shown["at"].to_list() == ["2026-06-01 09:30", "2026-06-15 00:00", None, "2026-07-01 23:05",
                                     "2026-06-01 09:05"]
    assert shown.select("id", "name", "amount").equals(FRAME.select("id", "name", "amount"))


def test_no_state_shows_every_row_in_order():
    assert apply_grid_state(FRAME, None).equals(FRAME)
    assert apply_grid_state(FRAME, {}).equals(FRAME)
    assert apply_grid_state(FRAME, {"filter": {"filterModel": {}}, "sort": {"sortModel": []}}).equals(FRAME)


def test_rows_come_back_with_their_own_types():
    rows = apply_grid_state(FRAME, {"filter": {"filterModel": {"day": text("startsWith", "2026-06")}}})
    assert rows.schema == FRAME.schema
    assert rows["day"].to_list() == [date(2026, 6, 1), date(2026, 6, 15), date(2026, 6, 15)]


# --- text ------------------------------------------------------------------------------------------


def test_text_filters_ignore_case():
    assert filtered(name=text("contains", "AN")) == ["r0"]          # "Ann"
    assert filtered(name=text("equals", "ÉMILE")) == ["r3"]         # "Émile", accents lower-cased too
    assert filtered(name=text("startsWith", "B")) == ["r1"]         # "bob"
    assert filtered(name=text("endsWith", "LE")) == ["r3"]


def test_blank_text_cells_pass_only_the_negative_filters():
    # r2 is null and r4 is "": both blank
    assert filtered(name=text("notEqual", "ann")) == ["r1", "r2", "r3", "r4"]
    assert filtered(name=text("notContains", "b")) == ["r0", "r2", "r3", "r4"]
    assert filtered(name=text("equals", "bob")) == ["r1"]


def test_blank_and_not_blank_text():
    assert filtered(name=text("blank")) == ["r2", "r4"]
    assert filtered(name=text("notBlank")) == ["r0", "r1", "r3"]


def test_dates_are_filtered_on_their_text():
    assert filtered(day=text("startsWith", "2026-06")) == ["r0", "r1", "r4"]
    assert filtered(at=text("contains", " 09:")) == ["r0", "r4"]
    assert filtered(at=text("equals", "2026-07-01 23:05")) == ["r3"]  # the seconds are not shown, so not matched
    assert filtered(at=text("equals", "2026-07-01 23:05:59")) == []


# --- numbers ---------------------------------------------------------------------------------------


def test_number_comparisons_and_blanks():
    # amounts: r0 10, r1 20, r2 null, r3 30, r4 20
    assert filtered(amount=number("greaterThan", 10)) == ["r1", "r3", "r4"]
    assert filtered(amount=number("greaterThanOrEqual", 20)) == ["r1", "r3", "r4"]
    assert filtered(amount=number("lessThan", 20)) == ["r0"]
    assert filtered(amount=number("lessThanOrEqual", 20)) == ["r0", "r1", "r4"]
    assert filtered(amount=number("equals", 20)) == ["r1", "r4"]
    assert filtered(amount=number("notEqual", 20)) == ["r0", "r3"]  # the null r2 fails even "not equal"


def test_in_range_leaves_out_both_ends():
    assert filtered(amount=number("inRange", 10, 30)) == ["r1", "r4"]   # 10 and 30 themselves are out
    assert filtered(amount=number("inRange", 9.99, 30.01)) == ["r0", "r1", "r3", "r4"]


def test_an_incomplete_condition_is_not_applied():
    # the grid's own UI never applies these; a model set without its value filters nothing here
    assert filtered(amount=number("greaterThan")) == ["r0", "r1", "r2", "r3", "r4"]
    assert filtered(amount=number("inRange", 10)) == ["r0", "r1", "r2", "r3", "r4"]
    assert filtered(name=text("contains", "")) == ["r0", "r1", "r2", "r3", "r4"]


def test_blank_and_not_blank_numbers():
    assert filtered(amount=number("blank")) == ["r2"]
    assert filtered(amount=number("notBlank")) == ["r0", "r1", "r3", "r4"]


# --- combining --------------------------------------------------------------------------------------


def test_two_conditions_on_a_column_joined_by_or_and_and():
    either = {"filterType": "number", "operator": "OR",
              "conditions": [number("equals", 10), number("equals", 30)]}
    assert filtered(amount=either) == ["r0", "r3"]
    both = {"filterType": "number", "operator": "AND",
            "conditions": [number("greaterThanOrEqual", 20), number("lessThan", 30)]}
    assert filtered(amount=both) == ["r1", "r4"]
    text_or = {"filterType": "text", "operator": "OR", "conditions": [text("startsWith", "a"), text("blank")]}
    assert filtered(name=text_or) == ["r0", "r2", "r4"]


def test_filters_on_several_columns_all_hold():
    # name not blank: r0, r1, r3; amount > 10: r1, r3, r4
    assert filtered(name=text("notBlank"), amount=number("greaterThan", 10)) == ["r1", "r3"]


# --- sorting -----------------------------------------------------------------------------------------


def test_sort_puts_blanks_first_ascending_and_last_descending_and_keeps_ties_in_order():
    # amounts r0 10, r1 20, r2 null, r3 30, r4 20; r1 and r4 tie and keep their order both ways
    assert sorted_by(("amount", "asc")) == ["r2", "r0", "r1", "r4", "r3"]
    assert sorted_by(("amount", "desc")) == ["r3", "r1", "r4", "r0", "r2"]


def test_text_sorts_by_character_code():
    # null first, then "" < "Ann" < "bob" (upper case before lower) < "Émile" (É is U+00C9)
    assert sorted_by(("name", "asc")) == ["r2", "r4", "r0", "r1", "r3"]


def test_sort_on_several_columns_and_on_timestamps_as_text():
    # day asc: null r2, 1 Jun r0, 15 Jun r1 "bob" and r4 "" -> name asc puts r4 first, then 1 Jul r3
    assert sorted_by(("day", "asc"), ("name", "asc")) == ["r2", "r0", "r4", "r1", "r3"]
    # at: 1 Jun 09:05 r4 < 1 Jun 09:30 r0 < 15 Jun r1 < 1 Jul r3, null last descending
    assert sorted_by(("at", "desc")) == ["r3", "r1", "r0", "r4", "r2"]


def test_sort_entries_the_grid_cannot_mean_are_skipped():
    assert sorted_by(("nope", "asc"), ("amount", "desc")) == ["r3", "r1", "r4", "r0", "r2"]
    assert sorted_by(("amount", None)) == ["r0", "r1", "r2", "r3", "r4"]


def test_filter_then_sort():
    state = {"filter": {"filterModel": {"amount": number("greaterThan", 10)}},
             "sort": {"sortModel": [{"colId": "name", "sort": "desc"}]}}
    # r1 "bob", r3 "Émile", r4 "": descending "Émile" > "bob" > ""
    assert apply_grid_state(FRAME, state)["id"].to_list() == ["r3", "r1", "r4"]


# --- what the export cannot follow ----------------------------------------------------------------------


@pytest.mark.parametrize(("column", "model", "message"), [
    ("owner", text("contains", "a"), "a column the data does not have: owner"),
    ("name", {"filterType": "set", "values": ["Ann"]}, "set None"),
    ("day", {"filterType": "date", "type": "equals", "dateFrom": "2026-06-01 00:00:00"}, "date 'equals' on day"),
    ("name", text("regex", "^A"), "text 'regex' on name"),
    ("amount", number("between", 1, 2), "number 'between' on amount"),
])
def test_filters_the_export_cannot_apply_are_an_error(column, model, message):
    with pytest.raises(GridFilterError, match=message):
        filtered(**{column: model})


def test_a_blank_date_filter_is_applied():
    assert filtered(day={"filterType": "date", "type": "blank"}) == ["r2"]


# --- where the server and AG Grid 34 (the version streamlit-aggrid bundles) disagree ----------------------


def test_a_whitespace_only_text_cell_is_blank():
    frame = pl.DataFrame({"id": ["a", "b", "c"], "note": ["  ", "x", None]})
    blank = {"filter": {"filterModel": {"note": text("blank")}}}
    not_blank = {"filter": {"filterModel": {"note": text("notBlank")}}}
    assert apply_grid_state(frame, blank)["id"].to_list() == ["a", "c"]
    assert apply_grid_state(frame, not_blank)["id"].to_list() == ["b"]


def test_a_nan_cell_fails_number_comparisons():
    frame = pl.DataFrame({"id": ["a", "b"], "share": [float("nan"), 0.5]})
    state = {"filter": {"filterModel": {"share": number("greaterThan", 0.1)}}}
    assert apply_grid_state(frame, state)["id"].to_list() == ["b"]
