"""Exports of exactly what a view shows: CSV and XLSX bytes with a manifest, and file names.

The manifest records the filters, the selection, the metric definitions used,
the data version, the row count and the time, so an exported file says where
it came from. XLSX carries it as a second sheet; Parquet in its key-value
metadata (``crm_manifest``); CSV and Parquet also get it as a JSON file beside
them (``<file>.manifest.json``).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from crm.filters import Filters
from crm.metrics.registry import definition

ExportFormat = Literal["csv", "xlsx", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet")
MANIFEST_KEY = "crm_manifest"
"""The Parquet key-value metadata entry holding the manifest JSON."""
MIME = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


@dataclass(frozen=True)
class Manifest:
    """Where an export came from."""

    title: str
    filters: dict[str, list[str]]
    description: str
    selection_rule: str
    definitions: dict[str, str]
    data_version: int
    rows: int
    exported_at: str
    masking: str = ""
    """Which contact columns were masked and for which role (crm.masking.masking_note); "" when none."""

    def as_rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs, for a sheet or a header."""
        rows = [
            ("title", self.title), ("filters", self.description), ("selection rule", self.selection_rule),
            ("data version", str(self.data_version)), ("rows", str(self.rows)), ("exported at", self.exported_at),
        ]
        if self.masking:
            rows.append(("masking", self.masking))
        rows += [(f"filter {k}", ", ".join(v)) for k, v in self.filters.items()]
        rows += [(f"definition {k}", v) for k, v in self.definitions.items()]
        return rows

    def to_json(self) -> str:
        """The manifest as pretty JSON."""
        return json.dumps(self.__dict__, indent=2, ensure_ascii=False)


def build_manifest(
    title: str,
    filters: Filters,
    rows: int,
    data_version: int,
    selection_rule: str = "",
    metric_keys: tuple[str, ...] = (),
    now: datetime | None = None,
    definitions: dict[str, str] | None = None,
    masking: str = "",
) -> Manifest:
    """The manifest of an export of ``rows`` rows under ``filters``: the registry's definitions of
    ``metric_keys`` plus ``definitions`` (name -> text) for what the registry does not hold (RFM);
    ``masking`` says which contact columns were masked for whom (crm.masking.masking_note)."""
    return Manifest(
        title=title,
        filters=filters.to_query_params(),
        description=filters.describe(),
        selection_rule=selection_rule or "all rows matching the filters",
        definitions={**{k: definition(k).formula for k in metric_keys}, **(definitions or {})},
        data_version=data_version,
        rows=rows,
        exported_at=(now or datetime.now()).replace(microsecond=0).isoformat(sep=" "),
        masking=masking,
    )


def export_filename(base: str, filters: Filters, extension: str) -> str:
    """``deals_2026-04-01_2026-06-30_region-Europe_step-3.csv``: the filters in the name, file-system safe."""
    parts = [base, filters.period.start.isoformat(), filters.period.end.isoformat()]
    for dim, values in filters.dimension_values().items():
        if values:
            parts.append(f"{dim}-{'+'.join(values)}")
    for key, value in filters.selection:
        parts.append(f"{key}-{value}")
    if filters.customers:
        parts.append(f"{len(filters.customers)}customers")
    name = "_".join(parts)
    name = re.sub(r"[^\w.+-]+", "-", name, flags=re.UNICODE).strip("-")
    return f"{name[:180]}.{extension}"


_FORMULA_START = r"^[=+\-@\t\r]"
"""What makes a spreadsheet read a text cell as a formula (OWASP's CSV injection rule)."""


def neutralise(text: str) -> str:
    """A text a spreadsheet shows as text: one that starts like a formula gets a leading apostrophe."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _formula_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell that starts like a formula (= + - @ tab CR) prefixed with an apostrophe."""
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_START)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, t in frame.schema.items() if t == pl.String
    )


