"""A draft mapping for a file nobody has mapped yet: columns matched by name and by content.

Names are compared after normalising (case, spaces, punctuation) against each
canonical column and its usual synonyms in exports, with rapidfuzz for near
spellings; content decides between candidates (a column of dates for a
timestamp, of emails for ``email``, of unique values for a key). Columns with
a fixed vocabulary (status, priority, kind) get a value map proposed from
their distinct values. The draft is a start for a person to check, not a
verdict: ``notes`` says what it could not decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rapidfuzz import fuzz

from crm import schema
from crm.ingest import parse_datetimes
from crm.mapping import ColumnSpec, ImportBlock, ImportMapping, match_key
from crm.sources import ReadOptions, Source, read_source

SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer", "account", "account id", "client", "client id", "cust id", "customerid", "客户编号", "客户id"),
    "opportunity_id": ("deal id", "opportunity", "deal", "opp id"),
    "ticket_id": ("case id", "case", "ticket", "issue id", "ticket number"),
    "response_id": ("respondent id", "respondentid", "survey id", "response"),
    "order_id": ("invoice", "invoice no", "order", "order number", "transaction id"),
    "interaction_id": ("activity id", "event id"),
    "name": ("customer name", "company", "account name", "client name", "客户名称", "名称", "公司"),
    "email": ("e-mail", "mail", "email address", "customer email", "邮箱"),
    "phone": ("mobile", "telephone", "tel", "phone number", "手机", "电话", "联系电话"),
    "region": ("province", "state", "territory", "regional office", "area", "省", "省份", "地区"),
    "city": ("town", "市", "城市"),
    "country": ("nation", "国家"),
    "industry": ("sector", "vertical", "行业"),
    "segment": ("customer segment", "tier"),
    "owner": ("sales agent", "account owner", "rep", "sales rep", "assigned to", "负责人"),
    "agent": ("resource", "assignee", "handled by", "support agent"),
    "team": ("group", "queue", "manager", "support team"),
    "created_at": ("created", "created date", "create date", "open date", "signup date", "sign up date", "start date",
                   "engage date", "注册日期", "创建时间", "date", "timestamp"),
    "closed_at": ("close date", "closed", "closed date", "date closed"),
    "expected_close_date": ("expected close", "close date expected", "forecast close"),
    "amount": ("close value", "value", "deal value", "revenue", "total", "sales", "price", "金额"),
    "stage": ("deal stage", "stage name", "pipeline stage"),
    "status": ("deal stage", "outcome", "state", "result"),
    "priority": ("severity", "seriousness", "urgency"),
    "first_response_at": ("first response", "first reply", "first responded", "responded at"),
    "resolved_at": ("resolved", "resolution date", "closed at", "solved"),
    "score": ("nps", "csat", "rating", "satisfaction", "score value"),
    "responded_at": ("date", "submitted", "response date", "survey date"),
    "comment": ("comments", "feedback", "verbatim", "text", "remarks"),
    "ordered_at": ("order date", "invoice date", "purchase date", "date"),
    "lost_reason": ("loss reason", "reason lost"),
    "channel": ("source channel", "medium", "via"),
    "source": ("lead source", "acquisition", "utm source"),
    "product": ("product name", "item", "sku"),
    "quantity": ("qty", "units", "count"),
    "lifecycle_stage": ("churn", "churned", "lifecycle", "customer status"),
}

VALUE_SYNONYMS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("opportunities", "status"): {"won": ("won", "closed won", "win", "closedwon"), "lost": ("lost", "closed lost", "loss")},
    ("tickets", "priority"): {"urgent": ("urgent", "critical", "p1", "highest", "blocker", "4"),
                              "high": ("high", "p2", "major", "3"), "normal": ("normal", "medium", "p3", "moderate", "2"),
                              "low": ("low", "p4", "minor", "lowest", "1")},
    ("interactions", "kind"): {"call": ("call", "phone", "phone call"), "email": ("email", "e-mail", "mail"),
                               "meeting": ("meeting", "visit", "demo"), "chat": ("chat", "message", "sms")},
    ("survey_responses", "kind"): {"nps": ("nps", "net promoter"), "csat": ("csat", "satisfaction")},
    ("pipeline_stages", "kind"): {"open": ("open",), "won": ("won",), "lost": ("lost",)},
}
_OTHERWISE = {("opportunities", "status"): "open"}
_DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y", "%Y/%m/%d %H:%M:%S%.f", "%Y/%m/%d %H:%M:%S",
                 "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S")
_MAX_VALUES = 30
_THRESHOLD = 70.0


def _key(text: str) -> str:
    return re.sub(r"[\s_\-./]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class Suggestion:
    """A draft mapping for one file and what it could not decide."""

    mapping: ImportMapping
    source: Source
    table: str
    notes: tuple[str, ...]


def _name_score(canonical: str, source: str) -> float:
    names = (canonical.replace("_", " "), *SYNONYMS.get(canonical, ()))
    key = _key(source)
    best = max(fuzz.ratio(_key(n), key) for n in names)
    return 100.0 if key in {_key(n) for n in names} else best * 0.9


def _content_bonus(kind: pl.DataType, canonical: str, values: pl.Series, primary: bool) -> float:
    sample = values.drop_nulls().head(500)
    if sample.len() == 0:
        return -20.0
    if isinstance(kind, pl.Datetime | pl.Date):
        parsed = max(_parse_rate(sample, None), max(_parse_rate(sample, f) for f in _DATE_FORMATS))
        return 25.0 * parsed - 10.0
    if kind in (pl.Float64, pl.Int64):
        share = _share(sample.str.replace_all(",", "").cast(pl.Float64, strict=False).is_not_null())
        return 20.0 * share - 10.0
    if canonical == "email":
        return 30.0 * _share(sample.str.contains(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"))
    if primary:
        return 15.0 if values.drop_nulls().is_unique().all() else -15.0
    return 0.0


def _share(mask: pl.Series) -> float:
    """The share of true values in a boolean series (0 when empty)."""
    return float(mask.sum()) / mask.len() if mask.len() else 0.0


def _parse_rate(sample: pl.Series, fmt: str | None) -> float:
    if fmt is None:  # ISO 8601 as the importer reads it (format inference raises when the first value is not ISO)
        return _iso_rate(sample)
    return _share(sample.str.to_datetime(fmt, strict=False, time_unit="us").is_not_null())


def _date_format(values: pl.Series) -> str | None:
    """A strptime pattern that reads every sampled value, when ISO 8601 does not."""
    sample = values.drop_nulls().head(500)
    if sample.len() == 0 or _iso_rate(sample) >= 0.99:
        return None
    rates = [(_parse_rate(sample, f), f) for f in _DATE_FORMATS]
    best = max(rates)
    return best[1] if best[0] > 0.9 else None


def _iso_rate(sample: pl.Series) -> float:
    return _share(pl.select(parse_datetimes(pl.lit(sample), ())).to_series().is_not_null())


def _value_map(table: str, column: str, values: pl.Series) -> tuple[tuple[tuple[str, str], ...], str | None]:
    vocabulary = VALUE_SYNONYMS.get((table, column))
    distinct = values.drop_nulls().unique(maintain_order=True)
    if vocabulary is None or distinct.len() > _MAX_VALUES:
        return (), None
    pairs = []
    seen: set[str] = set()
    for value in distinct.to_list():
        if match_key(value) in seen:  # "Low" and "LOW " match the same cells: one entry
            continue
        seen.add(match_key(value))
        key = _key(value)
        for target, names in vocabulary.items():
            if key in {_key(n) for n in names}:
                pairs.append((value, target))
                break
    otherwise = _OTHERWISE.get((table, column))
    if all(_key(v) == t for v, t in pairs) and len(pairs) == len(seen):
        return (), None  # already the canonical words
    return tuple(pairs), otherwise


def choose_table(columns: list[str]) -> str:
    """The canonical table whose columns the file's headers match best."""
    def score(name: str) -> float:
        return sum(max((_name_score(c, s) for s in columns), default=0.0) >= _THRESHOLD for c in schema.data_columns(name))
    return max(schema.BUSINESS_TABLES, key=lambda n: (score(n), -schema.BUSINESS_TABLES.index(n)))


