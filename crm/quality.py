"""The rules every row of the canonical tables follows: one validation for every store and every path in.

An import (CLI, Data page) and the demo load check rows against these rules
before anything is written; the metrics read stored rows through ``usable``,
which leaves out the rows a rule says cannot count (a store written by another
tool may hold anything), and the data-quality page counts every finding with
``findings``. Rules are Polars expressions over a table's typed columns, so a
million rows are checked in one pass; email addresses and phone numbers are
checked once per distinct value with maintained libraries (email-validator,
phonenumbers), never with a regular expression.

A rule is an *error* (the row is rejected by an import) or a *finding* (the
value is kept as given and reported: an address that is not valid is still
what the source says). ``excluded`` rules also take a stored row out of every
number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Protocol

import polars as pl
import sqlalchemy as sa

from crm import schema
from crm.store import Store

CALENDAR_RULE = f"outside {schema.EARLIEST:%Y-%m-%d}..{schema.LATEST:%Y-%m-%d}"
SCALE_RULE = "NPS scores are 0–10, CSAT scores 1–5 (whole numbers)"
EMAIL_RULE = "not a valid email address"
PHONE_RULE = "not a valid phone number for its country"

NON_NEGATIVE: frozenset[tuple[str, str]] = frozenset({
    ("opportunities", "amount"), ("orders", "amount"), ("order_items", "amount"), ("order_items", "quantity"),
    ("tickets", "reopened"), ("pipeline_stages", "position"),
})
"""Number columns that cannot be below zero (amounts are what was sold; a refund is not a negative order here)."""

RANGES: dict[tuple[str, str], tuple[float, float]] = {("pipeline_stages", "win_probability"): (0.0, 1.0)}

MAX_AMOUNT = 100_000_000_000.0
"""An amount above this (10^11 in the store's currency) is a mistake (a pasted id, a value in the wrong unit):
money is summed in whole cents in 64-bit integers, which such values would overflow."""
AMOUNTS: frozenset[tuple[str, str]] = frozenset({("opportunities", "amount"), ("orders", "amount"), ("order_items", "amount")})

EVENT_ORDER: tuple[tuple[str, str, str, str], ...] = (
    ("opportunities", "closed_at", "created_at", "closed before the deal was created"),
    ("tickets", "first_response_at", "created_at", "first response before the ticket was created"),
    ("tickets", "resolved_at", "created_at", "resolved before the ticket was created"),
    ("customers", "churned_at", "created_at", "churned before the customer was created"),
)
"""(table, later column, earlier column, rule): an event stamped before the one it follows."""

REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("opportunities", "customer_id", "customers", "customer_id"),
    ("opportunity_stages", "opportunity_id", "opportunities", "opportunity_id"),
    ("orders", "customer_id", "customers", "customer_id"),
    ("order_items", "order_id", "orders", "order_id"),
    ("tickets", "customer_id", "customers", "customer_id"),
    ("survey_responses", "customer_id", "customers", "customer_id"),
    ("survey_responses", "ticket_id", "tickets", "ticket_id"),
    ("interactions", "customer_id", "customers", "customer_id"),
    ("interactions", "opportunity_id", "opportunities", "opportunity_id"),
)
"""(table, column, parent table, parent key): a filled id must name a row of the parent."""


def reference_rule(parent: str) -> str:
    return f"no such row in {parent} (in this import or the store)"


@dataclass(frozen=True, eq=False)  # its expression cannot be compared for equality
class Rule:
    """One check on one column of one table."""

    table: str
    column: str
    text: str
    needs: tuple[str, ...]
    """The columns the check reads (it applies only where all are present)."""
    broken: pl.Expr
    """True on a row that breaks the rule (null counts as not broken)."""
    error: bool = True
    """An import rejects the row; otherwise the value is kept and reported."""
    excluded: bool = True
    """A stored row that breaks it is left out of every number."""


def _length(column: sa.Column) -> int | None:
    return getattr(column.type, "length", None)


def score_off_scale() -> pl.Expr:
    """True on a survey response whose score is off its kind's scale (``SCALE_RULE``): not a response."""
    kind, score = pl.col("kind"), pl.col("score")
    whole = score == score.round(0)
    return (((kind == "nps") & ~(score.is_between(0, 10) & whole))
            | ((kind == "csat") & ~(score.is_between(1, 5) & whole)))


@cache
def rules(name: str) -> tuple[Rule, ...]:
    """The row rules of a canonical table, in the order problems are reported."""
    table = schema.table(name)
    out: list[Rule] = []
    for c in table.columns:
        if c.name == schema.IMPORT_BATCH:
            continue
        col, kind = str(c.name), schema.polars_dtype(c)
        if not c.nullable:
            out.append(Rule(name, col, "required value is empty", (col,), pl.col(col).is_null()))
        if kind == pl.Float64:
            out.append(Rule(name, col, "not a finite number", (col,),
                            pl.col(col).is_nan() | pl.col(col).is_infinite()))
        if (name, col) in NON_NEGATIVE:
            out.append(Rule(name, col, "must not be negative", (col,), pl.col(col) < 0))
        if (name, col) in AMOUNTS:
            out.append(Rule(name, col, f"must be at most {MAX_AMOUNT:,.0f}", (col,), pl.col(col) > MAX_AMOUNT))
        if (name, col) in RANGES:
            low, high = RANGES[(name, col)]
            out.append(Rule(name, col, f"must be within {low}..{high}", (col,),
                            ~pl.col(col).is_between(low, high)))
        if isinstance(kind, pl.Datetime | pl.Date):
            out.append(Rule(name, col, CALENDAR_RULE, (col,),
                            ~pl.col(col).cast(pl.Datetime("us")).is_between(schema.EARLIEST, schema.LATEST),
                            excluded=not c.nullable))
        if kind == pl.String:
            length = _length(c)
            if length:
                out.append(Rule(name, col, f"longer than {length} characters", (col,),
                                pl.col(col).str.len_chars() > length, excluded=False))
            out.append(Rule(name, col, "holds a NUL character", (col,),
                            pl.col(col).str.contains("\x00", literal=True), excluded=False))
    for enum in schema.ENUMS.get(name, ()):
        values = list(enum.values)
        out.append(Rule(name, enum.column, f"must be one of {', '.join(values)} (map other values with values = {{ ... }})",
                        (enum.column,), ~pl.col(enum.column).is_in(values), excluded=False))
    if name == "survey_responses":
        out.append(Rule(name, "score", SCALE_RULE, ("kind", "score"), score_off_scale()))
    for table_name, later, earlier, text in EVENT_ORDER:
        if table_name == name:
            out.append(Rule(name, later, text, (later, earlier),
                            pl.col(later) < pl.col(earlier)))
    return tuple(out)


def _applicable(name: str, columns: Iterable[str]) -> list[Rule]:
    present = set(columns)
    return [r for r in rules(name) if set(r.needs) <= present]


# --- importing ------------------------------------------------------------------

_PROBLEMS = {"line": pl.Int64, "column": pl.String, "value": pl.String, "rule": pl.String}


def row_problems(name: str, typed: pl.DataFrame, filled: Iterable[str]) -> pl.DataFrame:
    """line, column, value, rule of every error-rule a row of ``typed`` (with ``_line``) breaks, on the
    ``filled`` columns. Which rules any row breaks is found in one pass; only those are worked out row by row."""
    applicable = [r for r in _applicable(name, filled) if r.error]
    out = [pl.DataFrame(schema=_PROBLEMS)]
    if not applicable or typed.height == 0:
        return out[0]
    flags = typed.select(r.broken.fill_null(False).any().alias(str(i)) for i, r in enumerate(applicable)).row(0)
    broken = [r for r, flag in zip(applicable, flags, strict=True) if flag]
    key = schema.primary_key(name)
    if key is not None and key in filled:
        present = typed[key].drop_nulls()
        if present.n_unique() < present.len():
            broken.append(Rule(name, key, "duplicate key within the file", (key,),
                               pl.col(key).is_duplicated() & pl.col(key).is_not_null()))
    for r in broken:
        out.append(typed.filter(r.broken.fill_null(False)).select(
            pl.col("_line").cast(pl.Int64).alias("line"), pl.lit(r.column, dtype=pl.String).alias("column"),
            pl.col(r.column).cast(pl.String).alias("value"), pl.lit(r.text, dtype=pl.String).alias("rule")))
    return pl.concat(out)


# --- email and phone -------------------------------------------------------------


@lru_cache(maxsize=4096)
def region_code(country: str | None) -> str | None:
    """The region a phone number without + is read in: a country written as an ISO code ("DE") or an English
    name ("Germany", "UK"), from phonenumbers' own region names (crm.duplicates.phone_region); else None."""
    from crm.duplicates import phone_region

    return phone_region(country)


def normal_email(value: str) -> str | None:
    """The address in its normal form (domain lower-cased, Unicode normalised), or None when it is not valid."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def normal_phone(value: str, region: str | None) -> str | None:
    """The number in E.164 (+4930123456), read in ``region`` unless it starts with +; None when not valid."""
    import phonenumbers

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def contacts(frame: pl.DataFrame) -> pl.DataFrame:
    """``email_ok`` / ``phone_ok`` (null where the value is empty) and ``email_normal`` / ``phone_normal``
    for the customers in ``frame``; each distinct value (and country) is checked once."""
    out = frame
    if "email" in frame.columns:
        emails = frame["email"].drop_nulls().unique()
        table = pl.DataFrame({"email": emails, "email_normal": [normal_email(e) for e in emails.to_list()]},
                             schema={"email": pl.String, "email_normal": pl.String})
        out = out.join(table, on="email", how="left", nulls_equal=False)
        out = out.with_columns(email_ok=pl.when(pl.col("email").is_not_null()).then(pl.col("email_normal").is_not_null()))
    if "phone" in frame.columns:
        country = pl.col("country") if "country" in frame.columns else pl.lit(None, dtype=pl.String)
        pairs = frame.select(pl.col("phone"), country.alias("_country")).drop_nulls("phone").unique()
        normal = [normal_phone(p, region_code(c)) for p, c in pairs.iter_rows()]
        table = pairs.with_columns(phone_normal=pl.Series(normal, dtype=pl.String))
        out = out.with_columns(country.alias("_country")).join(table, on=["phone", "_country"], how="left",
                                                                nulls_equal=True).drop("_country")
        out = out.with_columns(phone_ok=pl.when(pl.col("phone").is_not_null()).then(pl.col("phone_normal").is_not_null()))
    return out


def contact_findings(typed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Customers rows with valid emails and phones in their normal form (E.164), and the findings
    (line, column, value, rule) of the ones kept as given because they are not valid."""
    if not {"email", "phone"} & set(typed.columns):
        return typed, pl.DataFrame(schema=_PROBLEMS)
    checked = contacts(typed)
    found = [pl.DataFrame(schema=_PROBLEMS)]
    fixes = []
    for column, rule in (("email", EMAIL_RULE), ("phone", PHONE_RULE)):
        if column not in typed.columns:
            continue
        found.append(checked.filter(pl.col(f"{column}_ok") == False).select(  # noqa: E712 (null: empty)
            pl.col("_line").cast(pl.Int64).alias("line"), pl.lit(column).alias("column"), pl.col(column).alias("value"),
            pl.lit(rule).alias("rule")))
        fixes.append(pl.coalesce(f"{column}_normal", column).alias(column))
    return typed.with_columns(checked.select(fixes)), pl.concat(found)


# --- reading a store ---------------------------------------------------------------


def usable(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """A table as the metrics may use it: a timestamp outside 1900–2100 is unknown (blank), and a row that
    breaks an ``excluded`` rule (a required value missing or off the calendar, an amount that is not a
    finite number or is negative, a score off its scale, events out of order) is left out."""
    stamps = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime | pl.Date)]
    keep = [r.broken.fill_null(False) for r in _applicable(name, frame.columns) if r.excluded]
    if stamps:
        frame = frame.with_columns(
            pl.when(pl.col(c).cast(pl.Datetime("us")).is_between(schema.EARLIEST, schema.LATEST)).then(pl.col(c)).alias(c)
            for c in stamps)
        required = [c.name for c in schema.table(name).columns if not c.nullable and c.name in stamps]
        keep += [pl.col(c).is_null() for c in required]
    if not keep:
        return frame
    return frame.filter(~pl.any_horizontal(keep))


