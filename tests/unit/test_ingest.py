"""Running mappings (crm.ingest): every option of the mapping contract, all or nothing, warnings, undo.

Each test writes a few lines of CSV (or a tiny workbook) in tmp_path, runs a
mapping against a new SQLite store and compares the stored rows with values
worked out by hand from those lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest
import sqlalchemy as sa
import xlsxwriter
from polars.testing import assert_frame_equal

from crm import schema
from crm.ingest import ImportRejected, import_history, run_import, undo_import
from crm.mapping import Mode
from crm.store import Store
from tests.unit.importing import (
    CHINESE,
    assert_same_state,
    mapping,
    rows,
    run,
    sales_mapping,
    sqlite_store,
    state,
    write,
)

D = dt.datetime


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    with sqlite_store(tmp_path) as s:
        yield s


def _tickets(columns: str, extra: str = "", file: str = "t.csv") -> str:
    return f'[[import]]\ntable = "tickets"\nfile = "{file}"\n{extra}[import.columns]\n{columns}\n'


def _rejected(store, folder, toml, **options) -> ImportRejected:
    with pytest.raises(ImportRejected) as raised:
        run(store, folder, toml, **options)
    return raised.value


def _problems(error: ImportRejected) -> list[tuple[int, str, str | None, str]]:
    return [(p.row, p.column, p.value, p.rule) for p in error.problems]


# --- how the file is read ---------------------------------------------------------


def test_xlsx_named_sheet(store, tmp_path):
    book = xlsxwriter.Workbook(tmp_path / "export.xlsx")
    notes = book.add_worksheet("Notes")
    notes.write_row(0, 0, ["not", "the", "data"])
    deals = book.add_worksheet("Deals")
    deals.write_row(0, 0, ["Deal", "Value", "Opened"])
    deals.write_row(1, 0, ["X1", 1500.5])
    deals.write_datetime(1, 2, dt.datetime(2026, 2, 3, 4, 5, 6), book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}))
    deals.write_row(2, 0, ["X2", 20, "2026-02-04"])
    book.close()
    toml = ('[[import]]\ntable = "opportunities"\nfile = "export.xlsx"\nsheet = "Deals"\n[import.columns]\n'
            'opportunity_id = "Deal"\namount = "Value"\ncreated_at = "Opened"\n')
    plan, result = run(store, tmp_path, toml)
    assert result is not None and result.per_table == {"opportunities": 2}
    assert plan.blocks[0].source is not None and plan.blocks[0].source.format == "xlsx"
    assert rows(store, "opportunities", ["opportunity_id", "amount", "created_at"]) == [
        ("X1", 1500.5, D(2026, 2, 3, 4, 5, 6)), ("X2", 20.0, D(2026, 2, 4))]
    with pytest.raises(ImportRejected, match=r"export\.xlsx has no sheet 'Sales'"):
        run(store, tmp_path, toml.replace('"Deals"', '"Sales"'))


@pytest.mark.parametrize("encoding", ["auto", "gbk", "gb18030"])
def test_chinese_customers_in_gbk(store, tmp_path, encoding):
    write(tmp_path, "customers.csv", CHINESE, "gbk")
    toml = (f'[[import]]\ntable = "customers"\nfile = "customers.csv"\nencoding = "{encoding}"\n[import.columns]\n'
            'customer_id = "客户编号"\nname = "客户名称"\ncity = "城市"\nindustry = "行业"\n')
    plan, _ = run(store, tmp_path, toml)
    source = plan.blocks[0].source
    assert source is not None and source.encoding in ({encoding} if encoding != "auto" else {"gbk", "gb18030"})
    assert rows(store, "customers", ["customer_id", "name", "city", "industry"]) == [
        ("C1", "北京华信科技有限公司", "北京", "软件"), ("C2", "上海东方贸易公司", "上海", "零售"),
        ("C3", "广州南方物流集团", "广州", "物流"), ("C4", "深圳创新电子有限公司", "深圳", "制造"),
        ("C5", "杭州西湖茶叶合作社", "杭州", "农业"), ("C6", "成都天府餐饮管理公司", "成都", "餐饮")]


def test_latin1_named_and_detected(store, tmp_path):
    write(tmp_path, "c.csv", "id;name;city\nA;José Müller;Zürich\nB;Françoise;São Paulo\n", "latin-1")
    for encoding in ("latin-1", "auto"):
        toml = (f'[[import]]\ntable = "customers"\nfile = "c.csv"\nencoding = "{encoding}"\nmode = "replace"\n'
                '[import.columns]\ncustomer_id = "id"\nname = "name"\ncity = "city"\n')
        plan, _ = run(store, tmp_path, toml)
        assert plan.blocks[0].source is not None and plan.blocks[0].source.encoding == "latin-1"
        assert rows(store, "customers", ["customer_id", "name", "city"]) == [
            ("A", "José Müller", "Zürich"), ("B", "Françoise", "São Paulo")], encoding


def test_a_wrong_named_encoding_rejects_the_file(store, tmp_path):
    write(tmp_path, "customers.csv", CHINESE, "gbk")
    toml = ('[[import]]\ntable = "customers"\nfile = "customers.csv"\nencoding = "utf-8"\n'
            '[import.columns]\ncustomer_id = "客户编号"\n')
    error = _rejected(store, tmp_path, toml)
    assert "customers.csv is not utf-8: byte 0xbf at offset 0 cannot be decoded" in str(error)
    assert _problems(error)[0][:2] == (0, "(file)")
    assert store.row_count("customers") == 0


@pytest.mark.parametrize("delimiter", [",", ";", "\\t", "|", "whitespace"])
@pytest.mark.parametrize("named", [True, False])
def test_delimiters(store, tmp_path, delimiter, named):
    sep = {"\\t": "\t", "whitespace": "   "}.get(delimiter, delimiter)
    write(tmp_path, "t.csv", sep.join(["id", "opened", "prio"]) + "\n" + sep.join(["T1", "2026-03-01", "low"]) + "\n"
          + sep.join(["T2", "2026-03-02T10:30", "high"]) + "\n")
    extra = f'delimiter = "{delimiter}"\n' if named else ""
    plan, _ = run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"\npriority = "prio"', extra))
    assert plan.blocks[0].source is not None and plan.blocks[0].source.delimiter == delimiter.replace("\\t", "\t")
    assert rows(store, "tickets", ["ticket_id", "created_at", "priority"]) == [
        ("T1", D(2026, 3, 1), "low"), ("T2", D(2026, 3, 2, 10, 30), "high")]


def test_header_false(store, tmp_path):
    write(tmp_path, "t.csv", "T1,2026-03-01\nT2,2026-03-02\n")
    _, result = run(store, tmp_path, _tickets('ticket_id = "column_1"\ncreated_at = "column_2"', "header = false\n"))
    assert result is not None and result.loaded == 2  # the first line is data, not a header
    assert rows(store, "tickets", ["ticket_id", "created_at"]) == [("T1", D(2026, 3, 1)), ("T2", D(2026, 3, 2))]
    write(tmp_path, "bad.csv", "T3,2026-03-01\nT4,never\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "column_1"\ncreated_at = "column_2"', "header = false\n",
                                                "bad.csv"))
    assert _problems(error)[0][:3] == (2, "created_at", "never")  # line 2: no header line to count


def test_na_tokens_default_and_custom(store, tmp_path):
    write(tmp_path, "c.csv", "id,region,city,segment\nA,NA,-,N/A\nB,-,null,\n")
    columns = 'customer_id = "id"\nregion = "region"\ncity = "city"\nsegment = "segment"'
    default = f'[[import]]\ntable = "customers"\nfile = "c.csv"\n[import.columns]\n{columns}\n'
    run(store, tmp_path, default)
    assert rows(store, "customers", ["customer_id", "region", "city", "segment"]) == [
        ("A", None, "-", None), ("B", "-", None, None)]
    custom = default.replace('[import.columns]', 'na = ["-"]\nmode = "replace"\n[import.columns]')
    run(store, tmp_path, custom)
    assert rows(store, "customers", ["customer_id", "region", "city", "segment"]) == [
        ("A", "NA", None, "N/A"), ("B", None, "null", None)]


def test_date_formats_and_utc_offsets(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,20260102\nT2,2026/01/12 09:14:37.250\nT3,11/01/2026\n"
                             "T4,2006-01-11 15:49:42+02:00\nT5,2006-01-11T23:30:00-05:00\nT6,2026-01-11T08:09:10Z\n"
                             "T7,2026-01-31 23:59:59.5\nT8,11/01/2006 15:49 +0200\n")
    formats = 'date_formats = ["%Y%m%d", "%Y/%m/%d %H:%M:%S%.f", "%d/%m/%Y", "%d/%m/%Y %H:%M %z"]\n'
    run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"', formats))
    assert rows(store, "tickets", ["ticket_id", "created_at"]) == [
        ("T1", D(2026, 1, 2)), ("T2", D(2026, 1, 12, 9, 14, 37, 250000)), ("T3", D(2026, 1, 11)),
        ("T4", D(2006, 1, 11, 13, 49, 42)),  # +02:00 -> UTC, naive
        ("T5", D(2006, 1, 12, 4, 30)),  # -05:00 crosses midnight
        ("T6", D(2026, 1, 11, 8, 9, 10)), ("T7", D(2026, 1, 31, 23, 59, 59, 500000)),
        ("T8", D(2006, 1, 11, 13, 49))]  # an offset in a named pattern is converted too


def test_a_date_no_format_reads_is_rejected_with_its_rule(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,2026-01-02\nT2,01/13/2026\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"', 'date_formats = ["%d/%m/%Y"]\n'))
    assert _problems(error) == [(3, "created_at", "01/13/2026",
                                 "not a timestamp (use YYYY-MM-DD HH:MM:SS or %d/%m/%Y; name other formats in date_formats)")]
    assert "t.csv: row 3, column created_at, value '01/13/2026': not a timestamp" in str(error)


def test_a_column_format_overrides_the_block_formats(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened,due\nT1,03/04/2026,04/05/2026\n")
    run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"\nresolved_at = { from = "due", format = "%m/%d/%Y" }',
                                  'date_formats = ["%d/%m/%Y"]\n'))
    assert rows(store, "tickets", ["created_at", "resolved_at"]) == [(D(2026, 4, 3), D(2026, 4, 5))]


def test_unmapped_ignore_and_error(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened,Notes,Extra\nT1,2026-01-02,hello,x\n")
    columns = 'ticket_id = "id"\ncreated_at = "opened"'
    error = _rejected(store, tmp_path, _tickets(columns, 'unmapped = "error"\n'))
    assert [(p.row, p.column) for p in error.problems] == [(0, "Extra"), (0, "Notes")]
    assert error.problems[0].rule.startswith("unknown column; tickets has: agent, category, channel,")
    assert error.problems[0].rule.endswith('(map it, or set unmapped = "ignore")')
    assert store.row_count("tickets") == 0
    _, result = run(store, tmp_path, _tickets(columns, 'unmapped = "ignore"\n'))
    assert result is not None and result.loaded == 1
    _, result = run(store, tmp_path, _tickets(columns, 'unmapped = "error"\nmode = "replace"\n')
                    .replace('created_at = "opened"', 'created_at = "opened"\ncategory = "Notes"\nchannel = "Extra"'))
    assert rows(store, "tickets", ["ticket_id", "category", "channel"]) == [("T1", "hello", "x")]


def test_a_missing_source_column_is_named(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,2026-01-02\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "Opened At"'))
    assert _problems(error) == [(0, "Opened At", None, "no such column in t.csv; its columns: id, opened")]


# --- modes ---------------------------------------------------------------------------


def _load_three_tickets(store, folder):
    write(folder, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,2026-01-02,low\nT3,2026-01-03,high\n")
    run(store, folder, _tickets('ticket_id = "id"\ncreated_at = "opened"\npriority = "prio"'))


def test_insert_rejects_a_key_already_in_the_store(store, tmp_path):
    _load_three_tickets(store, tmp_path)
    before = state(store)
    write(tmp_path, "more.csv", "id,opened\nT4,2026-01-04\nT2,2026-01-05\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"', file="more.csv"))
    assert _problems(error) == [(3, "ticket_id", "T2", 'key already exists in the store (use mode = "upsert")')]
    assert_same_state(before, state(store))


def test_upsert_replaces_changed_rows_and_leaves_the_others(store, tmp_path):
    _load_three_tickets(store, tmp_path)
    write(tmp_path, "more.csv", "id,opened,prio\nT2,2026-02-02,urgent\nT4,2026-02-04,normal\n")
    _, result = run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"\npriority = "prio"',
                                              'mode = "upsert"\n', "more.csv"))
    assert result is not None and result.batch == 2
    assert rows(store, "tickets", ["ticket_id", "created_at", "priority", schema.IMPORT_BATCH]) == [
        ("T1", D(2026, 1, 1), "low", 1), ("T2", D(2026, 2, 2), "urgent", 2), ("T3", D(2026, 1, 3), "high", 1),
        ("T4", D(2026, 2, 4), "normal", 2)]


def test_replace_replaces_the_whole_table(store, tmp_path):
    _load_three_tickets(store, tmp_path)
    write(tmp_path, "more.csv", "id,opened\nT2,2026-02-02\nT9,2026-02-09\n")
    run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"', 'mode = "replace"\n', "more.csv"))
    assert rows(store, "tickets", ["ticket_id", "created_at", "priority"]) == [
        ("T2", D(2026, 2, 2), None), ("T9", D(2026, 2, 9), None)]


def test_upsert_of_stages_replaces_the_history_of_the_same_deals(store, tmp_path):
    write(tmp_path, "s.csv", "deal,stage,at\nO1,lead,2026-01-01\nO1,qualified,2026-01-05\nO2,lead,2026-01-02\n")
    columns = '[import.columns]\nopportunity_id = "deal"\nstage = "stage"\nentered_at = "at"\n'
    run(store, tmp_path, f'[[import]]\ntable = "opportunity_stages"\nfile = "s.csv"\n{columns}')
    write(tmp_path, "s2.csv", "deal,stage,at\nO1,lead,2026-01-03\nO1,proposal,2026-01-09\nO3,lead,2026-01-04\n")
    run(store, tmp_path, f'[[import]]\ntable = "opportunity_stages"\nfile = "s2.csv"\nmode = "upsert"\n{columns}')
    # O1's two old rows are gone (not merged row by row), O2 is untouched, O3 is new
    assert rows(store, "opportunity_stages", ["opportunity_id", "stage", "entered_at"]) == [
        ("O1", "lead", D(2026, 1, 3)), ("O1", "proposal", D(2026, 1, 9)), ("O2", "lead", D(2026, 1, 2)),
        ("O3", "lead", D(2026, 1, 4))]


def test_a_key_twice_in_one_file_or_in_two_blocks_is_rejected(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,2026-01-01\nT1,2026-01-02\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"'))
    assert _problems(error) == [(2, "ticket_id", "T1", "duplicate key within the file"),
                                (3, "ticket_id", "T1", "duplicate key within the file")]
    write(tmp_path, "a.csv", "id,opened\nT1,2026-01-01\n")
    block = _tickets('ticket_id = "id"\ncreated_at = "opened"', file="a.csv")
    error = _rejected(store, tmp_path, block + block)
    assert _problems(error) == [(2, "ticket_id", "T1", "key already written by an earlier block")]


# --- column specs ---------------------------------------------------------------------


def test_constants_of_every_kind(store, tmp_path):
    write(tmp_path, "o.csv", "id\nA\nB\n")
    run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\nopportunity_id = "id"\n'
                         'amount = { value = 1234.5 }\ncreated_at = { value = 2026-01-11T15:49:42 }\n'
                         'expected_close_date = { value = 2026-02-03 }\nregion = { value = "Europe" }\n'
                         'status = { value = "Won" }\nlost_reason = { value = "" }\n')
    expected = (1234.5, D(2026, 1, 11, 15, 49, 42), dt.date(2026, 2, 3), "Europe", "won", None)
    assert rows(store, "opportunities", ["opportunity_id", "amount", "created_at", "expected_close_date", "region",
                                         "status", "lost_reason"]) == [("A", *expected), ("B", *expected)]


def test_default_fills_only_missing_cells(store, tmp_path):
    write(tmp_path, "o.csv", "id,value,opened,region\nA,10,2026-01-01,North\nB,,2026-01-01,\nC,NA,2026-01-02,\n")
    run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\nopportunity_id = "id"\n'
                         'amount = { from = "value", default = 0 }\ncreated_at = "opened"\n'
                         'region = { from = "region", default = "Unknown" }\nsource = { from = "region", default = "" }\n')
    assert rows(store, "opportunities", ["opportunity_id", "amount", "region", "source"]) == [
        ("A", 10.0, "North", "North"), ("B", 0.0, "Unknown", None), ("C", 0.0, "Unknown", None)]


def test_value_maps_ignore_case_and_spaces_and_one_column_feeds_two(store, tmp_path):
    write(tmp_path, "o.csv", 'id,stage,product\nA," won ",GTXPro\nB,WON,gtx pro\nC,Lost,MG Special\nD,Engaging,\nE,,x\n'
                             'F,Dropped,y\n')
    run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\nopportunity_id = "id"\n'
                         'amount = { value = 1 }\ncreated_at = { value = 2026-01-01 }\nstage = "stage"\n'
                         'status = { from = "stage", values = { Won = "won", Lost = "lost", Dropped = "" }, '
                         'otherwise = "open" }\nproduct = { from = "product", values = { " GTX  Pro " = "GTX Pro" } }\n')
    # stage keeps the text (trimmed); status maps it; an empty mapped value is missing; unmatched products are kept
    assert rows(store, "opportunities", ["opportunity_id", "stage", "status", "product"]) == [
        ("A", "won", "won", "GTX Pro"), ("B", "WON", "won", "GTX Pro"), ("C", "Lost", "lost", "MG Special"),
        ("D", "Engaging", "open", None), ("E", None, None, "x"), ("F", "Dropped", None, "y")]


def test_enum_values_match_case_insensitively(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,Low\nT2,2026-01-01,HIGH\nT3,2026-01-01,uRgEnt\nT4,2026-01-01,\n")
    run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"\npriority = "prio"'))
    assert rows(store, "tickets", ["ticket_id", "priority"]) == [("T1", "low"), ("T2", "high"), ("T3", "urgent"), ("T4", None)]


def test_an_unmatched_enum_value_without_otherwise_is_a_validation_error(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,Critical\nT2,2026-01-01,Blocker\nT3,2026-01-01,Medium\n")
    error = _rejected(store, tmp_path, _tickets(
        'ticket_id = "id"\ncreated_at = "opened"\n'
        'priority = { from = "prio", values = { Critical = "urgent", medium = "normal" } }'))
    rule = "must be one of urgent, high, normal, low (map other values with values = { ... })"
    assert _problems(error) == [(3, "priority", "Blocker", rule)]
    assert f"row 3, column priority, value 'Blocker': {rule}" in str(error)
    assert store.row_count("tickets") == 0


def test_lookup_from_a_second_file(store, tmp_path):
    write(tmp_path, "o.csv", "id,agent\nA,Ann\nB,Bob\nC,Cy\nD,\n")
    write(tmp_path, "teams.csv", "agent,manager,office\nAnn,Mia,East\nBob,Max,\nAnn,Other,West\n")
    run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\nopportunity_id = "id"\n'
                         'amount = { value = 1 }\ncreated_at = { value = 2026-01-01 }\nowner = "agent"\n'
                         'team = { from = "agent", lookup = { file = "teams.csv", key = "agent", value = "manager" } }\n'
                         'region = { from = "agent", lookup = { file = "teams.csv", key = "agent", value = "office" }, '
                         'default = "None given" }\n')
    # the first row of a key wins; a name not in the list, or an empty cell, finds nothing
    assert rows(store, "opportunities", ["opportunity_id", "owner", "team", "region"]) == [
        ("A", "Ann", "Mia", "East"), ("B", "Bob", "Max", "None given"), ("C", "Cy", None, "None given"),
        ("D", None, None, "None given")]
    error = _rejected(store, tmp_path, '[[import]]\ntable = "customers"\nfile = "o.csv"\n[import.columns]\n'
                                       'customer_id = "id"\nowner = { from = "agent", lookup = { file = "teams.csv", '
                                       'key = "name", value = "manager" } }\n')
    assert "lookup file teams.csv has no column 'name'; its columns: agent, manager, office" in str(error)


def test_row_numbers_as_ids(store, tmp_path):
    write(tmp_path, "orders.txt", "customer date total\nA 2026-01-01 10\nB 2026-01-02 20\nA 2026-01-03 30\n")
    run(store, tmp_path, '[[import]]\ntable = "orders"\nfile = "orders.txt"\n[import.columns]\norder_id = { from = "@row" }\n'
                         'customer_id = "customer"\nordered_at = "date"\namount = "total"\n')
    assert rows(store, "orders", ["order_id", "customer_id", "amount"]) == [("1", "A", 10.0), ("2", "B", 20.0), ("3", "A", 30.0)]


@pytest.mark.parametrize(("cell", "fmt", "expected"), [
    ("1.234,50", "1.234,56", 1234.5),
    ("1,200", "1,234.56", 1200.0),
    ("1 234,5", "1 234,56", 1234.5),
    ("3,25", "1.234,56", 3.25),
    ("12", None, 12.0),
    ("12.75", None, 12.75),
    ("1.234,50", None, None),
    ("1,200", None, None),
    ("1,2345", "1,234.56", None),  # a group of four is not thousands
    ("NaN", None, None),
    ("inf", None, None),
    ("-inf", "1,234.56", None),
    ("1e400", None, None),
    ("abc", "1.234,56", None),
])
def test_number_formats(store, tmp_path, cell, fmt, expected):
    write(tmp_path, "r.csv", f'id,cust,at,total\nR1,A,2026-01-01,"{cell}"\n')
    spec = f'{{ from = "total", format = "{fmt}" }}' if fmt else '"total"'
    toml = ('[[import]]\ntable = "orders"\nfile = "r.csv"\n[import.columns]\norder_id = "id"\ncustomer_id = "cust"\n'
            f'ordered_at = "at"\namount = {spec}\n')
    if expected is None:
        error = _rejected(store, tmp_path, toml)
        assert _problems(error) == [(2, "amount", cell, "not a number")]
    else:
        run(store, tmp_path, toml)
        assert rows(store, "orders", ["amount"]) == [(expected,)]


def test_whole_numbers_and_probability_range(store, tmp_path):
    write(tmp_path, "p.csv", "stage,pos,p,kind\nA,1,0.1,Open\nB,2.5,0.2,open\nC,3,1.5,won\nD,4,0.3,maybe\n")
    error = _rejected(store, tmp_path, '[[import]]\ntable = "pipeline_stages"\nfile = "p.csv"\n[import.columns]\n'
                                       'stage = "stage"\nposition = "pos"\nwin_probability = "p"\nkind = "kind"\n')
    assert _problems(error) == [
        (3, "position", "2.5", "not a whole number"),
        (4, "win_probability", "1.5", "must be within 0.0..1.0"),
        (5, "kind", "maybe", "must be one of open, won, lost (map other values with values = { ... })")]


# --- derived rows, literal rows, event logs ------------------------------------------------


def test_stage_history_from_date_columns(store, tmp_path):
    write(tmp_path, "deals.csv", "id,stage,created,engaged,closed\nD1,Won,2026-01-01,2026-01-03,2026-01-10\n"
                                 "D2,Engaging,2026-01-02,2026-01-04,\nD3,Prospecting,2026-01-05,,\nD4,Lost,2026-01-06,,2026-01-07\n")
    plan, result = run(store, tmp_path, """
