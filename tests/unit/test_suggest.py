"""Draft mappings (crm.suggest): the table, the columns, the date format and the value maps a person would pick."""

from __future__ import annotations

from datetime import datetime

from crm.ingest import run_import
from crm.mapping import ColumnSpec, parse_mapping, to_toml
from crm.suggest import choose_table, suggest_mapping
from tests.unit.importing import CHINESE, rows, sqlite_store, write

SALES = """opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
D1,Ann Lee,GTX,Acme,Won,01/31/2026,02/10/2026,1200
D2,Bob Ray,MG,Beta,Lost,02/01/2026,02/20/2026,0
D3,Ann Lee,GTX,Core,Engaging,02/15/2026,,
D4,Cy Fox,MG,Acme,Won,03/02/2026,03/30/2026,80
"""

TICKETS = """Ticket ID,Customer,Created,Priority,Channel,Subject
T-1,C1,2026-01-02 10:00,Critical,Email,Down
T-2,C2,2026-01-03 11:00,High,Phone,Slow
T-3,C1,2026-01-04 12:00,Medium,Chat,Question
T-4,C3,2026-01-05 13:00,Low,Email,Hello
"""


def test_a_sales_export(tmp_path):
    path = write(tmp_path, "sales.csv", SALES)
    suggestion = suggest_mapping(path)
    assert suggestion.table == "opportunities"
    (block,) = suggestion.mapping.blocks
    assert block.file == path and block.date_formats == ("%m/%d/%Y",)  # 01/31/2026 rules out day first
    specs = dict(block.columns)
    assert specs["opportunity_id"] == ColumnSpec(source="opportunity_id")
    assert specs["amount"] == ColumnSpec(source="close_value", default="0")  # D3 (open) has no close value
    assert "amount is empty in 1 row(s) of 'close_value': default = 0 proposed; check it" in suggestion.notes
    assert specs["created_at"] == ColumnSpec(source="engage_date")
    assert specs["closed_at"] == ColumnSpec(source="close_date")
    assert specs["owner"] == ColumnSpec(source="sales_agent")
    assert specs["customer_id"] == ColumnSpec(source="account")
    assert specs["stage"] == ColumnSpec(source="deal_stage")
    assert specs["status"] == ColumnSpec(source="deal_stage", values=(("Won", "won"), ("Lost", "lost")), otherwise="open")


def test_the_sales_draft_imports_as_suggested(tmp_path):
    path = write(tmp_path, "sales.csv", SALES)
    text = to_toml(suggest_mapping(path).mapping)
    with sqlite_store(tmp_path) as store:
        run_import(store, parse_mapping(text, tmp_path))
        assert rows(store, "opportunities", ["opportunity_id", "owner", "amount", "status", "created_at"]) == [
            ("D1", "Ann Lee", 1200.0, "won", datetime(2026, 1, 31)),
            ("D2", "Bob Ray", 0.0, "lost", datetime(2026, 2, 1)),
            ("D3", "Ann Lee", 0.0, "open", datetime(2026, 2, 15)),
            ("D4", "Cy Fox", 80.0, "won", datetime(2026, 3, 2))]


def test_a_ticket_export_gets_a_priority_map(tmp_path):
    suggestion = suggest_mapping(write(tmp_path, "tickets.csv", TICKETS))
    assert suggestion.table == "tickets"
    (block,) = suggestion.mapping.blocks
    specs = dict(block.columns)
    assert specs["priority"] == ColumnSpec(source="Priority", values=(
        ("Critical", "urgent"), ("High", "high"), ("Medium", "normal"), ("Low", "low")))
    assert specs["ticket_id"] == ColumnSpec(source="Ticket ID") and specs["created_at"] == ColumnSpec(source="Created")
    assert block.date_formats == ()  # ISO already
    assert 'not used (unmapped = "ignore"): Subject' in suggestion.notes


def test_canonical_words_need_no_value_map_and_a_missing_required_column_is_noted(tmp_path):
    suggestion = suggest_mapping(write(tmp_path, "t.csv", "ticket_id,priority\nT1,urgent\nT2,low\n"))
    specs = dict(suggestion.mapping.blocks[0].columns)
    assert specs["priority"] == ColumnSpec(source="priority")
    assert ("required column created_at has no source column: map one, or give a value or default"
            in suggestion.notes)


def test_a_named_table_and_chinese_headers(tmp_path):
    suggestion = suggest_mapping(write(tmp_path, "c.csv", CHINESE, "gbk"), "customers")
    assert suggestion.source.encoding in ("gbk", "gb18030")
    assert dict(suggestion.mapping.blocks[0].columns) == {
        "customer_id": ColumnSpec(source="客户编号"), "name": ColumnSpec(source="客户名称"), "city": ColumnSpec(source="城市"),
        "industry": ColumnSpec(source="行业")}
    assert choose_table(["Case ID", "Created", "Priority", "Agent"]) == "tickets"
