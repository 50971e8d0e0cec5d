"""AppTest: the Data page — empty state, a file uploaded and mapped (defaults from the suggestion), preview
equal to the importer's plan, validation problems, import and undo against the store, a mapping file run as
it is, the import history, and clear messages (no traceback) for bad files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from crm import schema
from crm.format import plain
from crm.ingest import plan_import, run_import
from crm.mapping import load_mapping_file, to_toml
from crm.mapping_form import build_mapping, choices_from_suggestion
from crm.store import Store
from crm.suggest import suggest_mapping
from crm.ui.data import NOT_IMPORTED
from tests.app.conftest import open_page
from tests.conftest import ROOT

DEALS = b"""Deal ID,Account,Owner,Product,Amount,Created,Closed,Status
IMP-1,C0000001,Ada Import,GTX Pro,120000,2026-03-02,2026-05-04,Closed Won
IMP-2,C0000002,Ada Import,GTX Pro,95500,2026-03-09,2026-05-11,Closed Won
IMP-3,C0000003,Ada Import,MG Special,230250,2026-03-16,2026-05-18,Won (paid)
IMP-4,C0000004,Ada Import,MG Special,64000,2026-03-23,2026-05-25,Won (paid)
IMP-5,C0000005,Ada Import,GTX Basic,310000,2026-03-30,2026-06-01,Closed Won
IMP-6,C0000006,Ada Import,GTX Basic,50000,2026-04-06,2026-06-08,Closed Lost
IMP-7,C0000007,Ada Import,GTX Basic,70000,2026-04-13,,In progress
"""
"""Seven deals: 'Closed Won' / 'Closed Lost' are usual spellings the suggestion maps; 'Won (paid)' is not,
and 'In progress' falls to the suggested otherwise (open)."""
WON_AS_SUGGESTED = ["won", "won", "open", "open", "won", "lost", "open"]
WON_WITH_PAID = ["won", "won", "won", "won", "won", "lost", "open"]
WON_AMOUNT = 120000 + 95500 + 230250 + 64000 + 310000
"""The five won deals once 'Won (paid)' maps to won, added up by hand."""


@pytest.fixture(autouse=True)
def _uploads(tmp_path, monkeypatch):
    """Uploaded files go to this test's folder."""
    monkeypatch.setattr("crm.ui.data.UPLOAD_ROOT", tmp_path / "uploads")


@pytest.fixture
def own_store(tmp_path, monkeypatch, demo_frames):
    """A copy of the demo store for this test alone (imports write to it)."""
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")
    store.replace_business_data(demo_frames)
    monkeypatch.setenv("CRM_DATABASE_URL", str(store.url))
    monkeypatch.delenv("CRM_DEMO_ON_EMPTY", raising=False)
    yield store
    store.close()


def open_data() -> AppTest:
    at = open_page("pages/data.py", {})
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="data_upload").set_value([(name, data, "text/csv") for name, data in files]).run()
    assert not at.exception, at.exception
    return at


def widget(elements, label: str):
    return next(e for e in elements if e.label == label)