[[import]]
table = "opportunity_stages"
file = "deals.csv"
[[import.rows]]
opportunity_id = "id"
stage = { value = "Prospecting" }
entered_at = "created"
[[import.rows]]
opportunity_id = "id"
stage = { value = "Engaging" }
entered_at = "engaged"
[[import.rows]]
opportunity_id = "id"
stage = { from = "stage", values = { Won = "Won", Lost = "Lost" }, otherwise = "" }
entered_at = "closed"
""")
    # 4 deals x 3 rows = 12; skipped: D3, D4 (no engaged), D2, D3 (no closed)
    assert plan.blocks[0].skipped == 4 and result is not None and result.loaded == 8
    assert rows(store, "opportunity_stages", ["opportunity_id", "stage", "entered_at"]) == [
        ("D1", "Engaging", D(2026, 1, 3)), ("D1", "Prospecting", D(2026, 1, 1)), ("D1", "Won", D(2026, 1, 10)),
        ("D2", "Engaging", D(2026, 1, 4)), ("D2", "Prospecting", D(2026, 1, 2)), ("D3", "Prospecting", D(2026, 1, 5)),
        ("D4", "Lost", D(2026, 1, 7)), ("D4", "Prospecting", D(2026, 1, 6))]


def test_literal_rows_without_a_file(store, tmp_path):
    plan, _ = run(store, tmp_path, '[[import]]\ntable = "pipeline_stages"\n'
                                   '[[import.rows]]\nstage = { value = "Prospecting" }\nposition = { value = 1 }\n'
                                   'win_probability = { value = 0.1 }\nkind = { value = "Open" }\n'
                                   '[[import.rows]]\nstage = { value = "Won" }\nposition = { value = 2 }\n'
                                   'win_probability = { value = 1 }\nkind = { value = "won" }\n')
    assert plan.blocks[0].origin == "literal rows" and plan.blocks[0].skipped == 0
    assert rows(store, "pipeline_stages", ["stage", "position", "win_probability", "kind"]) == [
        ("Prospecting", 1, 0.1, "open"), ("Won", 2, 1.0, "won")]


EVENTS = """Case,Activity,Timestamp,Resource,Sev
C1,Open,2026/01/12 09:00:00.000,Ann,3 - Moderate
C1,Take in charge,2026/01/12 10:00:00.500,Bob,3 - Moderate
C2,Open,2026/01/13 08:00:00.000,Cy,4 - Low
C1,Reopen,2026/01/12 11:00:00.000,,1 - Critical
C1,Closed,2026/01/12 12:00:00.000,Dee,
C1,reopen,2026/01/12 13:00:00.000,Eve,
C1, CLOSED ,2026/01/12 14:00:00.000,Eve,
C3,Closed,2026/01/14 08:00:00.000,Fay,4 - Low
C3,Open,2026/01/13 07:00:00.000,Fay,2 - High
"""


def test_group_by_an_event_log(store, tmp_path):
    write(tmp_path, "events.csv", EVENTS)
    _, result = run(store, tmp_path, _tickets(
        'ticket_id = "Case"\ncreated_at = { from = "Timestamp", agg = "min" }\n'
        'first_response_at = { from = "Timestamp", agg = "min", where = { Activity = "Take in charge" } }\n'
        'resolved_at = { from = "Timestamp", agg = "max", where = { Activity = "Closed" } }\n'
        'agent = { from = "Resource", agg = "last" }\nteam = { from = "Resource", agg = "first" }\n'
        'channel = { from = "Activity", agg = "first", where = { Activity = "Closed" } }\n'
        'reopened = { from = "Activity", agg = "count", where = { Activity = "Reopen" } }\n'
        'priority = { from = "Sev", agg = "last", values = { "1 - Critical" = "urgent", "2 - High" = "high", '
        '"3 - Moderate" = "normal", "4 - Low" = "low" } }',
        'group_by = "Case"\ndate_formats = ["%Y/%m/%d %H:%M:%S%.f"]\n', "events.csv"))
    assert result is not None and result.loaded == 3
    # C1: 7 events. min 09:00; first "Take in charge" 10:00:00.5; "Closed" matches " CLOSED " too, max 14:00;
    #     last non-empty Resource in file order Eve, first Ann; 2 reopens ("Reopen", "reopen"); last non-empty Sev: Critical
    # C2: one Open event: nothing answered, closed or reopened
    # C3: events out of time order: min is the 07:00 Open (second line), last Sev in file order is "2 - High"
    assert rows(store, "tickets", ["ticket_id", "created_at", "first_response_at", "resolved_at", "agent", "team",
                                   "channel", "reopened", "priority"]) == [
        ("C1", D(2026, 1, 12, 9), D(2026, 1, 12, 10, 0, 0, 500000), D(2026, 1, 12, 14), "Eve", "Ann", "Closed", 2, "urgent"),
        ("C2", D(2026, 1, 13, 8), None, None, "Cy", "Cy", None, 0, "low"),
        ("C3", D(2026, 1, 13, 7), None, D(2026, 1, 14, 8), "Fay", "Fay", "Closed", 0, "high")]


def test_group_by_problems_name_the_source_line(store, tmp_path):
    write(tmp_path, "events.csv", "Case,Timestamp\nC1,2026-01-01\nC2,2026-01-02\nC1,yesterday\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "Case"\ncreated_at = { from = "Timestamp", agg = "min" }',
                                                'group_by = "Case"\n', "events.csv"))
    assert [(p.row, p.column, p.value) for p in error.problems] == [(4, "created_at", "yesterday")]


# --- all or nothing, quarantine, dry run ---------------------------------------------------


def test_a_failure_in_the_last_block_writes_nothing(store, tmp_path):
    run(store, tmp_path, sales_mapping(tmp_path))
    before = state(store)
    assert before[1] == 1 and before[0]["opportunities"].height == 3
    header = "id,agent,account,deal_stage,engage_date,close_date,close_value\n"
    good = header + "D1,Ann,Acme,Won,2026-02-05,2026-02-20,900\nD9,Cy,Core,Lost,2026-02-01,,\n"
    text = sales_mapping(tmp_path, "good.csv", good)
    write(tmp_path, "bad.csv", header + "D1,Ann,Acme,Won,2026-02-05,2026-02-30,900\n")
    last = text.rindex('file = "good.csv"')
    text = text[:last] + 'file = "bad.csv"' + text[last + len('file = "good.csv"'):]
    # blocks 1 (stage list, replace) and 2 (deals, upsert) are valid; only block 3 reads the impossible 30 February
    plan, _ = run(store, tmp_path, text, dry_run=True)
    assert [b.problems.height for b in plan.blocks] == [0, 0, 1] and plan.counts(quarantine=False)["opportunities"] == 2
    error = _rejected(store, tmp_path, text)
    assert [(p.source, p.row, p.column, p.value) for p in error.problems] == [("bad.csv", 2, "entered_at", "2026-02-30")]
    assert_same_state(before, state(store))
    assert import_history(store)["id"].to_list() == [1]


def test_a_database_error_mid_write_writes_nothing(store, tmp_path):
    store.ensure_schema()
    with store.transaction() as conn:  # the store itself refuses one row of the last block
        conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON opportunity_stages WHEN NEW.opportunity_id = 'D2' "
                             "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"))
    before = state(store)
    with pytest.raises(ImportRejected, match=r"the database refused the import \(refused by trigger\); nothing was written"):
        run(store, tmp_path, sales_mapping(tmp_path))
    assert_same_state(before, state(store))
    assert import_history(store).height == 0


def test_quarantine_writes_the_bad_rows_with_reasons_and_loads_the_rest(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened,prio\nT1,2026-01-01,low\nT2,bad,high\nT3,2026-01-03,Blocker\n"
                             "T4,2026-01-04 10:00,Critical\n"
                             "T5,never,Blocker\n")
    folder = tmp_path / "rejected"
    _, result = run(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"\n'
                                              'priority = { from = "prio", values = { Critical = "urgent" } }'),
                       quarantine=folder)
    assert result is not None and (result.loaded, result.quarantined) == (2, 3)
    assert rows(store, "tickets", ["ticket_id", "priority"]) == [("T1", "low"), ("T4", "urgent")]
    timestamp = "created_at: not a timestamp (use YYYY-MM-DD HH:MM:SS; name other formats in date_formats)"
    enum = '"priority: must be one of urgent, high, normal, low (map other values with values = { ... })"'
    assert (folder / "tickets.csv").read_text() == (
        "_line,id,opened,prio,_problem,_file\n"
        f"3,T2,bad,high,{timestamp},t.csv\n"
        f"4,T3,2026-01-03,Blocker,{enum},t.csv\n"
        f'6,T5,never,Blocker,"{timestamp}; {enum[1:-1]}",t.csv\n')
    assert import_history(store).row(0, named=True)["status"] == "partial"


def test_quarantine_with_every_row_bad_changes_nothing(store, tmp_path):
    _load_three_tickets(store, tmp_path)
    before = state(store)
    write(tmp_path, "bad.csv", "id,opened\nT8,soon\nT9,later\n")
    error = _rejected(store, tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"', file="bad.csv"),
                      quarantine=tmp_path / "q")
    assert "no valid rows to import (tickets from bad.csv); nothing was written" in str(error)
    assert_same_state(before, state(store))
    assert not (tmp_path / "q").exists()


def test_a_dry_run_writes_nothing_and_counts_what_the_real_run_writes(store, tmp_path):
    text = sales_mapping(tmp_path)
    plan, result = run(store, tmp_path, text, dry_run=True)
    assert result is None and not store.has_schema()
    assert plan.counts(quarantine=False) == {"pipeline_stages": 3, "opportunities": 3, "opportunity_stages": 5}
    assert [b.skipped for b in plan.blocks] == [0, 0, 1]  # D3 is still open: no close date
    _, result = run(store, tmp_path, text)
    assert result is not None and result.per_table == plan.counts(quarantine=False) and result.loaded == 11


def test_a_dry_run_with_quarantine_counts_the_good_rows(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,2026-01-01\nT2,bad\nT3,2026-01-03\n")
    toml = _tickets('ticket_id = "id"\ncreated_at = "opened"')
    plan, _ = run(store, tmp_path, toml, dry_run=True, quarantine=tmp_path / "q")
    assert plan.counts(quarantine=True) == {"tickets": 2} and plan.counts(quarantine=False) == {"tickets": 3}
    assert plan.problem_count() == 1
    assert state(store) == ({}, 0) and not (tmp_path / "q").exists()
    _, result = run(store, tmp_path, toml, quarantine=tmp_path / "q")
    assert result is not None and result.per_table == plan.counts(quarantine=True)


NO_CUSTOMERS = ("customers is empty (in the store and this import): the customer_id values of opportunities from "
                "sales.csv cannot be checked yet. Import customers too, to check them and to see their names.")


def test_the_sales_mapping_by_hand(store, tmp_path):
    plan, result = run(store, tmp_path, sales_mapping(tmp_path))
    assert result is not None and result.warnings == (NO_CUSTOMERS,)
    assert rows(store, "pipeline_stages", ["stage", "position", "win_probability", "kind"]) == [
        ("Engaging", 1, 0.5, "open"), ("Lost", 3, 0.0, "lost"), ("Won", 2, 1.0, "won")]
    assert rows(store, "opportunities", ["opportunity_id", "customer_id", "owner", "team", "amount", "created_at", "closed_at",
                                         "stage", "status"]) == [
        ("D1", "Acme", "Ann", "Mia", 100.0, D(2026, 1, 5), D(2026, 1, 20), "Won", "won"),
        ("D2", "Beta", "Bob", "Max", 0.0, D(2026, 1, 6), D(2026, 1, 9), "Lost", "lost"),
        ("D3", "Acme", "Ann", "Mia", 0.0, D(2026, 1, 7), None, "Engaging", "open")]
    assert rows(store, "opportunity_stages", ["opportunity_id", "stage", "entered_at"]) == [
        ("D1", "Engaging", D(2026, 1, 5)), ("D1", "Won", D(2026, 1, 20)), ("D2", "Engaging", D(2026, 1, 6)),
        ("D2", "Lost", D(2026, 1, 9)), ("D3", "Engaging", D(2026, 1, 7))]
    assert plan.blocks[0].block.mode == Mode.REPLACE


# --- warnings -------------------------------------------------------------------------


def test_warnings_status_empty_unknown_stages_empty_column_one_day(store, tmp_path):
    write(tmp_path, "o.csv", "id,amount,created,stage,reason\nA,10,2026-01-05,Zeta,\nB,20,2026-01-05 13:00,Alpha,\n")
    plan, _ = run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\n'
                                   'opportunity_id = "id"\namount = "amount"\ncreated_at = "created"\nstage = "stage"\n'
                                   'lost_reason = "reason"\n', dry_run=True)
    assert plan.warnings == (
        "every deal's status is empty in o.csv: revenue won, win rate and the open pipeline will read 0 or —. "
        "Map a column to status (open/won/lost) or give a value.",
        "stages Alpha, Zeta of opportunities are not in the pipeline stage table: the funnel cannot order them "
        "(add a pipeline_stages block with their position and kind).",
        "every opportunities.created_at in o.csv is on 2026-01-05: check the column and its date format.",
        "opportunities.lost_reason is empty in every row of o.csv.",
    )


def test_no_warnings_when_the_stages_are_known_and_dates_spread(store, tmp_path):
    run(store, tmp_path, '[[import]]\ntable = "pipeline_stages"\n[[import.rows]]\nstage = { value = "Zeta" }\n'
                         'position = { value = 1 }\nwin_probability = { value = 0.5 }\nkind = { value = "open" }\n')
    write(tmp_path, "o.csv", "id,amount,created,stage,status\nA,10,2026-01-05,Zeta,open\nB,20,2026-01-06,Zeta,won\n")
    plan, result = run(store, tmp_path, '[[import]]\ntable = "opportunities"\nfile = "o.csv"\n[import.columns]\n'
                                        'opportunity_id = "id"\namount = "amount"\ncreated_at = "created"\nstage = "stage"\n'
                                        'status = "status"\n')
    assert plan.warnings == () and result is not None and result.warnings == ()
    plan, _ = run(store, tmp_path, sales_mapping(tmp_path).replace("Engaging", "Talking", 1), dry_run=True)
    assert plan.warnings == (NO_CUSTOMERS,
                             "stages Engaging of opportunities are not in the pipeline stage table: the funnel cannot order "
                             "them (add a pipeline_stages block with their position and kind).",
                             "stages Engaging of opportunity_stages are not in the pipeline stage table: the funnel cannot "
                             "order them (add a pipeline_stages block with their position and kind).")


def test_survey_scores_out_of_scale(store, tmp_path):
    write(tmp_path, "s.csv", "id,kind,score,at\nS1,nps,11,2026-01-05\nS2,CSAT,4,2026-01-06\nS3,csat,0,2026-01-07\n"
                             "S4,nps,0,2026-01-08\n")
    toml = ('[[import]]\ntable = "survey_responses"\nfile = "s.csv"\n[import.columns]\nresponse_id = "id"\nkind = "kind"\n'
            'score = "score"\nresponded_at = "at"\n')
    plan, _ = run(store, tmp_path, toml, dry_run=True)
    assert plan.warnings == ("2 survey score(s) in s.csv are outside their scale (NPS 0–10, CSAT 1–5): is the kind right?",)
    assert [(p.row, p.column, p.rule) for p in plan.problems()] == [
        (2, "score", "NPS scores are 0–10, CSAT scores 1–5 (whole numbers)"),
        (4, "score", "NPS scores are 0–10, CSAT scores 1–5 (whole numbers)")]
    _, result = run(store, tmp_path, toml, quarantine=tmp_path / "q")
    assert result is not None and result.loaded == 2
    assert rows(store, "survey_responses", ["response_id", "kind", "score"]) == [("S2", "csat", 4.0), ("S4", "nps", 0.0)]


def test_every_derived_row_skipped_is_a_warning(store, tmp_path):
    write(tmp_path, "d.csv", "id,closed\nD1,\nD2,\n")
    plan, _ = run(store, tmp_path, '[[import]]\ntable = "opportunity_stages"\nfile = "d.csv"\n[[import.rows]]\n'
                                   'opportunity_id = "id"\nentered_at = "closed"\n', dry_run=True)
    assert plan.blocks[0].skipped == 2
    assert plan.warnings == ("opportunity_stages from d.csv: every derived row was skipped (a required cell was empty in each).",)


# --- undo -------------------------------------------------------------------------------


def _customers(store, folder, name, text, mode="insert"):
    write(folder, name, text)
    _, result = run(store, folder, f'[[import]]\ntable = "customers"\nfile = "{name}"\nmode = "{mode}"\n[import.columns]\n'
                                   'customer_id = "id"\nname = "name"\ncreated_at = "at"\n')
    assert result is not None
    return result.batch


def test_undo_an_insert(store, tmp_path):
    first = _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01\nC2,Two,2026-01-02\n")
    second = _customers(store, tmp_path, "b.csv", "id,name,at\nC3,Three,2026-01-03\n")
    assert (first, second, store.data_version()) == (1, 2, 2)
    done = undo_import(store, second, actor="tester")
    assert (done.removed, done.restored, done.data_version) == ({"customers": 1}, {}, 3)
    assert rows(store, "customers", ["customer_id", "name", "created_at", schema.IMPORT_BATCH]) == [
        ("C1", "One", D(2026, 1, 1), 1), ("C2", "Two", D(2026, 1, 2), 1)]
    history = import_history(store)
    assert history.select("id", "status", "undone_by").rows() == [(2, "loaded", "tester"), (1, "loaded", None)]
    assert history["undone_at"].null_count() == 1


def test_undo_an_upsert_brings_back_the_overwritten_rows(store, tmp_path):
    _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01 08:30:15.25\nC2,Two,2026-01-02\nC3,,\n")
    before = state(store)
    _customers(store, tmp_path, "b.csv", "id,name,at\nC2,Zwei,2026-02-02\nC3,Drei,2026-02-03\nC4,Vier,\n", "upsert")
    assert rows(store, "customers", ["customer_id", "name"]) == [("C1", "One"), ("C2", "Zwei"), ("C3", "Drei"), ("C4", "Vier")]
    done = undo_import(store, 2)
    assert (done.removed, done.restored) == ({"customers": 3}, {"customers": 2})
    after = state(store)
    assert after[1] == before[1] + 2  # the upsert and its undo
    assert_frame_equal(after[0]["customers"], before[0]["customers"])


def test_undo_a_replace_brings_back_the_old_table(store, tmp_path):
    _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01\nC2,Two,2026-01-02 23:59:59\n")
    with store.transaction() as conn:  # a row no import wrote (import_batch empty), e.g. demo data
        conn.execute(schema.customers.insert().values(customer_id="X", name="Demo", region="Asia"))
    before = state(store)
    _customers(store, tmp_path, "b.csv", "id,name,at\nC9,Nine,2026-03-01\n", "replace")
    assert rows(store, "customers", ["customer_id"]) == [("C9",)]
    done = undo_import(store, 2)
    assert (done.removed, done.restored) == ({"customers": 1}, {"customers": 3})
    assert_frame_equal(state(store)[0]["customers"], before[0]["customers"])


def test_undo_a_three_block_import_restores_every_table(store, tmp_path):
    run(store, tmp_path, sales_mapping(tmp_path))
    before = state(store)
    changed = sales_mapping(tmp_path, "sales2.csv", "id,agent,account,deal_stage,engage_date,close_date,close_value\n"
                                                    "D2,Bob,Beta,Won,2026-01-06,2026-02-01,70\nD4,Cy,Core,Engaging,2026-02-02,,\n")
    _, result = run(store, tmp_path, changed)
    assert result is not None and result.per_table == {"pipeline_stages": 3, "opportunities": 2, "opportunity_stages": 3}
    assert rows(store, "opportunity_stages", ["opportunity_id", "stage"]) == [
        ("D1", "Engaging"), ("D1", "Won"), ("D2", "Engaging"), ("D2", "Won"), ("D3", "Engaging"), ("D4", "Engaging")]
    done = undo_import(store, result.batch)
    assert done.removed == {"opportunity_stages": 3, "opportunities": 2, "pipeline_stages": 3}
    assert done.restored == {"pipeline_stages": 3, "opportunities": 1, "opportunity_stages": 2}
    after = state(store)
    for name, frame in before[0].items():
        assert_frame_equal(after[0][name], frame)


def test_undo_is_refused_when_a_later_import_touched_the_table_or_twice(store, tmp_path):
    first = _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01\n")
    second = _customers(store, tmp_path, "b.csv", "id,name,at\nC1,Uno,2026-01-01\n", "upsert")
    with pytest.raises(ImportRejected, match=f"^import {second} changed the same tables after import {first}: undo it first$"):
        undo_import(store, first)
    assert rows(store, "customers", ["customer_id", "name"]) == [("C1", "Uno")] and store.data_version() == 2
    undo_import(store, second)
    with pytest.raises(ImportRejected, match=f"^import {second} was already undone on "):
        undo_import(store, second)
    assert store.data_version() == 3
    undo_import(store, first)  # now the latest in force on customers
    assert store.row_count("customers") == 0 and store.data_version() == 4
    with pytest.raises(ImportRejected, match=r"^there is no import 9$"):
        undo_import(store, 9)


def test_an_undo_the_database_refuses_changes_nothing(store, tmp_path):
    _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01\nC2,Two,2026-01-02\n")
    _customers(store, tmp_path, "b.csv", "id,name,at\nC2,Zwei,2026-02-02\n", "upsert")
    with store.transaction() as conn:  # putting the old C2 back is refused
        conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON customers WHEN NEW.name = 'Two' "
                             "BEGIN SELECT RAISE(ABORT, 'no going back'); END"))
    before = state(store)
    with pytest.raises(ImportRejected, match=r"^import 2 could not be undone \(no going back\); nothing was changed$"):
        undo_import(store, 2)
    assert_same_state(before, state(store))
    assert import_history(store)["undone_at"].null_count() == 2


def test_demo_data_loaded_over_imports_makes_them_not_undoable(store, tmp_path):
    batch = _customers(store, tmp_path, "a.csv", "id,name,at\nC1,One,2026-01-01\n")
    store.replace_business_data({"customers": pl.DataFrame({"customer_id": ["Z"]})})
    with pytest.raises(ImportRejected, match="its rows are no longer in the store"):
        undo_import(store, batch)
    assert rows(store, "customers", ["customer_id"]) == [("Z",)]


def test_run_import_accepts_a_mapping_object(store, tmp_path):
    write(tmp_path, "t.csv", "id,opened\nT1,2026-01-01\n")
    _, result = run_import(store, mapping(tmp_path, _tickets('ticket_id = "id"\ncreated_at = "opened"')), actor="ann",
                           mapping_text="# the text")
    assert result is not None
    history = import_history(store).row(0, named=True)
    assert (history["actor"], history["tables"], history["files"], history["rows"], history["rejected"]) == (
        "ann", "tickets", "t.csv", 1, 0)
