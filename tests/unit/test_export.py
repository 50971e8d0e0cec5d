"""Exports: exactly the rows given, round-tripping through CSV, XLSX and Parquet, with a manifest and a telling
name; files written all-or-nothing."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crm.export import (
    build_manifest,
    export_bytes,
    export_filename,
    manifest_path,
    read_back,
    read_manifest,
    write_export,
)
from crm.filters import Filters, Period
from crm.grid import build_grid_options
from crm.scope import Scope

FILTERS = Filters.create(Period(date(2026, 4, 1), date(2026, 6, 30)), regions=["Europe", "Asia Pacific"],
                         selection=[("step", "3"), ("owner", "Zoë O'Neil")], scope=Scope())
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


# --- Parquet ------------------------------------------------------------------------------------------

TYPED = FRAME.with_columns(
    day=pl.Series([date(2026, 4, 2), None, date(2026, 6, 30)], dtype=pl.Date),
    r=pl.Series([5, 1, None], dtype=pl.Int8),
    won=pl.Series([True, False, None], dtype=pl.Boolean),
    tags=pl.Series([["a", "b"], [], None], dtype=pl.List(pl.String)),
    closed_at=pl.Series([datetime(2026, 5, 1, 8, 0, 0, 123000), None, None], dtype=pl.Datetime("ms")),
)


def test_parquet_round_trip_keeps_values_and_types():
    back = read_back(export_bytes(TYPED, "parquet", MANIFEST), "parquet")
    assert_frame_equal(back, TYPED)  # no casts: Int8, Date, ms timestamps, lists come back as they were
    assert back.schema == TYPED.schema


def test_parquet_carries_the_manifest_in_its_metadata():
    manifest = read_manifest(export_bytes(TYPED, "parquet", MANIFEST), "parquet")
    assert manifest == json.loads(MANIFEST.to_json())
    assert (manifest["rows"], manifest["data_version"], manifest["selection_rule"]) == (3, 7, "cohort funnel step 3")
    assert manifest["exported_at"] == "2026-07-01 12:00:00"
    assert manifest["filters"]["region"] == ["Asia Pacific", "Europe"]


def test_read_manifest_of_an_xlsx_export():
    fields = read_manifest(export_bytes(FRAME, "xlsx", MANIFEST), "xlsx")
    assert (fields["title"], fields["rows"], fields["data version"]) == ("Deals", "3", "7")
    assert fields["filter select"] == "owner:Zoë O'Neil, step:3"


def test_a_csv_keeps_its_manifest_beside_it():
    with pytest.raises(ValueError, match="beside it"):
        read_manifest(export_bytes(FRAME, "csv", MANIFEST), "csv")


def test_an_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="unknown export format 'json'"):
        export_bytes(FRAME, "json", MANIFEST)  # type: ignore[arg-type]


# --- writing files --------------------------------------------------------------------------------------


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden ones included, relative and sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_write_csv_puts_the_manifest_beside_it(tmp_path):
    out = tmp_path / "deals.csv"
    written = write_export(FRAME, "csv", MANIFEST, out)
    assert written == [out, tmp_path / "deals.csv.manifest.json"] and manifest_path(out) == written[1]
    assert out.read_bytes() == export_bytes(FRAME, "csv", MANIFEST)  # the same bytes as the download
    assert json.loads(written[1].read_text(encoding="utf-8")) == json.loads(MANIFEST.to_json())
    assert files_in(tmp_path) == ["deals.csv", "deals.csv.manifest.json"]  # no .partial left


def test_write_parquet_puts_the_manifest_inside_and_beside_it(tmp_path):
    out = tmp_path / "exports" / "2026" / "deals.parquet"  # missing folders are created
    written = write_export(TYPED, "parquet", MANIFEST, out)
    assert written == [out, out.parent / "deals.parquet.manifest.json"]
    assert_frame_equal(pl.read_parquet(out), TYPED)
    assert read_manifest(out.read_bytes(), "parquet") == json.loads(written[1].read_text(encoding="utf-8"))
    assert files_in(tmp_path) == ["exports/2026/deals.parquet", "exports/2026/deals.parquet.manifest.json"]


def test_write_xlsx_keeps_the_manifest_inside_only(tmp_path):
    out = tmp_path / "deals.xlsx"
    assert write_export(FRAME, "xlsx", MANIFEST, out) == [out]
    assert read_manifest(out.read_bytes(), "xlsx")["rows"] == "3"
    back = read_back(out.read_bytes(), "xlsx").with_columns(pl.col("created_at").cast(pl.Datetime("us")))
    assert_frame_equal(back, FRAME)
    assert files_in(tmp_path) == ["deals.xlsx"]


def test_write_an_unknown_format_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'json'"):
        write_export(FRAME, "json", MANIFEST, tmp_path / "out" / "deals.json")  # type: ignore[arg-type]
    assert files_in(tmp_path) == [] and not (tmp_path / "out").exists()


def test_a_failed_csv_write_leaves_the_previous_export_alone(tmp_path):
    out = tmp_path / "deals.csv"
    out.write_text("the previous export")
    with pytest.raises(pl.exceptions.ComputeError, match="nested data"):
        write_export(TYPED, "csv", MANIFEST, out)  # a list column cannot be CSV
    assert out.read_text() == "the previous export"
    assert files_in(tmp_path) == ["deals.csv"]  # no manifest, no .partial


def test_a_write_that_dies_half_way_leaves_no_file(tmp_path, monkeypatch):
    def half_then_fail(self, file, **kwargs):
        Path(file).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_then_fail)
    out = tmp_path / "deals.parquet"
    with pytest.raises(OSError, match="No space left"):
        write_export(TYPED, "parquet", MANIFEST, out)
    assert files_in(tmp_path) == []


def test_a_manifest_write_that_dies_half_way_leaves_no_file(tmp_path, monkeypatch):
    def half_then_fail(self, data, encoding=None, errors=None, newline=None):
        with open(self, "w", encoding=encoding) as handle:
            handle.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    out = tmp_path / "deals.csv"
    with pytest.raises(OSError, match="No space left"):
        write_export(FRAME, "csv", MANIFEST, out)
    assert files_in(tmp_path) == []


def test_a_failed_rename_keeps_the_previous_export_and_its_manifest_together(tmp_path, monkeypatch):
    out = tmp_path / "deals.csv"
    out.write_text("the previous export")
    manifest_path(out).write_text('{"rows": 99}')
    rename = Path.replace

    def locked(self, target):
        if Path(target) == out:
            raise PermissionError(13, "The file is open in another program")
        return rename(self, target)

    monkeypatch.setattr(Path, "replace", locked)
    with pytest.raises(PermissionError):
        write_export(FRAME, "csv", MANIFEST, out)
    assert out.read_text() == "the previous export"
    assert manifest_path(out).read_text() == '{"rows": 99}'
