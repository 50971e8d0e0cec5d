"""The mapping file checker (crm.mapping): mistakes named by block and key; TOML out and back in unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm.mapping import Agg, ColumnSpec, ImportBlock, Lookup, MappingError, Mode, load_mapping_file, parse_mapping, to_toml
from crm.sources import ReadOptions

RICH = """
[[import]]
table = "pipeline_stages"
mode = "replace"
[[import.rows]]
stage = { value = "Prospecting" }
position = { value = 1 }
win_probability = { value = 0.25 }
kind = { value = "open" }
[[import.rows]]
stage = { value = "Won" }
position = { value = 2 }
win_probability = { value = 1.0 }
kind = { value = "won" }

[[import]]
table = "opportunities"
file = "deals/book.xlsx"
format = "xlsx"
sheet = "Deals"
header = false
na = ["-", "n.a."]
date_formats = ["%d/%m/%Y", "%Y%m%d"]
unmapped = "error"
mode = "upsert"
[import.columns]
opportunity_id = "column_1"
owner = { from = "column_2" }
team = { from = "column_2", lookup = { file = "teams.csv", key = "agent", value = "manager" } }
amount = { from = "column_3", default = 0, format = "1.234,56" }
region = { value = "Europe" }
status = { from = "column_4", values = { " Won " = "won", Lost = "lost", Dropped = "" }, otherwise = "open" }
created_at = { from = "column_5", format = "%m/%d/%Y" }
expected_close_date = { value = 2026-07-01 }
closed_at = { from = "column_6", default = 2026-01-02T03:04:05 }
lost_reason = { from = "column_7", default = "" }

[[import]]
table = "tickets"
file = "events.csv"
encoding = "gbk"
delimiter = ";"
group_by = ["Case ID", "Queue"]
[import.columns]
ticket_id = "Case ID"
team = { from = "Queue", agg = "first" }
created_at = { from = "Timestamp", agg = "min" }
resolved_at = { from = "Timestamp", agg = "max", where = { Activity = "Closed", Kind = "final" } }
reopened = { from = "Activity", agg = "count", where = { Activity = "Reopen" } }
agent = { from = "Resource", agg = "last" }

