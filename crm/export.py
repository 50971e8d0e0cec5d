"""Exports of exactly what a view shows: CSV and XLSX bytes with a manifest, and file names.

The manifest records the filters, the selection, the metric definitions used,
the data version, the row count and the time, so an exported file says where
it came from. XLSX carries it as a second sheet; CSV gets it as a JSON file
beside it.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import polars as pl

from crm.filters import Filters
from crm.metrics.registry import definition

ExportFormat = Literal["csv", "xlsx"]
FORMATS: tuple[str, ...] = ("csv", "xlsx")
MIME = {
    "csv": "text/csv",
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

    def as_rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs, for a sheet or a header."""
        rows = [
            ("title", self.title), ("filters", self.description), ("selection rule", self.selection_rule),
            ("data version", str(self.data_version)), ("rows", str(self.rows)), ("exported at", self.exported_at),
        ]
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
) -> Manifest:
    """The manifest of an export of ``rows`` rows under ``filters``."""
    return Manifest(
        title=title,
        filters=filters.to_query_params(),
        description=filters.describe(),
        selection_rule=selection_rule or "all rows matching the filters",
        definitions={k: definition(k).formula for k in metric_keys},
        data_version=data_version,
        rows=rows,
        exported_at=(now or datetime.now()).replace(microsecond=0).isoformat(sep=" "),
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


def _excel_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Lists and other nested values as text; Excel cells hold scalars."""
    return frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t.is_nested()]
    )


def export_bytes(frame: pl.DataFrame, fmt: ExportFormat, manifest: Manifest) -> bytes:
    """The frame as CSV (UTF-8 with a BOM, so Excel reads accents) or XLSX (data + manifest sheets)."""
    if fmt == "csv":
        buffer = io.BytesIO()
        buffer.write("\ufeff".encode())
        frame.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
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
                sheet.write(i, 0, key, bold)
                sheet.write(i, 1, value)
            sheet.set_column(0, 0, 24)
            sheet.set_column(1, 1, 90)
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")


def read_back(data: bytes, fmt: ExportFormat) -> pl.DataFrame:
    """Read an export back (tests, round trips)."""
    if fmt == "csv":
        return pl.read_csv(io.BytesIO(data), try_parse_dates=True)
    return pl.read_excel(io.BytesIO(data), sheet_name="data")


__all__ = ["FORMATS", "MIME", "Manifest", "build_manifest", "export_bytes", "export_filename", "read_back"]
