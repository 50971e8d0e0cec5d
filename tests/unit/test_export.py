"""Exports: exactly the rows given, round-tripping through CSV and XLSX, with a manifest and a telling name."""

from __future__ import annotations

import io
from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm.export import build_manifest, export_bytes, export_filename, read_back
from crm.filters import Filters, Period
from crm.grid import build_grid_options

FILTERS = Filters.create(Period(date(2026, 4, 1), date(2026, 6, 30)), regions=["Europe", "Asia Pacific"],
                         selection=[("step", "3"), ("owner", "Zoë O'Neil")])
FRAME = pl.DataFrame({
    "opportunity_id": ["D1", "D2", "D3"],
    "owner": ["Zoë O'Neil", "Ann, Jr.", None],
    "amount": [1234.5, 0.25, 99_999.0],
    "created_at": [datetime(2026, 4, 2, 9, 30), datetime(2026, 5, 1), None],
    "history": ["lead 2026-04-02 → won 2026-05-01", "lead 2026-05-01", None],
})
MANIFEST = build_manifest("Deals", FILTERS, FRAME.height, 7, "cohort funnel step 3", ("win_rate",),
                          now=datetime(2026, 7, 1, 12, 0))


def test_file_name_records_the_filters():
    name = export_filename("deals", FILTERS, "csv")
    assert name == "deals_2026-04-01_2026-06-30_region-Asia-Pacific+Europe_owner-Zoë-O-Neil_step-3.csv"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_is_exact(fmt):
    back = read_back(export_bytes(FRAME, fmt, MANIFEST), fmt)
    back = back.with_columns(pl.col("created_at").cast(pl.Datetime("us")))
    assert_frame_equal(back, FRAME)


def test_csv_starts_with_a_bom_and_the_header():
    data = export_bytes(FRAME, "csv", MANIFEST)
    assert data.startswith("\ufeffopportunity_id,owner,amount".encode())
    assert '"Ann, Jr."' in data.decode("utf-8-sig")


def test_xlsx_carries_the_manifest_sheet():
    data = export_bytes(FRAME, "xlsx", MANIFEST)
    sheet = pl.read_excel(io.BytesIO(data), sheet_name="manifest", has_header=False)
    fields = dict(zip(sheet["column_0"].to_list(), sheet["column_1"].to_list(), strict=True))
    assert fields["rows"] == "3"
    assert fields["data version"] == "7"
    assert fields["selection rule"] == "cohort funnel step 3"
    assert fields["exported at"] == "2026-07-01 12:00:00"
    assert fields["filter region"] == "Asia Pacific, Europe"
    assert fields["definition win_rate"].startswith("won / (won + lost)")


def test_manifest_json_names_filters_and_rows():
    import json

    data = json.loads(MANIFEST.to_json())
    assert data["rows"] == 3 and data["filters"]["from"] == ["2026-04-01"]
    assert data["filters"]["select"] == ["owner:Zoë O'Neil", "step:3"]


def test_grid_options_type_the_columns():
    options = build_grid_options(FRAME)
    cols = {c["field"]: c for c in options["columnDefs"]}
    assert cols["amount"]["filter"] == "agNumberColumnFilter" and "$" in cols["amount"]["valueFormatter"]
    assert cols["owner"]["filter"] == "agTextColumnFilter"
    assert cols["created_at"]["filter"] == "agDateColumnFilter"
    assert all(c["floatingFilter"] for c in cols.values())
    assert options["rowSelection"]["mode"] == "multiRow"
    assert "rowSelection" not in build_grid_options(FRAME, selectable=False)
