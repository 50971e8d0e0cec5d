"""Reading a source file (CSV or XLSX) into text columns, the way a person's export actually looks.

Everything comes back as text (``pl.String``), cells trimmed, the NA tokens
turned into missing values; parsing into types is the importer's job, so
that a cell that does not parse can be reported with its row and value.
The encoding is detected with charset-normalizer when not named, the
delimiter by trying the usual ones on the first lines; both are reported.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

DEFAULT_NA: tuple[str, ...] = ("", "NA", "N/A", "null")
DELIMITERS: dict[str, str] = {",": ",", ";": ";", "\t": "\t", "|": "|", "whitespace": "whitespace"}
FORMATS = ("auto", "csv", "xlsx")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
_SNIFF_LINES = 50
_DETECT_BYTES = 2_000_000


class SourceError(Exception):
    """The file cannot be read as asked; the message says why, for a person."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read one source file (the format keys of a mapping block)."""

    format: str = "auto"
    sheet: str | None = None
    encoding: str = "auto"
    delimiter: str = "auto"
    header: bool = True
    na: tuple[str, ...] = DEFAULT_NA


@dataclass(frozen=True)
class Source:
    """A source file read into text columns, and how it was read."""

    frame: pl.DataFrame
    """One String column per source column, in file order; cells trimmed, NA tokens null."""
    path: Path
    format: str
    encoding: str | None
    """The codec used (``None`` for a workbook)."""
    encoding_detected: bool
    delimiter: str | None
    """The delimiter used, as the mapping names it (``None`` for a workbook)."""
    header: bool

    def first_line(self) -> int:
        """The file line (1-based, as a spreadsheet shows it) of the first data row."""
        return 2 if self.header else 1

    def describe(self) -> str:
        """One line for people: 'CSV, utf-8 (detected), delimiter ";", 1,204 rows, 9 columns'."""
        parts = [self.format.upper()]
        if self.encoding is not None:
            parts.append(f"{self.encoding} ({'detected' if self.encoding_detected else 'as named'})")
        if self.delimiter is not None:
            parts.append(f"delimiter {describe_delimiter(self.delimiter)}")
        parts.append(f"{self.frame.height:,} rows, {self.frame.width} columns")
        return ", ".join(parts)


def describe_delimiter(delimiter: str) -> str:
    """A delimiter as a person reads it: comma, semicolon, tab, pipe, whitespace."""
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "whitespace": "whitespace"}
    return names.get(delimiter, repr(delimiter))


def file_format(path: Path, declared: str = "auto") -> str:
    """``csv`` or ``xlsx``: as declared, else by the file's extension (anything else is read as text)."""
    if declared not in FORMATS:
        raise SourceError(f"format must be one of {', '.join(FORMATS)}, not {declared!r}")
    if declared != "auto":
        return declared
    return "xlsx" if path.suffix.lower() in _EXCEL_SUFFIXES else "csv"


def read_source(path: Path, options: ReadOptions = ReadOptions()) -> Source:
    """Read ``path`` as ``options`` say; SourceError (a sentence) when it cannot be read."""
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    kind = file_format(path, options.format)
    if kind == "xlsx":
        frame = _read_workbook(path, options)
        return Source(_clean(frame, options.na), path, "xlsx", None, False, None, options.header)
    raw = path.read_bytes()
    text, encoding, detected = decode(raw, options.encoding, path.name)
    delimiter = detect_delimiter(text) if options.delimiter == "auto" else options.delimiter
    if delimiter not in DELIMITERS:
        raise SourceError(f"delimiter must be auto, whitespace or one of , ; tab |, not {options.delimiter!r}")
    frame = _read_text(text, delimiter, options.header, path.name, _utf8_bytes(raw, encoding))
    del raw, text  # the frame holds the cells: the file's bytes and text need not live on while they are cleaned
    return Source(_clean(frame, options.na), path, "csv", encoding, detected, delimiter, options.header)


_BOM = "\ufeff".encode()