def press(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def form_key(at: AppTest) -> str:
    """The mapping form's key prefix (from its Preview button's key: ``FormSubmitter:<form>-Preview``)."""
    button = next(b for b in at.button if b.label == "Preview")
    return button.key.removeprefix("FormSubmitter:").removesuffix("_form-Preview")


def frame_with(at: AppTest, *columns: str):
    """The shown table (st.dataframe or st.data_editor) that has ``columns``."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def map_value(at: AppTest, column: str, row: int, target: str) -> None:
    """Edit the value-map editor of ``column`` as a person would: row ``row`` maps to ``target``."""
    key = next(k for k in at.session_state._state._state.filtered_state if k.startswith(f"{form_key(at)}_values_{column}_"))
    at.session_state[key] = {"edited_rows": {row: {"maps_to": target}}, "added_rows": [], "deleted_rows": []}


def saved(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "files" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def rows_of(store: Store, table: str, batch: int) -> pl.DataFrame:
    frame = store.read(table)
    return frame.filter(pl.col(schema.IMPORT_BATCH) == batch).sort("opportunity_id")


# --- tests ---------------------------------------------------------------------------------------------


def test_the_page_starts_with_what_to_do(app_store):
    at = open_data()
    assert any(i.value.startswith("Upload a CSV or XLSX export to start") for i in at.info)
    assert any(i.value.startswith("No imports yet.") for i in at.info)
    assert at.file_uploader(key="data_upload").allowed_type == [".csv", ".txt", ".xlsx"]
    assert not at.error


def test_the_history_lists_an_import_made_with_the_cli_mapping(own_store):
    mapping = load_mapping_file(ROOT / "data/examples/sales_pipeline/mapping.toml")
    _, result = run_import(own_store, mapping)
    assert result is not None
    at = open_data()
    history = frame_with(at, "Import", "When", "Tables", "Files", "Rows", "Rejected", "By", "Status", "Undone")
    assert len(history) == 1
    row = history.iloc[0]
    # data/examples/sales_pipeline/README.md: pipeline_stages 4, customers 19, opportunities 40, opportunity_stages 99
    assert row["Rows"] == 4 + 19 + 40 + 99
    assert row["Tables"] == "pipeline_stages,customers,opportunities,opportunity_stages"
    assert row["Files"] == "literal rows, sales_pipeline.csv"
    assert (row["Status"], row["Rejected"]) == ("loaded", 0)
    assert widget(at.selectbox, "Undo an import").value == result.batch


def test_the_form_starts_from_the_suggested_mapping(app_store, tmp_path):
    at = upload(open_data(), ("deals.csv", DEALS))
    suggestion = suggest_mapping(saved(tmp_path, "deals.csv", DEALS))
    block = suggestion.mapping.blocks[0]
    assert widget(at.selectbox, "Import into table").value == suggestion.table == "opportunities"
    given = dict(block.columns)
    for name in schema.data_columns("opportunities"):
        spec = given.get(name)
        assert widget(at.selectbox, f"{name}: source column").value == (spec.source if spec else NOT_IMPORTED), name
        assert widget(at.text_input, f"{name}: constant").value == ((spec.value or "") if spec else ""), name
    status = given["status"]
    assert dict(status.values) == {"Closed Won": "won", "Closed Lost": "lost"}
    editor = frame_with(at, "value", "rows", "maps_to")
    assert dict(zip(editor["value"], editor["rows"], strict=True)) == {
        "Closed Won": 3, "Won (paid)": 2, "Closed Lost": 1, "In progress": 1}
    shown = {v: m for v, m in zip(editor["value"], editor["maps_to"], strict=True) if isinstance(m, str)}
    assert shown == dict(status.values)
    assert widget(at.selectbox, "Other values of status").value == status.otherwise == "open"
    assert any("CSV, utf\\-8 \\(detected\\), delimiter comma, 7 rows, 8 columns" in m.value for m in at.markdown)
    assert any(b.label == "Download mapping (TOML)" for b in at.get("download_button"))
    assert to_toml_shown(at) == to_toml(suggestion.mapping).rstrip("\n")  # the file named relative to its folder


def test_another_table_starts_from_its_own_suggestion_and_says_what_is_missing(app_store, tmp_path):
    at = upload(open_data(), ("deals.csv", DEALS))
    widget(at.selectbox, "Import into table").set_value("tickets").run()
    assert not at.exception, at.exception
    suggestion = suggest_mapping(saved(tmp_path, "deals.csv", DEALS), "tickets")
    given = dict(suggestion.mapping.blocks[0].columns)
    assert any(m.value.startswith("**Map the file's columns onto tickets**") for m in at.markdown)
    for name in schema.data_columns("tickets"):
        assert widget(at.selectbox, f"{name}: source column").value == (given[name].source if name in given
                                                                          else NOT_IMPORTED), name
    at = press(at, "Preview")
    problems = frame_with(at, "file", "row", "column", "value", "rule")
    missing = [name for name in ("ticket_id", "created_at") if name not in given]
    assert missing and set(missing) <= set(problems["column"])
    assert set(problems["rule"]) == {"required column is missing (map a source column, or give a value or default)"}


def test_preview_shows_the_rows_plan_import_computes(app_store, tmp_path):
    at = press(upload(open_data(), ("deals.csv", DEALS)), "Preview")
    path = saved(tmp_path, "deals.csv", DEALS)
    mapping = build_mapping(path, choices_from_suggestion(suggest_mapping(path)))
    expected = plan_import(app_store, mapping).blocks[0].rows.head(20)
    preview = frame_with(at, "line", "opportunity_id", "problems")
    assert list(preview["line"]) == expected["_line"].to_list() == [2, 3, 4, 5, 6, 7, 8]
    assert list(preview["status"]) == expected["status"].to_list() == WON_AS_SUGGESTED
    assert list(preview["amount"]) == expected["amount"].to_list()
    assert list(preview["problems"]) == [""] * 7
    assert [str(v)[:10] for v in preview["closed_at"][:6]] == ["2026-05-04", "2026-05-11", "2026-05-18", "2026-05-25",
                                                            "2026-06-01", "2026-06-08"]


def test_a_value_mapped_in_the_editor_reaches_the_preview(app_store):
    at = upload(open_data(), ("deals.csv", DEALS))
    map_value(at, "status", 1, "won")  # row 1 of the editor is 'Won (paid)' (2 rows)
    at = press(at, "Preview")
    assert list(frame_with(at, "line", "status", "problems")["status"]) == WON_WITH_PAID
    assert "Won (paid)" in to_toml_shown(at)


def to_toml_shown(at: AppTest) -> str:
    return next(c.value for c in at.code if "[[import]]" in c.value)


def test_validate_lists_problems_by_rule_and_row(app_store):
    bad = DEALS.replace(b"95500", b"95k").replace(b"2026-06-08", b"08.06.2026")
    at = press(upload(open_data(), ("deals.csv", bad)), "Validate")
    assert {m.label: m.value for m in at.metric} == {"Rows to write": "0", "Rows with problems": "2", "Problems": "2"}
    assert any(e.value.startswith("2 problem(s): nothing would be written") for e in at.error)
    at.checkbox(key=f"{form_key(at)}_quarantine").check()
    at = press(at, "Validate")
    assert {m.label: m.value for m in at.metric} == {"Rows to write": "5", "Rows with problems": "2", "Problems": "2"}
    assert any(e.value.startswith("2 problem(s): the valid rows would load, the bad ones set aside") for e in at.error)
    problems = frame_with(at, "file", "row", "column", "value", "rule")
    assert list(zip(problems["row"], problems["column"], problems["value"], strict=True)) == [
        (3, "amount", "95k"), (7, "closed_at", "08.06.2026")]
    rules = frame_with(at, "table", "rule", "problems")
    assert sorted(rules["problems"]) == [1, 1]
    at.text_input(key=f"{form_key(at)}_formats").input("%d.%m.%Y")  # the day-first date now reads
    at = press(at, "Validate")
    assert {m.label: m.value for m in at.metric} == {"Rows to write": "6", "Rows with problems": "1", "Problems": "1"}
    assert list(frame_with(at, "file", "row", "column", "value", "rule")["value"]) == ["95k"]


def test_import_writes_the_rows_and_undo_takes_them_back(own_store):
    before = own_store.row_count("opportunities")
    version = own_store.data_version()
    at = upload(open_data(), ("deals.csv", DEALS))
    map_value(at, "status", 1, "won")
    at = press(at, "Import")
    assert own_store.row_count("opportunities") == before + 7
    assert own_store.data_version() == version + 1
    written = rows_of(own_store, "opportunities", 1)
    assert written["status"].to_list() == WON_WITH_PAID
    assert written.filter(pl.col("status") == "won")["amount"].sum() == WON_AMOUNT
    assert written["closed_at"][0] == datetime(2026, 5, 4)
    assert any(s.value.startswith(f"**Import 1 done:** 7 rows into opportunities. Data version {version + 1}")
               for s in at.success)
    assert any(c.value.endswith(f"data version {version + 1}") for c in at.sidebar.caption)
    history = frame_with(at, "Import", "Rows", "Status")
    assert (history.iloc[0]["Import"], history.iloc[0]["Rows"], history.iloc[0]["Status"]) == (1, 7, "loaded")

    assert widget(at.selectbox, "Undo an import").value == 1
    undo = widget(at.button, "Undo import 1")
    assert undo.disabled  # until the confirmation is ticked
    at.checkbox(key="data_undo_sure_1").check().run()
    at = press(at, "Undo import 1")
    assert own_store.row_count("opportunities") == before
    assert own_store.data_version() == version + 2
    assert any(s.value == f"Import 1 undone: removed 7 rows from opportunities. Data version {version + 2}."
               for s in at.success)
    history = frame_with(at, "Import", "Undone")
    assert isinstance(history.iloc[0]["Undone"], pd.Timestamp)
    assert not any(b.label.startswith("Undo import") for b in at.button)


def test_an_import_with_a_bad_row_writes_nothing_and_says_why(own_store):
    before = own_store.row_count("opportunities")
    at = press(upload(open_data(), ("deals.csv", DEALS.replace(b"95500", b"95k"))), "Import")
    assert own_store.row_count("opportunities") == before
    error = next(e.value for e in at.error if e.value.startswith("**Nothing was imported.**"))
    assert plain("deals.csv was not imported into opportunities: 1 problem(s); nothing was written.") in error
    problems = frame_with(at, "file", "row", "column", "value", "rule")
    assert list(zip(problems["row"], problems["value"], strict=True)) == [(3, "95k")]


def test_bad_rows_can_be_set_aside(own_store):
    before = own_store.row_count("opportunities")
    at = upload(open_data(), ("deals.csv", DEALS.replace(b"95500", b"95k")))
    at.checkbox(key=f"{form_key(at)}_quarantine").check()
    at = press(at, "Import")
    assert own_store.row_count("opportunities") == before + 6
    assert any(s.value.startswith("**Import 1 done:** 6 rows into opportunities; 1 bad rows set aside") for s in at.success)
    assert any(b.label == "Download the bad rows of opportunities (CSV)" for b in at.get("download_button"))


def test_a_workbook_is_read_from_its_data_sheet_and_imported(own_store):
    workbook = ROOT / "data/examples/customer_status_xlsx/customer_status.xlsx"
    at = upload(open_data(), ("customer_status.xlsx", workbook.read_bytes()))
    # data/examples/customer_status_xlsx/README.md: a note sheet 'About' first, 30 customers on 'Customers'
    assert widget(at.selectbox, "Sheet").options == ["About", "Customers"]
    assert widget(at.selectbox, "Sheet").value == "Customers"
    assert any("XLSX, 30 rows, 10 columns" in m.value for m in at.markdown)
    assert widget(at.selectbox, "Import into table").value == "customers"
    assert widget(at.selectbox, "customer_id: source column").value == "CustomerID"
    before = own_store.row_count("customers")
    at = press(at, "Import")
    assert own_store.row_count("customers") == before + 30
    first = own_store.read("customers").filter(pl.col("customer_id") == "1201-PDYME").row(0, named=True)
    assert (first["name"], first["created_at"]) == ("Emily Clarke", datetime(2026, 1, 24))


def test_hand_typed_spellings_share_one_value_map_row_and_import(own_store):
    tickets = ROOT / "data/examples/helpdesk_tickets/tickets.csv"
    at = upload(open_data(), ("tickets.csv", tickets.read_bytes()))
    assert widget(at.selectbox, "Import into table").value == "tickets"
    editor = frame_with(at, "value", "also_spelled", "rows", "maps_to")
    # data/examples/helpdesk_tickets/README.md: priority high 11, low 9, normal 9, urgent 3 ("LOW", "low", "medium ")
    assert {v: (n, m) for v, n, m in zip(editor["value"], editor["rows"], editor["maps_to"], strict=True)} == {
        "High": (11, "high"), "Low": (9, "low"), "Medium": (9, "normal"), "Critical": (3, "urgent")}
    # the export's customer ids (CUST-1082, ...) are not customers of this store: a ticket must not point at a
    # customer that does not exist, so the import refuses them until customer_id is left out
    at = press(at, "Import")
    error = next(e.value for e in at.error if e.value.startswith("**Nothing was imported.**"))
    assert plain("tickets.csv was not imported into tickets: 32 problem(s); nothing was written.") in error
    assert own_store.read("tickets").filter(pl.col(schema.IMPORT_BATCH) == 1).height == 0
    widget(at.selectbox, "customer_id: source column").set_value(NOT_IMPORTED)
    at = press(press(at, "Preview"), "Import")
    assert not at.error, [e.value for e in at.error]
    written = own_store.read("tickets").filter(pl.col(schema.IMPORT_BATCH) == 1)
    assert written.height == 32
    assert dict(written.group_by("priority").len().iter_rows()) == {"high": 11, "low": 9, "normal": 9, "urgent": 3}


def test_an_uploaded_mapping_file_runs_against_the_uploaded_files(own_store, tmp_path):
    path = saved(tmp_path, "deals.csv", DEALS)
    toml = to_toml(build_mapping(path, choices_from_suggestion(suggest_mapping(path))))
    at = upload(open_data(), ("deals.csv", DEALS))
    at.file_uploader(key="data_mapping_upload").set_value(("deals.mapping.toml", toml.encode(), "application/toml")).run()
    assert not at.exception, at.exception
    blocks = frame_with(at, "block", "table", "file", "uploaded")
    assert list(zip(blocks["table"], blocks["file"], blocks["uploaded"], strict=True)) == [("opportunities", "deals.csv", True)]
    before = own_store.row_count("opportunities")
    at = press(at, "Import mapping")
    assert own_store.row_count("opportunities") == before + 7
    assert rows_of(own_store, "opportunities", 1)["status"].to_list() == WON_AS_SUGGESTED


def test_a_mapping_file_naming_a_file_not_uploaded_says_which(app_store):
    toml = b'[[import]]\ntable = "customers"\nfile = "missing.csv"\n[import.columns]\ncustomer_id = "id"\n'
    at = open_data()
    at.file_uploader(key="data_mapping_upload").set_value(("m.toml", toml, "application/toml")).run()
    assert not at.exception, at.exception
    assert any(w.value.startswith("Upload missing\\.csv above") for w in at.warning)
    at.file_uploader(key="data_mapping_upload").set_value(("m.toml", b"[[import]\n", "application/toml")).run()
    assert not at.exception, at.exception
    assert any(e.value.startswith(f"**{plain('m.toml')} cannot be used.** the mapping is not valid TOML") for e in at.error)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.csv", b"", "empty\\.csv is empty"),
    ("broken.xlsx", b"not a workbook", "broken\\.xlsx is not a readable workbook"),
    ("latin.csv", "Name;Stadt\nJosé;Zürich\n".encode("latin-1"), None),
])
def test_a_bad_file_is_a_message_not_a_traceback(app_store, name, data, reason):
    at = upload(open_data(), (name, data))
    if reason is None:  # named the wrong encoding: a message; auto: read
        at.selectbox(key=next(k for k in at.session_state._state._state.filtered_state if k.startswith("data_encoding_"))) \
            .set_value("utf-8").run()
        assert not at.exception, at.exception
        assert any("latin\\.csv is not utf\\-8" in e.value for e in at.error)
        return
    assert any(reason in e.value for e in at.error), [e.value for e in at.error]
    assert not any(b.label == "Preview" for b in at.button)


def test_day_first_dates_get_their_format_and_import(own_store, tmp_path):
    data = b"customer_id,name,created_at\nC-900001,Ana,31/03/2026\nC-900002,Bo,01/04/2026\n"
    at = upload(open_data(), ("people.csv", data))
    suggestion = suggest_mapping(saved(tmp_path, "people.csv", data))
    assert widget(at.selectbox, "Import into table").value == suggestion.table == "customers"
    shown = widget(at.text_input, "Date formats (strptime patterns, comma-separated)").value
    assert shown == ", ".join(suggestion.mapping.blocks[0].date_formats) == "%d/%m/%Y"
    at = press(at, "Import")
    created = own_store.read("customers").filter(pl.col("customer_id").is_in(["C-900001", "C-900002"]))
    assert sorted(created["created_at"].to_list()) == [datetime(2026, 3, 31), datetime(2026, 4, 1)]


def test_file_values_are_shown_as_text(app_store):
    stage = "**Hot** :red[x] <b>y</b> $a$ :material/home:"
    data = f"Deal ID,Amount,Created,Stage,Status\nD-1,10,2026-03-02,{stage},won\n".encode()
    at = press(upload(open_data(), ("**deals**.csv", data)), "Validate")
    stage_warning = next(w.value for w in at.warning if "pipeline stage table" in w.value)
    assert stage_warning.startswith(plain(f"stages {stage} of opportunities"))
    assert "**Hot**" not in stage_warning and ":material/home:" not in stage_warning
    assert any(m.value.startswith(f"**{plain('**deals**.csv')}**: CSV") for m in at.markdown)
