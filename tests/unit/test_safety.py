"""Values from links, files and the store stay text: no Markdown in the app, no formulas in exports."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import polars as pl
import pytest

from crm.export import build_manifest, export_bytes, write_export
from crm.filters import Filters, Period
from crm.format import plain
from crm.scope import Scope

HOSTILE = ['=HYPERLINK("http://x/p","Click me")', "=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", "plain", "a=b"]


@pytest.mark.parametrize("text", [
    "[Click to log in](http://x/phish)", "![px](http://x/p.png)", "<img src=x onerror=alert(1)>", "www.x.com",
    "mail me: a@b.com", ":material/home: :red[alarm] $x^2$", "**bold** _it_ `code` # head", "line\nbreak",
])
def test_plain_leaves_no_markup(text):
    escaped = plain(text)
    unescaped = re.sub(r"\\(.)", r"\1", escaped).replace("\u200b", "")
    assert unescaped == text.replace("\n", "  \n")  # the person reads the same characters
    # every character Markdown could read as markup is preceded by a backslash
    for i, ch in enumerate(escaped):
        if ch in "[]()!<>:*_`#$@/" and (i == 0 or escaped[i - 1] != "\\"):
            assert i > 0 and escaped[i - 1] == "\\", (text, escaped, i)


def _cells(xlsx: bytes) -> tuple[str, list[str]]:
    """All worksheet XML and the shared strings of a workbook, read with the zip reader (not xlsxwriter)."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        sheets = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/"))
        shared = book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in book.namelist() else ""
    return sheets, re.findall(r"<t[^>]*>([^<]*)</t>", shared)


def test_exports_hold_no_formula():
    frame = pl.DataFrame({"name": HOSTILE, "amount": list(range(-4, len(HOSTILE) - 4))})
    filters = Filters.create(Period(date(2026, 1, 1), date(2026, 1, 31)), regions=["=1+1"], scope=Scope())
    manifest = build_manifest("=cmd|' /C calc'!A0", filters, frame.height, 1)
    xlsx = export_bytes(frame, "xlsx", manifest)
    sheets, strings = _cells(xlsx)
    assert "<f>" not in sheets  # no cell of either sheet is a formula
    assert "'=HYPERLINK(\"http://x/p\",\"Click me\")" in strings
    assert {"'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "plain", "a=b"} <= set(strings)
    assert "'=cmd|' /C calc'!A0" in strings  # the manifest's title
    assert "-4" not in strings  # numbers stay numbers

    csv = export_bytes(frame, "csv", manifest).decode("utf-8-sig")
    rows = pl.read_csv(io.StringIO(csv))
    assert rows["name"].to_list() == ["'" + t if t[0] in "=+-@\t\r" else t for t in HOSTILE]
    assert rows["amount"].to_list() == list(range(-4, len(HOSTILE) - 4))


def test_written_csv_export_is_formula_safe(tmp_path):
    frame = pl.DataFrame({"name": ["=1+1", "ok"]})
    manifest = build_manifest("t", Filters.create(Period(date(2026, 1, 1), date(2026, 1, 2)), scope=Scope()), 2, 1)
    out, _ = write_export(frame, "csv", manifest, tmp_path / "x.csv")
    assert out.read_text(encoding="utf-8-sig").splitlines() == ["name", "'=1+1", "ok"]