# --- tables written whole (the demo load) --------------------------------------------


class InvalidData(ValueError):
    """Rows that break the rules; the message names the first few (table, row, column, value, rule)."""

    def __init__(self, table: str, problems: pl.DataFrame) -> None:
        self.table, self.problems = table, problems
        shown = "; ".join(f"row {r['line']}, {r['column']} = {r['value']!r}: {r['rule']}"
                          for r in problems.head(5).iter_rows(named=True))
        super().__init__(f"{problems.height:,} problem(s) in {table}: {shown}")


def checked(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Whole canonical tables checked like an import (row rules, keys, references among them) with emails
    and phones in their normal form; InvalidData on the first table with a problem."""
    out: dict[str, pl.DataFrame] = {}
    for name, frame in tables.items():
        typed = frame.with_row_index("_line", offset=1)
        problems = [row_problems(name, typed, frame.columns)]
        for table, column, parent, key in REFERENCES:
            if table == name and column in frame.columns and parent in tables:
                missing = typed[column].is_not_null() & ~typed[column].is_in(tables[parent][key].implode())
                problems.append(typed.filter(missing).select(
                    pl.col("_line").cast(pl.Int64).alias("line"), pl.lit(column).alias("column"),
                    pl.col(column).cast(pl.String).alias("value"), pl.lit(reference_rule(parent)).alias("rule")))
        found = pl.concat(problems)
        if found.height:
            raise InvalidData(name, found)
        if name == "customers":
            typed, _ = contact_findings(typed)
        out[name] = typed.drop("_line")
    return out


# --- the data-quality report (the Data quality page) ------------------------------------------

QUALITY_THRESHOLD = 95.0
"""A table scoring below this (0–100) is flagged on the cockpit and the Data quality page."""

REQUIRED_RULE = "required value is empty"
DUPLICATE_KEY_RULE = "the same key as another row"

MAIN_TIMESTAMP: dict[str, str] = {
    "customers": "created_at", "opportunities": "created_at", "opportunity_stages": "entered_at",
    "orders": "ordered_at", "tickets": "created_at", "survey_responses": "responded_at",
    "interactions": "occurred_at",
}
"""The column that says when a table's newest record happened (order items and pipeline stages have none)."""

FINDINGS_SCHEMA = pl.Schema({
    "table": pl.String(), "column": pl.String(), "rule": pl.String(), "kind": pl.String(), "count": pl.Int64(),
    "rows": pl.Int64(), "error": pl.Boolean(), "excluded": pl.Boolean(),
})
"""The columns of ``findings``."""


@dataclass(frozen=True)
class Check:
    """A rule as the report applies it to a stored table: a row rule, a reference, a duplicate key or a contact."""

    table: str
    column: str
    rule: str
    kind: str
    """completeness, invalid, reference, duplicate key or contact."""
    broken: pl.Expr
    error: bool
    excluded: bool


def read_tables(store: Store) -> dict[str, pl.DataFrame]:
    """Every business table of ``store`` with all its data columns, in the canonical dtypes (the whole store
    in memory: for tests and small stores; the app reads the store in pieces, ``store_report``).

    A column a newer schema added that the stored table lacks reads as empty; a store without the schema
    gives empty tables."""
    if not store.has_schema():
        return _empty_tables()
    return {name: read_table(store, name) for name in schema.BUSINESS_TABLES}


def read_table(store: Store, name: str) -> pl.DataFrame:
    """One business table of ``store`` whole, with every data column (see ``read_tables``)."""
    if not store.has_schema():
        return _empty_tables()[name]
    columns = _stored_columns(name, store.column_names([name]))
    frame = store.read(name, columns) if columns else pl.DataFrame()
    return _with_every_column(name, frame)


def _empty_tables() -> dict[str, pl.DataFrame]:
    return {name: pl.DataFrame(schema=schema.polars_schema(name, schema.data_columns(name)))
            for name in schema.BUSINESS_TABLES}


def _stored_columns(name: str, present: dict[str, set[str]]) -> list[str]:
    return [c for c in schema.data_columns(name) if c in present[name]]


def _with_every_column(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the data columns it lacks added as empty, in schema order."""
    wanted = schema.data_columns(name)
    target = schema.polars_schema(name, wanted)
    return frame.with_columns(
        pl.lit(None, dtype).alias(c) for c, dtype in target.items() if c not in frame.columns).select(wanted)


# --- where the report reads: tables in memory, or a store read a piece at a time --------------------------------


class Source(Protocol):
    """The tables a report checks: which there are, their columns, the few keys that break a key or reference
    rule (worked out over the whole table), and the rows in pieces."""

    def names(self) -> list[str]: ...

    def columns(self, name: str) -> list[str]: ...

    def duplicated(self, name: str, column: str) -> pl.Series:
        """The filled values of ``column`` that more than one row of ``name`` holds."""
        ...

    def unknown(self, name: str, column: str, parent: str, parent_key: str) -> pl.Series:
        """The filled values of ``column`` that no row of ``parent`` holds in ``parent_key``."""
        ...

    def pieces(self, name: str) -> Iterator[pl.DataFrame]: ...


@dataclass(frozen=True)
class InMemory:
    """Tables already in memory: each is one piece."""

    tables: dict[str, pl.DataFrame]

    def names(self) -> list[str]:
        return [name for name in schema.BUSINESS_TABLES if name in self.tables]

    def columns(self, name: str) -> list[str]:
        return self.tables[name].columns

    def duplicated(self, name: str, column: str) -> pl.Series:
        values = self.tables[name][column].drop_nulls()
        return values.filter(values.is_duplicated()).unique()

    def unknown(self, name: str, column: str, parent: str, parent_key: str) -> pl.Series:
        values = self.tables[name][column].drop_nulls().unique()
        return values.filter(~values.is_in(self.tables[parent][parent_key].implode()))

    def pieces(self, name: str) -> Iterator[pl.DataFrame]:
        yield self.tables[name]


class Stored:
    """A store's tables, each read in pieces of ``rows`` rows (Store.read_batches) with every data column (a
    column the store lacks reads as empty). Duplicate keys and ids naming no parent row are found by the
    database (GROUP BY, an anti-join), so the memory held is a piece's, whatever the size of the store."""

    def __init__(self, store: Store, rows: int = 1_000_000) -> None:
        self.store, self.rows = store, rows
        self.present = store.column_names(schema.BUSINESS_TABLES)

    def names(self) -> list[str]:
        return list(schema.BUSINESS_TABLES)

    def columns(self, name: str) -> list[str]:
        return schema.data_columns(name)

    def _values(self, name: str, column: str, query: sa.Select | None) -> pl.Series:
        dtype = schema.polars_schema(name, [column])[column]
        if query is None:
            return pl.Series(column, [], dtype=dtype)
        return self.store.read_select(query, {column: dtype})[column]

    def duplicated(self, name: str, column: str) -> pl.Series:
        table = schema.table(name)
        key = table.c[column]
        query = (sa.select(key).where(key.is_not(None)).group_by(key).having(sa.func.count() > 1)
                 if column in self.present[name] else None)
        return self._values(name, column, query)

    def unknown(self, name: str, column: str, parent: str, parent_key: str) -> pl.Series:
        child, known = schema.table(name).c[column], schema.table(parent).c[parent_key]
        if column not in self.present[name]:
            return self._values(name, column, None)
        query = sa.select(child).distinct().where(child.is_not(None))
        if parent_key in self.present[parent]:
            query = query.where(~sa.exists().where(known == child))
        return self._values(name, column, query)

    def pieces(self, name: str) -> Iterator[pl.DataFrame]:
        columns = _stored_columns(name, self.present)
        if not columns:  # the store lacks the table
            return
        for piece in self.store.read_batches(name, columns, self.rows):
            yield _with_every_column(name, piece)


def _source(store: Store, rows: int) -> Source:
    return Stored(store, rows) if store.has_schema() else InMemory(_empty_tables())


# --- the checks -------------------------------------------------------------------------------------------------


def table_checks(name: str, source: Source, contact: bool = True) -> list[Check]:
    """Every check of table ``name`` of ``source`` as an expression over one row: its row rules (on the
    columns it has), a filled reference that names no row of its parent (a parent ``source`` has), a key that
    several rows hold and, for customers when ``contact``, an invalid email or phone (the piece must have been
    through ``contacts``). The keys that break a key or reference rule are worked out first, over the whole
    table, so a check needs nothing beyond its row."""
    present = source.columns(name)
    out = [Check(name, r.column, r.text, "completeness" if r.text == REQUIRED_RULE else "invalid", r.broken,
                 r.error, r.excluded) for r in _applicable(name, present)]
    for table, column, parent, parent_key in REFERENCES:
        if table == name and column in present and parent in source.names() and parent_key in source.columns(parent):
            out.append(Check(name, column, reference_rule(parent), "reference",
                             _among(column, source.unknown(name, column, parent, parent_key)), error=True,
                             excluded=False))
    key = schema.primary_key(name)
    if key is not None and key in present:
        out.append(Check(name, key, DUPLICATE_KEY_RULE, "duplicate key", _among(key, source.duplicated(name, key)),
                         error=True, excluded=False))
    if contact and name == "customers":
        for column, text in (("email", EMAIL_RULE), ("phone", PHONE_RULE)):
            if column in present:
                out.append(Check(name, column, text, "contact", pl.col(f"{column}_ok").not_(), error=False,
                                 excluded=False))
    return out


def _among(column: str, values: pl.Series) -> pl.Expr:
    """True where ``column`` is filled with one of ``values``."""
    return pl.col(column).is_not_null() & pl.col(column).is_in(values.implode())


def _checked_piece(name: str, piece: pl.DataFrame, contact: bool) -> pl.DataFrame:
    return contacts(piece) if contact and name == "customers" else piece


# --- the report ---------------------------------------------------------------------------------------------------

COMPLETENESS_SCHEMA = pl.Schema({
    "table": pl.String(), "column": pl.String(), "required": pl.Boolean(), "filled": pl.Int64(), "rows": pl.Int64(),
    "share": pl.Float64(),
})

LATEST_SCHEMA = pl.Schema({"table": pl.String(), "column": pl.String(), "rows": pl.Int64(), "latest": pl.Datetime("us")})

FRESHNESS_SCHEMA = pl.Schema({
    "table": pl.String(), "column": pl.String(), "rows": pl.Int64(), "latest": pl.Datetime("us"),
    "days_ago": pl.Float64(),
})

SCORES_SCHEMA = pl.Schema({
    "table": pl.String(), "rows": pl.Int64(), "clean": pl.Int64(), "score": pl.Float64(), "below": pl.Boolean(),
})

SCORE_FORMULA = ("score = 100 × rows with no error-level finding / rows in the table; an error-level finding is "
                 "anything an import would reject: a required value empty, an invalid value, a reference to a "
                 "missing row, a duplicate key (invalid emails and phones are reported, not scored)")
"""The score's definition in words, for the page and the docs."""


@dataclass(frozen=True)
class Report:
    """What the Data quality page shows of a store (``findings``, ``completeness``, ``scores``: see the
    functions of those names) and ``latest``: per table with a main timestamp, its newest stamp within
    1900–2100 (``freshness`` adds how long ago, which depends on the clock)."""

    findings: pl.DataFrame
    completeness: pl.DataFrame
    scores: pl.DataFrame
    latest: pl.DataFrame


def report(source: Source, threshold: float = QUALITY_THRESHOLD, full: bool = True,
           step: Callable[[str], None] | None = None) -> Report:
    """Every table of ``source`` checked in one pass over its pieces. ``full``: findings (contacts included),
    completeness and newest stamps as well as the scores; otherwise the scores alone (empty tables for the
    rest). The keys that break a key or reference rule are found first (``table_checks``); ``step`` hears
    which table is checked."""
    names = source.names()
    found, filled, latest, scores = [], [], [], []
    for i, name in enumerate(names):
        if step is not None:
            step(f"Checking {name.replace('_', ' ')} ({i + 1} of {len(names)})")
        columns = source.columns(name)
        checks_ = table_checks(name, source, contact=full)
        errors = [c.broken.fill_null(False) for c in checks_ if c.error and c.kind != "contact"]
        stamp = MAIN_TIMESTAMP.get(name) if MAIN_TIMESTAMP.get(name) in columns else None
        measured = [c for c in schema.data_columns(name) if c in columns]
        rows = clean = 0
        counts = [0] * len(checks_)
        present = [0] * len(measured)
        newest: datetime | None = None
        for piece in source.pieces(name):
            if piece.height == 0:
                continue
            rows += piece.height
            clean += piece.height if not errors else int(piece.select((~pl.any_horizontal(errors)).sum()).item())
            if not full:
                continue
            checked_piece = _checked_piece(name, piece, contact=True)
            counts = [a + int(b) for a, b in zip(counts, checked_piece.select(
                c.broken.fill_null(False).sum().alias(str(k)) for k, c in enumerate(checks_)).row(0), strict=True)]
            present = [a + int(b) for a, b in zip(present, piece.select(_filled(piece, c) for c in measured).row(0),
                                                  strict=True)]
            if stamp is not None:
                newest = _later(newest, _newest(piece[stamp]))
        score = 100 * clean / rows if rows else None
        scores.append((name, rows, clean, score, score is not None and score < threshold))
        if full:
            found += [(c.table, c.column, c.rule, c.kind, n, rows, c.error, c.excluded)
                      for c, n in zip(checks_, counts, strict=True) if n]
            required = {str(c.name): not c.nullable for c in schema.table(name).columns}
            filled += [(name, c, required[c], n, rows, n / rows if rows else None)
                       for c, n in zip(measured, present, strict=True)]
            if stamp is not None:
                latest.append((name, stamp, rows, newest))
    order = {name: i for i, name in enumerate(schema.BUSINESS_TABLES)}
    findings_ = (pl.DataFrame(found, schema=FINDINGS_SCHEMA, orient="row")
                 .with_columns(pl.col("table").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
                 .sort(["_order", "count", "column", "rule"], descending=[False, True, False, False])
                 .drop("_order"))
    return Report(findings_, pl.DataFrame(filled, schema=COMPLETENESS_SCHEMA, orient="row"),
                  pl.DataFrame(scores, schema=SCORES_SCHEMA, orient="row"),
                  pl.DataFrame(latest, schema=LATEST_SCHEMA, orient="row"))


def _filled(piece: pl.DataFrame, column: str) -> pl.Expr:
    """Rows with a value (an empty or blank text counts as empty)."""
    if piece.schema[column] == pl.String:
        return (pl.col(column).str.strip_chars().str.len_chars() > 0).sum().alias(column)
    return pl.col(column).is_not_null().sum().alias(column)


def _newest(stamps: pl.Series) -> datetime | None:
    stamps = stamps.cast(pl.Datetime("us"))
    value = stamps.filter(stamps.is_between(schema.EARLIEST, schema.LATEST)).max()
    assert value is None or isinstance(value, datetime)
    return value


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def store_report(store: Store, threshold: float = QUALITY_THRESHOLD, rows: int = 1_000_000,
                 step: Callable[[str], None] | None = None) -> Report:
    """``report`` of a store read in pieces of ``rows`` rows (``Stored``): the memory of a piece, not of the
    store (146M rows at 10M deals)."""
    return report(_source(store, rows), threshold, step=step)


def store_scores(store: Store, threshold: float = QUALITY_THRESHOLD, rows: int = 1_000_000,
                 step: Callable[[str], None] | None = None) -> pl.DataFrame:
    """The scores alone (the cockpit's footer) of a store read in pieces: see ``store_report``."""
    return report(_source(store, rows), threshold, full=False, step=step).scores


def findings(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per (table, column, rule) that at least one stored row breaks: ``kind`` (completeness = a
    required value is empty, invalid = a value breaks a row rule, reference = an id names no row of its
    parent table, duplicate key = two rows share a primary key, contact = an email or phone that is not
    valid), ``count`` (rows breaking it), ``rows`` (rows in the table), ``error`` (an import would reject
    the row; a contact finding is only reported) and ``excluded`` (the metrics leave such rows out, see
    ``usable``). Sorted by table order, then count (largest first)."""
    return report(InMemory(tables)).findings


def completeness(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Per table and column (in schema order): ``required`` (the schema says NOT NULL), ``filled`` (rows with
    a value; an empty or blank text counts as empty), ``rows`` and ``share`` = filled / rows (0–1; null for
    an empty table)."""
    return report(InMemory(tables)).completeness


def freshness(tables: dict[str, pl.DataFrame] | pl.DataFrame, now: datetime | None = None) -> pl.DataFrame:
    """Per table with a main timestamp (``MAIN_TIMESTAMP``): that column, ``rows``, ``latest`` (the newest
    stamp within 1900–2100; a placeholder such as 9999-12-31 is no record of activity) and ``days_ago`` =
    (``now`` − latest) in fractional days (negative for a stamp in the future; null when there is none).
    ``tables``: the tables, or a report's ``latest``."""
    latest = report(InMemory(tables)).latest if isinstance(tables, dict) else tables
    now = now or datetime.now()
    return latest.with_columns(days_ago=(pl.lit(now, dtype=pl.Datetime("us")) - pl.col("latest"))
                               .dt.total_microseconds().cast(pl.Float64) / 86_400e6).cast(FRESHNESS_SCHEMA)


def quality_scores(tables: dict[str, pl.DataFrame], threshold: float = QUALITY_THRESHOLD) -> pl.DataFrame:
    """A 0–100 score per business table: ``SCORE_FORMULA``. Columns: ``table``, ``rows``, ``clean`` (rows
    with no error-level finding), ``score`` (null for an empty table: nothing to judge) and ``below``
    (score < ``threshold``)."""
    return report(InMemory(tables), threshold, full=False).scores


def finding_rows(source: Source | dict[str, pl.DataFrame], table: str, column: str, rule: str) -> pl.DataFrame:
    """The rows of ``table`` that break ``rule`` on ``column`` (as named in ``findings``), the columns that
    matter first: the table's key, the column, the other columns the rule reads, then the rest. Empty when
    no row breaks it or no such check exists. ``source``: tables in memory, or a Source (read in pieces)."""
    source = InMemory(source) if isinstance(source, dict) else source
    columns = source.columns(table)
    wanted = [c for c in table_checks(table, source) if c.column == column and c.rule == rule]
    contact = bool(wanted) and wanted[0].kind == "contact"
    parts = [pl.DataFrame(schema=schema.polars_schema(table, columns))]
    if wanted:
        parts += [_checked_piece(table, piece, contact).filter(wanted[0].broken.fill_null(False)).select(columns)
                  for piece in source.pieces(table)]
    rows = pl.concat(parts)
    key = schema.primary_key(table)
    rule_columns = next((r.needs for r in rules(table) if r.column == column and r.text == rule), (column,))
    first = list(dict.fromkeys([c for c in (key, column, *rule_columns) if c is not None and c in rows.columns]))
    return rows.select(first + [c for c in rows.columns if c not in first])


def store_finding_rows(store: Store, table: str, column: str, rule: str, rows: int = 1_000_000) -> pl.DataFrame:
    """``finding_rows`` of a store read in pieces."""
    return finding_rows(_source(store, rows), table, column, rule)


def age_text(days: float | None) -> str:
    """How long ago, in words: ``"just now"``, ``"5 hours ago"``, ``"3 days ago"``, ``"in the future"``
    (a stamp ahead of the clock), ``"no records"`` for None. Days are fractional."""
    if days is None:
        return "no records"
    if days < -1 / 24:
        return "in the future"
    hours = days * 24
    if hours < 1:
        return "just now"
    if hours < 48:
        return f"{int(hours)} hour{'s' if int(hours) != 1 else ''} ago"
    return f"{int(days):,} days ago"