def _excel_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Lists and other nested values as text (Excel cells hold scalars), then formula-safe."""
    return _formula_safe(frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t.is_nested()]
    ))


def export_bytes(frame: pl.DataFrame, fmt: ExportFormat, manifest: Manifest) -> bytes:
    """The frame as CSV (UTF-8 with a BOM, so Excel reads accents), XLSX (data + manifest sheets) or
    Parquet (types kept exactly, the manifest in its metadata)."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.write_parquet(buffer, metadata={MANIFEST_KEY: manifest.to_json()})
        return buffer.getvalue()
    if fmt == "csv":
        buffer = io.BytesIO()
        buffer.write("\ufeff".encode())
        _formula_safe(frame).write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
        return buffer.getvalue()
    if fmt == "xlsx":
        import xlsxwriter

        buffer = io.BytesIO()
        with xlsxwriter.Workbook(buffer, {"remove_timezone": True}) as workbook:
            _excel_safe(frame).write_excel(workbook, worksheet="data", autofit=True, float_precision=4,
                                           dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss", pl.Date: "yyyy-mm-dd"})
            sheet = workbook.add_worksheet("manifest")
            bold = workbook.add_format({"bold": True})
            for i, (key, value) in enumerate(manifest.as_rows()):
                sheet.write_string(i, 0, neutralise(key), bold)
                sheet.write_string(i, 1, neutralise(value))
            sheet.set_column(0, 0, 24)
            sheet.set_column(1, 1, 90)
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def manifest_path(out: Path) -> Path:
    """Where the manifest of an export written to ``out`` goes: ``out`` + ``.manifest.json``."""
    return out.with_name(out.name + ".manifest.json")


def write_export(frame: pl.DataFrame, fmt: ExportFormat, manifest: Manifest, out: Path) -> list[Path]:
    """Write the export to ``out`` (and its manifest beside a CSV or Parquet file) all-or-nothing:
    each file is written under a temporary name and renamed into place. Returns the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.partial")
    side = manifest_path(out) if fmt != "xlsx" else None
    side_staged = side.with_name(f".{side.name}.partial") if side else None
    try:
        if fmt == "parquet":
            frame.write_parquet(staged, metadata={MANIFEST_KEY: manifest.to_json()})
        elif fmt == "csv":
            with staged.open("wb") as handle:
                handle.write("\ufeff".encode())
                _formula_safe(frame).write_csv(handle, datetime_format="%Y-%m-%d %H:%M:%S")
        else:
            staged.write_bytes(export_bytes(frame, fmt, manifest))
        if side_staged is not None:
            side_staged.write_text(manifest.to_json(), encoding="utf-8")
        # both files are complete: the data first (if that fails, the previous export and its
        # manifest stay as they were), then its manifest
        staged.replace(out)
        if side is not None and side_staged is not None:
            side_staged.replace(side)
    finally:
        staged.unlink(missing_ok=True)
        if side_staged is not None:
            side_staged.unlink(missing_ok=True)
    return [out] if side is None else [out, side]


def read_back(data: bytes, fmt: ExportFormat) -> pl.DataFrame:
    """Read an export back (tests, round trips)."""
    if fmt == "csv":
        return pl.read_csv(io.BytesIO(data), try_parse_dates=True)
    if fmt == "parquet":
        return pl.read_parquet(io.BytesIO(data))
    return pl.read_excel(io.BytesIO(data), sheet_name="data")


def read_manifest(data: bytes, fmt: ExportFormat) -> dict:
    """The manifest inside a Parquet or XLSX export, as a dict (tests, checks)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.read_metadata(io.BytesIO(data)).metadata or {}
        return dict(json.loads(meta[MANIFEST_KEY.encode()]))
    if fmt == "xlsx":
        sheet = pl.read_excel(io.BytesIO(data), sheet_name="manifest", has_header=False)
        return dict(zip(sheet[:, 0].to_list(), sheet[:, 1].to_list(), strict=True))
    raise ValueError("a CSV export keeps its manifest beside it (<file>.manifest.json)")


__all__ = ["FORMATS", "MIME", "Manifest", "build_manifest", "export_bytes", "export_filename", "manifest_path",
           "read_back", "read_manifest", "write_export"]
