"""Reading source files (crm.sources): format, sheet, encoding, delimiter, header and NA tokens.

Every file is written here, byte by byte, so the expected cells are the text
that went in.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import xlsxwriter

from crm.sources import ReadOptions, SourceError, file_format, read_source
from tests.unit.importing import CHINESE, CHINESE_ROWS, write

LATIN = ("name,city,note\nJosé Müller,Zürich,Crème brûlée\nFrançoise Größe,Kraków,Ångström façade\n"
         "Nuño Peña,São Paulo,½ price ¿sí?\n")
LATIN_ROWS = [("José Müller", "Zürich", "Crème brûlée"), ("Françoise Größe", "Kraków", "Ångström façade"),
              ("Nuño Peña", "São Paulo", "½ price ¿sí?")]

RARE = ("C7", "䶮氏家族企业", "汕头", "贸易")  # U+4DAE: in GB18030, not in GBK


def test_utf8_without_and_with_bom(tmp_path):
    plain = read_source(write(tmp_path, "plain.csv", "id,name\n1,Ça va\n"))
    assert (plain.encoding, plain.encoding_detected) == ("utf-8", True)
    assert plain.frame.rows() == [("1", "Ça va")]
    bom = write(tmp_path, "bom.csv", "\ufeffid,name\n1,Ça va\n")
    for options in (ReadOptions(), ReadOptions(encoding="utf-8")):
        read = read_source(bom, options)
        assert read.frame.columns == ["id", "name"]  # the BOM is not part of the first header
        assert read.frame.rows() == [("1", "Ça va")]
    assert read_source(bom, ReadOptions(encoding="utf-8")).encoding_detected is False


def test_latin1_is_detected_and_round_trips(tmp_path):
    read = read_source(write(tmp_path, "latin.csv", LATIN, "latin-1"))
    assert (read.encoding, read.encoding_detected) == ("latin-1", True)
    assert read.frame.rows() == LATIN_ROWS
    assert not any("\ufffd" in cell for row in read.frame.rows() for cell in row)


def test_cp1252_euro_and_curly_quotes_round_trip(tmp_path):
    text = "name,price,note\nJosé,€ 12,“quoted” – dash\nRené,€ 5,naïve café\n"
    read = read_source(write(tmp_path, "cp.csv", text, "cp1252"))
    assert read.encoding == "cp1252"
    assert read.frame.rows() == [("José", "€ 12", "“quoted” – dash"), ("René", "€ 5", "naïve café")]


def test_named_latin1(tmp_path):
    read = read_source(write(tmp_path, "latin.csv", LATIN, "latin-1"), ReadOptions(encoding="latin-1"))
    assert (read.encoding, read.encoding_detected) == ("latin-1", False)
    assert read.frame.rows() == LATIN_ROWS


def test_gbk_detected_and_named(tmp_path):
    path = write(tmp_path, "gbk.csv", CHINESE, "gbk")
    detected = read_source(path)
    assert detected.encoding in ("gbk", "gb18030") and detected.encoding_detected  # GB18030 decodes GBK identically
    assert detected.frame.columns == ["客户编号", "客户名称", "城市", "行业"]
    assert detected.frame.rows() == CHINESE_ROWS
    named = read_source(path, ReadOptions(encoding="gbk"))
    assert (named.encoding, named.encoding_detected) == ("gbk", False)
    assert named.frame.rows() == CHINESE_ROWS


def test_gb18030_only_characters_round_trip(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        "".join(RARE).encode("gbk")  # the file below is not GBK
    path = write(tmp_path, "gb18030.csv", CHINESE + ",".join(RARE) + "\n", "gb18030")
    read = read_source(path)
    assert read.encoding == "gb18030"
    assert read.frame.rows() == [*CHINESE_ROWS, RARE]
    assert read_source(path, ReadOptions(encoding="gb18030")).frame.rows()[-1] == RARE


def test_a_wrong_named_encoding_is_a_clear_error(tmp_path):
    path = write(tmp_path, "gbk.csv", CHINESE, "gbk")
    first = CHINESE.encode("gbk").index(b"\xbf")  # 客 is 0xBF 0xCD in GBK
    with pytest.raises(SourceError, match=rf"gbk.csv is not utf-8: byte 0xbf at offset {first}"):
        read_source(path, ReadOptions(encoding="utf-8"))
    with pytest.raises(SourceError, match=r"unknown encoding 'klingon' \(try utf-8, gbk"):
        read_source(path, ReadOptions(encoding="klingon"))


@pytest.mark.parametrize(("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiter_detected(tmp_path, delimiter, name):
    amount = '"1,5"' if delimiter == "," else "1,5"  # a comma inside a field must not confuse the others
    text = f"id{delimiter}amount{delimiter}note\nA{delimiter}{amount}{delimiter}x y\nB{delimiter}2{delimiter}z\n"
    read = read_source(write(tmp_path, "d.csv", text))
    assert read.delimiter == delimiter
    assert read.frame.columns == ["id", "amount", "note"]
    assert read.frame.rows() == [("A", "1,5", "x y"), ("B", "2", "z")]
    assert read.describe() == f"CSV, utf-8 (detected), delimiter {name}, 2 rows, 3 columns"


def test_whitespace_detected_and_named(tmp_path):
    path = write(tmp_path, "orders.txt", "id   amount\tnote\nA  10   x\nB\t20 y\n")
    for options in (ReadOptions(), ReadOptions(delimiter="whitespace")):
        read = read_source(path, options)
        assert read.delimiter == "whitespace"
        assert read.frame.rows() == [("A", "10", "x"), ("B", "20", "y")]
        assert read.frame.columns == ["id", "amount", "note"]


def test_repeated_headers_do_not_stop_the_read(tmp_path):
    spaced = read_source(write(tmp_path, "r.txt", "id id note\n1 2 x\n"), ReadOptions(delimiter="whitespace"))
    assert (spaced.frame.columns, spaced.frame.rows()) == (["id", "id_2", "note"], [("1", "2", "x")])
    commas = read_source(write(tmp_path, "r.csv", "id,id,note\n1,2,x\n"))
    assert commas.frame.columns[0] == "id" and len(set(commas.frame.columns)) == 3
    assert commas.frame.rows() == [("1", "2", "x")]


def test_named_delimiter_overrides_detection(tmp_path):
    # auto sees three ';' fields (two ',' fields); named ',' splits on the comma instead
    path = write(tmp_path, "d.csv", "a;b;c,d\n1;2;3,4\n")
    assert read_source(path).frame.columns == ["a", "b", "c,d"]
    read = read_source(path, ReadOptions(delimiter=","))
    assert (read.delimiter, read.frame.columns, read.frame.rows()) == (",", ["a;b;c", "d"], [("1;2;3", "4")])


def test_header_false_names_columns_by_position(tmp_path):
    read = read_source(write(tmp_path, "h.csv", "A,10\nB,20\n"), ReadOptions(header=False))
    assert read.frame.columns == ["column_1", "column_2"]
    assert read.frame.rows() == [("A", "10"), ("B", "20")]
    assert read.first_line() == 1
    spaced = read_source(write(tmp_path, "h.txt", "A 10\nB 20\n"), ReadOptions(header=False, delimiter="whitespace"))
    assert spaced.frame.rows() == [("A", "10"), ("B", "20")] and spaced.frame.columns == ["column_1", "column_2"]


def test_default_na_tokens_and_trimming(tmp_path):
    path = write(tmp_path, "na.csv", "a,b,c,d,e\nNA,N/A,null,,-\n x ,NULL,n/a, NA ,nan\n")
    assert read_source(path).frame.rows() == [(None, None, None, None, "-"), ("x", "NULL", "n/a", None, "nan")]


def test_custom_na_tokens(tmp_path):
    path = write(tmp_path, "na.csv", "a,b,c,d\nNA,-,N/A,\nnull, - ,x,y\n")
    read = read_source(path, ReadOptions(na=("-",)))
    assert read.frame.rows() == [("NA", None, "N/A", None), ("null", None, "x", "y")]  # an empty cell stays missing


def _workbook(path):
    book = xlsxwriter.Workbook(path)
    first = book.add_worksheet("People")
    first.write_row(0, 0, ["id", "n"])
    first.write_row(1, 0, ["X", 1])
    deals = book.add_worksheet("Deals")
    deals.write_row(0, 0, ["id", "amount", "when", "note"])
    deals.write_row(1, 0, ["D1", 12.5])
    deals.write_datetime(1, 2, dt.datetime(2026, 3, 4, 5, 6, 7), book.add_format({"num_format": "yyyy-mm-dd hh:mm"}))
    deals.write_string(1, 3, "NA")
    deals.write_row(2, 0, ["D2", 3])
    deals.write_datetime(2, 2, dt.datetime(2026, 3, 5), book.add_format({"num_format": "yyyy-mm-dd"}))
    deals.write_string(2, 3, " ok ")
    book.close()
    return path


def test_xlsx_first_sheet_by_default_and_a_named_sheet(tmp_path):
    path = _workbook(tmp_path / "book.xlsx")
    first = read_source(path)
    assert (first.format, first.encoding, first.delimiter) == ("xlsx", None, None)
    assert first.frame.rows() == [("X", "1")]  # a whole number without ".0"
    assert first.describe() == "XLSX, 1 rows, 2 columns"
    deals = read_source(path, ReadOptions(sheet="Deals"))
    assert deals.frame.columns == ["id", "amount", "when", "note"]
    assert deals.frame.rows() == [("D1", "12.5", "2026-03-04 05:06:07", None), ("D2", "3", "2026-03-05", "ok")]


def test_format_xlsx_named_for_another_extension_and_csv_for_xlsx(tmp_path):
    book = _workbook(tmp_path / "book.xlsx")
    shutil.copy(book, tmp_path / "export.bin")
    assert file_format(tmp_path / "export.bin") == "csv"  # auto goes by the extension
    assert file_format(tmp_path / "Book.XLSX") == "xlsx"
    assert read_source(tmp_path / "export.bin", ReadOptions(format="xlsx")).frame.rows() == [("X", "1")]
    text = write(tmp_path, "text.xlsx", "a,b\n1,2\n")
    read = read_source(text, ReadOptions(format="csv"))
    assert (read.format, read.frame.rows()) == ("csv", [("1", "2")])


def test_xlsx_header_false(tmp_path):
    read = read_source(_workbook(tmp_path / "book.xlsx"), ReadOptions(sheet="People", header=False))
    assert read.frame.columns == ["column_1", "column_2"]
    assert read.frame.rows() == [("id", "n"), ("X", "1")]


def test_unreadable_workbooks_and_missing_sheets_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match=r"book\.xlsx has no sheet 'Nope'"):
        read_source(_workbook(tmp_path / "book.xlsx"), ReadOptions(sheet="Nope"))
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SourceError, match=r"junk\.xlsx is not a readable workbook"):
        read_source(junk)
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "missing.csv")
    with pytest.raises(SourceError, match=r"empty\.csv is empty"):
        read_source(write(tmp_path, "empty.csv", "\n\n"))


def test_describe_reports_encoding_and_delimiter(tmp_path):
    path = write(tmp_path, "l.csv", LATIN.replace(",", ";"), "latin-1")
    assert read_source(path).describe() == "CSV, latin-1 (detected), delimiter semicolon, 3 rows, 3 columns"
    assert read_source(path, ReadOptions(encoding="latin-1", delimiter=";")).describe() == (
        "CSV, latin-1 (as named), delimiter semicolon, 3 rows, 3 columns")