def suggest_mapping(path: Path, table: str | None = None, options: ReadOptions | None = None) -> Suggestion:
    """A draft mapping of ``path`` onto ``table`` (chosen from the headers when None)."""
    options = options or ReadOptions()
    source = read_source(path, options)
    frame = source.frame
    name = table or choose_table(frame.columns)
    target = schema.table(name)
    key = schema.primary_key(name)
    candidates = []
    for column in target.columns:
        if column.name == schema.IMPORT_BATCH:
            continue
        kind = schema.polars_dtype(column)
        for src in frame.columns:
            score = _name_score(column.name, src)
            if score < 50:
                continue
            score += _content_bonus(kind, column.name, frame[src], column.name == key)
            candidates.append((score, str(column.name), src))
    candidates.sort(key=lambda c: -c[0])
    chosen: dict[str, str] = {}
    used: set[str] = set()
    shared = {"stage", "status"}  # one 'deal stage' column may feed both
    for score, canonical, src in candidates:
        if score < _THRESHOLD or canonical in chosen:
            continue
        if src in used and not (canonical in shared and any(chosen.get(s) == src for s in shared)):
            continue
        chosen[canonical] = src
        used.add(src)
    specs: dict[str, ColumnSpec] = {}
    formats: list[str] = []
    notes: list[str] = []
    for column in target.columns:
        canonical = str(column.name)
        if canonical not in chosen:
            if not column.nullable:
                notes.append(f"required column {canonical} has no source column: map one, or give a value or default")
            continue
        src = chosen[canonical]
        kind = schema.polars_dtype(column)
        values, otherwise = _value_map(name, canonical, frame[src])
        spec = ColumnSpec(source=src, values=values, otherwise=otherwise)
        empty = frame[src].null_count()
        if empty and not column.nullable:
            if kind in (pl.Float64, pl.Int64):  # e.g. the amount of open deals, blank in many exports
                spec = ColumnSpec(source=src, values=values, otherwise=otherwise, default="0")
                notes.append(f"{canonical} is empty in {empty:,} row(s) of {src!r}: default = 0 proposed; check it")
            else:
                notes.append(f"{canonical} is required but empty in {empty:,} row(s) of {src!r}: give a default "
                             "or those rows will be rejected")
        if isinstance(kind, pl.Datetime | pl.Date):
            fmt = _date_format(frame[src])
            if fmt and fmt not in formats:
                formats.append(fmt)
        specs[canonical] = spec
        unmatched = len({match_key(v) for v in frame[src].drop_nulls().unique().to_list()}) - len(values) if values else 0
        if values and unmatched and otherwise is None:
            notes.append(f"{canonical}: {unmatched} value(s) of {src!r} match no {canonical}; add them to the value map")
    unused = [c for c in frame.columns if c not in used]
    if unused:
        notes.append(f"not used (unmapped = \"ignore\"): {', '.join(unused)}")
    block = ImportBlock(
        table=name, file=path, read=ReadOptions(
            format=source.format, sheet=options.sheet, encoding=source.encoding or "auto",
            delimiter=source.delimiter or "auto", header=source.header, na=options.na),
        date_formats=tuple(formats), columns=tuple(specs.items()))
    return Suggestion(ImportMapping((block,), path.parent), source, name, tuple(notes))