def _utf8_bytes(raw: bytes, encoding: str) -> bytes | None:
    """The UTF-8 of the text ``decode`` made of ``raw`` when that is ``raw`` itself (less its leading BOMs),
    else None: a UTF-8 file need not be encoded again (a copy of the whole file)."""
    try:
        if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
            return None
    except LookupError:
        return None
    start = 0
    while raw.startswith(_BOM, start):
        start += len(_BOM)
    return raw[start:] if start else raw


def decode(raw: bytes, encoding: str, name: str) -> tuple[str, str, bool]:
    """The file's text, the codec used and whether it was detected.

    ``auto``: UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), else
    what charset-normalizer finds on the first 2 MB, checked against the
    whole file. A named codec must decode every byte.
    """
    if encoding.lower() not in ("auto", ""):
        try:
            codec = _codec(encoding)
            return raw.decode(codec).lstrip("\ufeff"), encoding.lower(), False
        except LookupError:
            raise SourceError(f"unknown encoding {encoding!r} (try utf-8, gbk, gb18030, latin-1, cp1252)") from None
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{name} is not {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start:,} cannot be decoded; "
                "name the right encoding or use encoding = \"auto\"") from None
    try:
        return raw.decode("utf-8").lstrip("\ufeff"), "utf-8", True
    except UnicodeDecodeError:
        pass

    found = _likeliest_codec(_non_ascii_sample(raw))
    if found is None:
        raise SourceError(f"cannot tell the encoding of {name}; name it (encoding = \"gbk\", \"latin-1\", ...)")
    codec = found
    try:
        return raw.decode(codec), codec.replace("_", "-"), True
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{name} looks like {codec} but byte 0x{raw[exc.start]:02x} at offset {exc.start:,} is not valid in it; "
            "name the encoding in the mapping") from None


_PREFERRED = ("utf_8", "latin_1", "cp1252", "gb18030", "gbk", "big5", "shift_jis", "euc_kr", "cp1251", "cp1250", "iso8859_15")
"""Among decodings charset-normalizer finds equally plausible (short files often tie), the codecs exports
most often use come first: Latin-1/Windows-1252 for Western text, GB18030 (a superset of GBK) for Chinese."""


def _likeliest_codec(sample: bytes) -> str | None:
    from charset_normalizer import from_bytes

    results = list(from_bytes(sample))
    if not results:
        return None
    best = min(results, key=lambda m: (m.chaos, -m.coherence))
    close = [m for m in results if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.02]
    choices = []
    for match in close:
        for alias in [match.encoding, *match.could_be_from_charset]:
            rank = _PREFERRED.index(alias) if alias in _PREFERRED else len(_PREFERRED)
            choices.append((rank, alias, match.encoding))
    rank, alias, codec = min(choices)
    if alias != codec:
        try:
            same = sample.decode(alias) == sample.decode(codec)
        except UnicodeDecodeError:
            same = False
        alias = alias if same else codec
    return alias


def _codec(name: str) -> str:
    import codecs

    return codecs.lookup(name).name


def _non_ascii_sample(raw: bytes) -> bytes:
    """Up to 2 MB of the file, preferring lines with non-ASCII bytes (what tells encodings apart)."""
    if len(raw) <= _DETECT_BYTES:
        return raw
    lines = raw.splitlines(keepends=True)
    chosen = [line for line in lines if max(line, default=0) > 0x7F]
    sample = b"".join(chosen)[:_DETECT_BYTES]
    return sample or raw[:_DETECT_BYTES]


def _first_lines(text: str, n: int) -> list[str]:
    """``text.splitlines()[:n]`` without splitting all of a large text: the lines of a growing prefix, once it
    holds more than ``n`` (its first ``n`` lines then end inside it, as in the whole text)."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if len(lines) > n or size >= len(text):
            return lines[:n]
        size *= 4


csv.field_size_limit(2**31 - 1)  # sniffing reads whole lines: a 1 MB cell is a value to check, not a crash


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (> 1) of fields; else whitespace or comma."""
    lines = [line for line in _first_lines(text, _SNIFF_LINES) if line.strip()]
    if not lines:
        return ","
    best, best_fields = ",", 1
    for delimiter in (",", ";", "\t", "|"):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        fields, seen = Counter(counts).most_common(1)[0]
        if fields > best_fields and seen >= 0.9 * len(counts):
            best, best_fields = delimiter, fields
    if best_fields > 1:
        return best
    counts = [len(line.split()) for line in lines]
    fields, seen = Counter(counts).most_common(1)[0]
    return "whitespace" if fields > 1 and seen >= 0.9 * len(counts) else ","


