"""The Data page's pure helpers (crm.mapping_form, crm.format.plain): form choices -> mapping, value maps, the
tables the page shows, uploads. Expected values are written out by hand."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime

import polars as pl
import pytest

from crm import mapping_form
from crm.format import plain
from crm.ingest import plan_import
from crm.mapping import ColumnSpec, ImportBlock, ImportMapping, Mode, parse_mapping, to_toml
from crm.mapping_form import (
    MAX_MAPPED_VALUES,
    ColumnChoice,
    FormChoices,
    build_mapping,
    choices_from_suggestion,
    describe_import,
    distinct_count,
    draft,
    guess_value,
    history_table,
    likeliest_sheet,
    parse_date_formats,
    preview_table,
    problems_table,
    rules_table,
    save_upload,
    session_folder,
    sheet_names,
    undoable,
    unique_keys,
    value_map,
    value_rows,
)
from crm.sources import ReadOptions, SourceError, read_source
from crm.store import Store
from crm.suggest import Suggestion
from tests.conftest import ROOT


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    new = Store(f"sqlite:///{tmp_path / 'crm.db'}")
    yield new
    new.close()


def test_a_column_choice_becomes_the_spec_it_means():
    assert ColumnChoice().spec() is None
    assert ColumnChoice(source="A", constant=" Europe ").spec() == ColumnSpec(value="Europe")  # a constant wins
    assert ColumnChoice(default="0").spec() == ColumnSpec(value="0")  # no source: the default is every row's value
    assert ColumnChoice(source="Stage", default="open", values=(("Closed Won", "won"),), otherwise="").spec() == \
        ColumnSpec(source="Stage", default="open", values=(("Closed Won", "won"),), otherwise="")
    assert ColumnChoice(source="Stage", default="  ").spec() == ColumnSpec(source="Stage")


def test_the_form_mapping_names_the_file_relative_and_reads_back_equal(tmp_path):
    path = tmp_path / "deals.csv"
    choices = FormChoices("opportunities", (
        ("opportunity_id", ColumnChoice(source="Deal ID")),
        ("region", ColumnChoice(constant="Europe")),
        ("team", ColumnChoice()),
        ("status", ColumnChoice(source="Status", values=(("Closed Won", "won"), ("Closed Lost", "lost")), otherwise="open")),
    ), ReadOptions(encoding="latin-1", delimiter=";"), ("%d/%m/%Y",), Mode.UPSERT)
    mapping = build_mapping(path, choices)
    text = to_toml(mapping)
    assert 'file = "deals.csv"' in text
    assert parse_mapping(text, tmp_path) == mapping
    block = mapping.blocks[0]
    assert [name for name, _ in block.columns] == ["opportunity_id", "region", "status"]
    assert (block.read.encoding, block.read.delimiter, block.date_formats, block.mode) == \
        ("latin-1", ";", ("%d/%m/%Y",), Mode.UPSERT)


def test_the_form_starts_from_a_suggestion_with_every_canonical_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Case,Severity\nT-1,P1\n", encoding="utf-8")
    block = ImportBlock(table="tickets", file=path, read=ReadOptions(encoding="utf-8", delimiter=","),
                        date_formats=("%Y%m%d",), columns=(
                            ("ticket_id", ColumnSpec(source="Case")),
                            ("priority", ColumnSpec(source="Severity", values=(("P1", "urgent"),))),
                            ("channel", ColumnSpec(value="email"))))
    suggestion = Suggestion(ImportMapping((block,), tmp_path), read_source(path), "tickets", ())
    choices = choices_from_suggestion(suggestion)
    assert choices.table == "tickets"
    assert [n for n, _ in choices.columns][:4] == ["ticket_id", "customer_id", "created_at", "first_response_at"]
    assert choices.column("ticket_id") == ColumnChoice(source="Case")
    assert choices.column("priority") == ColumnChoice(source="Severity", values=(("P1", "urgent"),))
    assert choices.column("channel") == ColumnChoice(constant="email")
    assert choices.column("agent") == ColumnChoice()
    assert (choices.read, choices.date_formats) == (block.read, ("%Y%m%d",))


def test_values_are_guessed_from_their_usual_spellings():
    assert guess_value("opportunities", "status", " closed   WON") == "won"
    assert guess_value("opportunities", "status", "Lost") == "lost"
    assert guess_value("tickets", "priority", "P1") == "urgent"
    assert guess_value("tickets", "priority", "Medium") == "normal"
    assert guess_value("opportunities", "status", "Won (paid)") is None
    assert guess_value("customers", "segment", "won") is None  # no vocabulary


def test_value_rows_count_each_value_as_matching_sees_it_and_prefill_the_map():
    frame = pl.DataFrame({"S": ["Closed Won", "won", "closed won", "Closed Won", None, "Pending", "Closed Lost",
                                "Pending", "Pending", "Closed  WON"]})
    rows = value_rows(frame, "S", "opportunities", "status", suggested=(("pending", "open"),))
    assert rows.to_dicts() == [
        {"value": "Closed Won", "rows": 4, "also_spelled": "Closed  WON, closed won", "maps_to": "won"},
        {"value": "Pending", "rows": 3, "also_spelled": "", "maps_to": "open"},  # the suggested map, any case
        {"value": "Closed Lost", "rows": 1, "also_spelled": "", "maps_to": "lost"},
        {"value": "won", "rows": 1, "also_spelled": "", "maps_to": "won"},
    ]
    assert distinct_count(frame, "S") == 4
    many = pl.DataFrame({"S": [f"v{i:03d}" for i in range(MAX_MAPPED_VALUES + 5)]})
    assert value_rows(many, "S", "opportunities", "status").height == MAX_MAPPED_VALUES
    assert distinct_count(many, "S") == MAX_MAPPED_VALUES + 5


def test_a_value_map_has_one_entry_per_key_as_matching_sees_it():
    pairs = (("Low", "low"), ("LOW", "high"), ("Medium", "normal"), (" medium ", "normal"))
    assert unique_keys(pairs) == (("Low", "low"), ("Medium", "normal"))
    assert ColumnChoice(source="Priority", values=pairs).spec() == ColumnSpec(source="Priority", values=unique_keys(pairs))


def test_the_value_map_keeps_every_chosen_row():
    rows = [{"value": "Closed Won", "rows": 2, "maps_to": "won"}, {"value": "won", "rows": 1, "maps_to": "won"},
            {"value": "Won (paid)", "rows": 2, "maps_to": None}, {"value": "x", "rows": 1, "maps_to": ""}]
    assert value_map(rows) == (("Closed Won", "won"), ("won", "won"))


def test_date_formats_are_typed_on_one_line():
    assert parse_date_formats(" %d/%m/%Y ,%m/%d/%Y %H:%M,, %d/%m/%Y") == ("%d/%m/%Y", "%m/%d/%Y %H:%M")
    assert parse_date_formats("") == ()


def test_preview_and_problem_tables_show_the_plan(tmp_path, store):
    path = tmp_path / "deals.csv"
    path.write_text("id,amount,created\nD1,10,2026-01-02\nD2,ten,2026-01-03\nD3,30,nope\nD1,40,2026-01-05\n",
                    encoding="utf-8")
    choices = FormChoices("opportunities", (("opportunity_id", ColumnChoice(source="id")),
                                            ("amount", ColumnChoice(source="amount")),
                                            ("created_at", ColumnChoice(source="created"))))
    plan = plan_import(store, build_mapping(path, choices))
    preview = preview_table(plan, rows=3)
    assert preview.columns == ["line", "opportunity_id", "amount", "created_at", "problems"]
    assert preview["line"].to_list() == [2, 3, 4]
    assert preview["amount"].to_list() == [10.0, None, 30.0]
    assert preview["created_at"].to_list() == [datetime(2026, 1, 2), datetime(2026, 1, 3), None]
    assert preview["problems"].to_list()[:2] == ["opportunity_id: duplicate key within the file", "amount: not a number"]
    assert preview["problems"][2].startswith("created_at: not a timestamp")
    problems = problems_table(plan)
    assert list(zip(problems["row"], problems["column"], problems["value"], strict=True)) == [
        (2, "opportunity_id", "D1"), (3, "amount", "ten"), (4, "created_at", "nope"), (5, "opportunity_id", "D1")]
    assert set(problems["file"]) == {"deals.csv"}
    rules = dict(zip(rules_table(plan)["rule"], rules_table(plan)["problems"], strict=True))
    assert rules["duplicate key within the file"] == 2
    assert rules["not a number"] == 1


def test_the_history_gets_readable_labels_and_undo_choices():
    history = pl.DataFrame({
        "id": [3, 2, 1], "at": [datetime(2026, 12, 5, 18, 2, 9), datetime(2026, 12, 4), datetime(2026, 12, 3)],
        "tables": ["opportunities", "customers", "tickets"], "files": ["d.csv", "c.csv", "t.csv"], "rows": [1234, 5, 6],
        "rejected": [0, 1, 0], "actor": [None, "ana", None], "status": ["loaded", "partial", "replaced"],
        "undone_at": [None, None, None], "undone_by": [None, None, None],
    }, schema_overrides={"undone_at": pl.Datetime("us"), "undone_by": pl.String})
    table = history_table(history)
    assert table.columns == ["Import", "When", "Tables", "Files", "Rows", "Rejected", "By", "Status", "Undone"]
    assert table["By"].to_list() == ["", "ana", ""]
    assert undoable(history) == [3, 2]
    assert undoable(history.with_columns(pl.when(pl.col("id") == 3).then(datetime(2026, 12, 6))
                                         .alias("undone_at"))) == [2]
    assert describe_import(history, 3) == "Import 3 · 2026-12-05 18:02 · opportunities · 1,234 rows"
    assert history_table(pl.DataFrame()).columns == table.columns
    assert undoable(pl.DataFrame()) == []


def test_an_upload_is_saved_under_its_own_name_only(tmp_path):
    assert save_upload(tmp_path, "../../etc/passwd", b"x") == tmp_path / "passwd"
    assert save_upload(tmp_path, "C:\\Users\\ana\\deals.csv", b"a,b\n") == tmp_path / "deals.csv"
    assert save_upload(tmp_path, "..", b"y") == tmp_path / "upload"
    assert (tmp_path / "deals.csv").read_bytes() == b"a,b\n"


def test_session_folders_of_idle_sessions_are_removed(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    folder = session_folder(tmp_path, "ab/../cd")
    assert folder == tmp_path / "ab____cd"
    assert folder.is_dir() and not old.exists()


def test_the_data_sheet_of_a_workbook_is_found():
    workbook = ROOT / "data/examples/customer_status_xlsx/customer_status.xlsx"
    assert sheet_names(workbook) == ["About", "Customers"]
    assert likeliest_sheet(workbook) == "Customers"


def test_a_damaged_workbook_is_a_source_error(tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(SourceError, match=r"broken\.xlsx is not a readable workbook"):
        sheet_names(broken)


def test_a_failing_suggestion_falls_back_to_exact_names(tmp_path, monkeypatch):
    path = tmp_path / "people.csv"
    path.write_text("Customer ID,Name,Favourite\nC-1,Ana,tea\n", encoding="utf-8")

    def broken(*args: object, **kwargs: object) -> Suggestion:
        raise pl.exceptions.ComputeError("could not find an appropriate format to parse dates")

    monkeypatch.setattr(mapping_form, "suggest_mapping", broken)
    result = draft(path, "customers", ReadOptions())
    assert result.table == "customers"
    assert result.mapping.blocks[0].columns == (("customer_id", ColumnSpec(source="Customer ID")),
                                               ("name", ColumnSpec(source="Name")))
    assert result.notes[0].startswith("the automatic suggestion failed on this file (could not find an appropriate")


def test_text_from_files_is_escaped_for_markdown():
    assert plain("**Hot** _x_ [a](b) :red[y] <b>z</b> $1 :material/home:") == (
        "\\*\\*Hot\\*\\* \\_x\\_ \\[a\\]\\(b\\) \\:\u200bred\\[y\\] \\<b\\>z\\<\\/b\\> \\$1 "
        "\\:\u200bmaterial\\/home\\:\u200b")
    assert plain("row 2\nrow 3") == "row 2  \nrow 3"
    assert plain("") == ""