[[import]]
table = "orders"
file = "orders.txt"
delimiter = "whitespace"
[import.columns]
order_id = { from = "@row" }
customer_id = "cust"
ordered_at = "date"
amount = { from = "total", format = "1,234.56" }
"""


def _parse(text: str, base: Path = Path("/data")):
    return parse_mapping(text, base)


def _block(columns: str, table: str = "opportunities", extra: str = "") -> str:
    return f'[[import]]\ntable = "{table}"\nfile = "a.csv"\n{extra}[import.columns]\n{columns}\n'


def test_a_rich_mapping_is_read_as_written(tmp_path):
    mapping = _parse(RICH, tmp_path)
    stages, deals, tickets, orders = mapping.blocks
    assert (stages.file, stages.mode, len(stages.rows), stages.columns) == (None, Mode.REPLACE, 2, ())
    assert dict(stages.rows[0]) == {"stage": ColumnSpec(value="Prospecting"), "position": ColumnSpec(value="1"),
                                    "win_probability": ColumnSpec(value="0.25"), "kind": ColumnSpec(value="open")}
    assert deals.file == tmp_path / "deals" / "book.xlsx"
    assert deals.read == ReadOptions(format="xlsx", sheet="Deals", encoding="auto", delimiter="auto", header=False,
                                     na=("-", "n.a."))
    assert (deals.date_formats, deals.unmapped, deals.mode) == (("%d/%m/%Y", "%Y%m%d"), "error", Mode.UPSERT)
    specs = dict(deals.columns)
    assert specs["team"].lookup == Lookup(tmp_path / "teams.csv", "agent", "manager")
    assert specs["amount"] == ColumnSpec(source="column_3", default="0", format="1.234,56")
    assert specs["status"].values == ((" Won ", "won"), ("Lost", "lost"), ("Dropped", ""))
    assert specs["expected_close_date"].value == "2026-07-01"  # a TOML date is a constant like any other
    assert specs["closed_at"].default == "2026-01-02 03:04:05"
    assert tickets.group_by == ("Case ID", "Queue")
    assert tickets.read.encoding == "gbk" and tickets.read.delimiter == ";"
    assert dict(tickets.columns)["resolved_at"] == ColumnSpec(source="Timestamp", agg=Agg.MAX,
                                                              where=(("Activity", "Closed"), ("Kind", "final")))
    assert tickets.source_columns() == {"Case ID", "Queue", "Timestamp", "Activity", "Kind", "Resource"}
    assert dict(orders.columns)["order_id"].source == "@row"
    assert orders.source_columns() == {"cust", "date", "total"}  # @row is not a column of the file


def test_to_toml_round_trips_a_rich_mapping(tmp_path):
    mapping = _parse(RICH, tmp_path)
    text = to_toml(mapping)
    again = parse_mapping(text, tmp_path)
    assert again == mapping
    assert to_toml(again) == text


def test_to_toml_writes_only_what_differs_from_the_defaults(tmp_path):
    text = to_toml(_parse(_block('opportunity_id = "id"\namount = { from = "v" }\ncreated_at = "c"'), tmp_path))
    assert text == ('[[import]]\ntable = "opportunities"\nfile = "a.csv"\n\n[import.columns]\n'
                    'opportunity_id = "id"\namount = "v"\ncreated_at = "c"\n')


@pytest.mark.parametrize(("text", "message"), [
    (_block('status = { from = "s", vals = { Won = "won" } }'),
     "block 1 (opportunities), columns, status: unknown key(s) vals; known: agg, default,"),
    ('[[import]]\ntable = "tickets"\nfile = "a.csv"\nencodng = "gbk"\n[import.columns]\nticket_id = "x"\n',
     "block 1: unknown key(s) encodng; known: columns,"),
    (_block('ticket_id = "x"', "tickets") + _block('customer_id = { from = "id", lookup = { file = "x", key = "k", '
                                                  'value = "v", extra = "e" } }', "customers"),
     'block 2 (customers), columns, customer_id: lookup is { file = "...", key = "column", value = "column" }'),
    (_block('amount = "x"\nstatus = { from = "s", valu = "won" }'),
     "block 1 (opportunities), columns, status: unknown key(s) valu"),
    ('[[import]]\ntable = "pipeline_stages"\n[[import.rows]]\nstage = { value = "a" }\n'
     '[[import.rows]]\nstage = { vaule = "b" }\n',
     "block 1 (pipeline_stages), row spec 2, stage: unknown key(s) vaule"),
    (_block('ticket_idd = "x"', "tickets"), "block 1 (tickets), columns: tickets has no column 'ticket_idd'"),
    (_block('x = "x"', "deals"), "block 1: table must be one of customers, opportunities,"),
    ("[[import]\n", "the mapping is not valid TOML"),
    ("x = 1\n", "unknown top-level key(s) x"),
    ("", "the mapping has no [[import]] block"),
    (_block('ticket_id = { from = "x", agg = "min" }', "tickets"), "block 1 (tickets), columns, ticket_id: agg needs group_by"),
    (_block('ticket_id = { from = "x", where = { a = "b" } }', "tickets", 'group_by = "x"\n'),
     "ticket_id: where chooses the rows an agg reads: give agg too"),
    (_block('ticket_id = { from = "x", agg = "median" }', "tickets", 'group_by = "x"\n'),
     "ticket_id: agg must be one of first, last, min, max, count"),
    (_block('ticket_id = "x"\nresolved_at = { from = "t", agg = "count" }', "tickets", 'group_by = "x"\n'),
     'block 1 (tickets), columns, resolved_at: agg = "count" gives a number of rows; resolved_at is not a number column'),
    (_block('opportunity_id = "x"\nstatus = { from = "s", agg = "count" }', "opportunities", 'group_by = "x"\n'),
     'status: agg = "count" gives a number of rows; status is not a number column'),
    (_block('ticket_id = { from = "x", value = "y" }', "tickets"), "give exactly one of from (a source column) or value"),
    (_block('ticket_id = { default = "y" }', "tickets"), "give exactly one of from (a source column) or value"),
    (_block('ticket_id = { value = "y", lookup = { file = "f", key = "k", value = "v" } }', "tickets"),
     "lookup matches the from column against the key: give from"),
    (_block('ticket_id = "x"', "tickets", 'mode = "merge"\n'), "block 1 (tickets): mode must be insert, upsert or replace"),
    (_block('ticket_id = "x"', "tickets", 'delimiter = ":"\n'), "block 1 (tickets): delimiter must be"),
    (_block('ticket_id = "x"', "tickets", 'format = "ods"\n'), "block 1 (tickets): format must be one of auto, csv, xlsx"),
    (_block('ticket_id = "x"', "tickets", 'unmapped = "warn"\n'), 'unmapped must be "ignore" or "error", not \'warn\''),
    (_block('ticket_id = "x"', "tickets", 'header = "yes"\n'), "header must be true or false"),
    (_block('ticket_id = "x"', "tickets", 'na = "NA"\n'), "na must be a list of texts"),
    (_block('ticket_id = "x"', "tickets", 'date_formats = "%Y"\n'), "date_formats must be a list of strptime patterns"),
    (_block('ticket_id = "x"', "tickets", "group_by = 3\n"), "group_by must be a source column name"),
    ('[[import]]\ntable = "tickets"\n[import.columns]\nticket_id = { value = "x" }\n',
     "block 1 (tickets): a block without a file holds literal rows: use [[import.rows]]"),
    ('[[import]]\ntable = "tickets"\nfile = "a.csv"\n', "give either [import.columns] or [[import.rows]]"),
    ('[[import]]\ntable = "tickets"\nfile = "a.csv"\ngroup_by = "c"\n[[import.rows]]\nticket_id = "c"\n',
     "group_by makes one row per group"),
    (_block("ticket_id = 5", "tickets"), "a spec is a source column name or a table"),
    (_block('status = { from = "s", values = { Won = ["won"] } }'), "status, values.Won: expected a text, number or date"),
    (_block('amount = "a"', "opportunities", 'file2 = "b.csv"\n'), "block 1: unknown key(s) file2"),
])
def test_mistakes_are_named_by_block_and_key(text, message):
    with pytest.raises(MappingError) as raised:
        _parse(text)
    assert message in str(raised.value)


def test_the_bookkeeping_column_cannot_be_mapped():
    with pytest.raises(MappingError) as raised:
        _parse(_block('ticket_id = "x"\nimport_batch = "y"', "tickets"))
    assert "tickets has no column 'import_batch'" in str(raised.value)
    assert "import_batch" not in str(raised.value).split("its columns:")[1]


def test_mapping_file_errors(tmp_path):
    with pytest.raises(MappingError, match="cannot read mapping file"):
        load_mapping_file(tmp_path / "missing.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('# café\n'.encode("latin-1"))
    with pytest.raises(MappingError, match="is not UTF-8 text"):
        load_mapping_file(latin)
    good = tmp_path / "sub" / "m.toml"
    good.parent.mkdir()
    good.write_text(_block('ticket_id = "x"', "tickets"))
    assert load_mapping_file(good).blocks[0].file == tmp_path / "sub" / "a.csv"  # relative to the mapping file


def test_constants_keep_their_text():
    block: ImportBlock = _parse(_block(
        'amount = { value = 1234.5 }\ncreated_at = { value = 2026-01-11T15:49:42 }\n'
        'expected_close_date = { value = 2026-02-03 }\n'
        'owner = { value = true }\nregion = { from = "r", default = 7 }')).blocks[0]
    specs = dict(block.columns)
    assert [specs[n].value for n in ("amount", "created_at", "expected_close_date", "owner")] == [
        "1234.5", "2026-01-11 15:49:42", "2026-02-03", "true"]
    assert specs["region"].default == "7"
    assert dt.date.fromisoformat(specs["expected_close_date"].value or "") == dt.date(2026, 2, 3)