def _read_text(text: str, delimiter: str, header: bool, name: str, data: bytes | None = None) -> pl.DataFrame:
    """``text`` as text columns; ``data``, when given, is its UTF-8 (read instead of encoding ``text`` again)."""
    if not text or text.isspace():  # as ``not text.strip()``, without a copy of the text
        raise SourceError(f"{name} is empty")
    if delimiter == "whitespace":
        return _split_whitespace(text, header)
    try:
        frame = pl.read_csv(
            io.BytesIO(text.encode("utf-8") if data is None else data), separator=delimiter, has_header=header,
            infer_schema=False,
            truncate_ragged_lines=False, new_columns=None,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SourceError(f"{name} is not a readable {describe_delimiter(delimiter)}-separated file: {reason}") from None
    if not header:
        frame = frame.rename({c: f"column_{i}" for i, c in enumerate(frame.columns, start=1)})
    return frame


def _split_whitespace(text: str, header: bool) -> pl.DataFrame:
    """Fields separated by runs of spaces or tabs (quotes are not special here)."""
    lines = pl.Series("line", text.splitlines(), dtype=pl.String)
    lines = lines.filter(lines.str.strip_chars() != "")
    fields = lines.str.extract_all(r"\S+")
    width = fields.list.len().max() or 0
    assert isinstance(width, int)
    frame = pl.DataFrame({f"column_{i + 1}": fields.list.get(i, null_on_oob=True) for i in range(width)})
    if header and frame.height:
        names: list[str] = []
        for i, v in enumerate(frame.row(0), start=1):
            name = str(v) if v is not None else f"column_{i}"
            while name in names:  # a repeated header must not stop the read: numbered like _clean does
                name = f"{name}_{i}"
            names.append(name)
        frame = frame.slice(1).rename(dict(zip(frame.columns, names, strict=True)))
    return frame


def _read_workbook(path: Path, options: ReadOptions) -> pl.DataFrame:
    try:
        if options.sheet is not None:
            frame = pl.read_excel(path, sheet_name=options.sheet, has_header=options.header, infer_schema_length=None)
        else:
            frame = pl.read_excel(path, sheet_id=1, has_header=options.header, infer_schema_length=None)
    except Exception as exc:  # fastexcel raises its own types: a missing sheet, a damaged or non-Excel file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if options.sheet is not None and "sheet" in reason.lower():
            raise SourceError(f"{path.name} has no sheet {options.sheet!r}: {reason}") from None
        raise SourceError(f"{path.name} is not a readable workbook: {reason}") from None
    assert isinstance(frame, pl.DataFrame)
    if not options.header:
        frame = frame.rename({c: f"column_{i}" for i, c in enumerate(frame.columns, start=1)})
    return frame.select(_as_text(frame, c) for c in frame.columns)


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A workbook cell as text: dates in ISO form, whole floats without '.0'."""
    dtype = frame.schema[name]
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return col.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(r" 00:00:00$", "").alias(name)
    if isinstance(dtype, pl.Date):
        return col.dt.strftime("%Y-%m-%d").alias(name)
    if dtype.is_float():
        return pl.when(col == col.round(0)).then(col.cast(pl.Int64, strict=False).cast(pl.String)) \
            .otherwise(col.cast(pl.String)).alias(name)
    return col.cast(pl.String).alias(name)


_SPACES = re.compile(r"\s+")


def _clean(frame: pl.DataFrame, na: tuple[str, ...]) -> pl.DataFrame:
    """Trim header names and cells; NA tokens become missing; unnamed or repeated headers get numbers."""
    names: list[str] = []
    for i, raw in enumerate(frame.columns, start=1):
        name = _SPACES.sub(" ", raw.replace("\ufeff", "")).strip() or f"column_{i}"
        while name in names:
            name = f"{name}_{i}"
        names.append(name)
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    tokens = list(na)
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in frame.columns)  # once: not again for the test
    return frame.with_columns(pl.when(pl.col(c).is_in(tokens)).then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns)
