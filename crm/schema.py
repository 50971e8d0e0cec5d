"""The canonical data model as SQLAlchemy Core tables.

Ids are text, timestamps naive datetimes, amounts floats in one currency.
Only ids, the timestamps a metric needs and score/amount columns are required
(``nullable=False``); every other column may be empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

metadata = sa.MetaData()


def _id(name: str, *, primary: bool = False, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.String(64), primary_key=primary, nullable=nullable and not primary)


def _text(name: str, length: int = 120) -> sa.Column:
    return sa.Column(name, sa.String(length))


def _ts(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime, nullable=nullable)


def _num(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Float, nullable=nullable)


customers = sa.Table(
    "customers", metadata,
    _id("customer_id", primary=True),
    _text("name", 200), _text("email", 200), _text("phone", 60),
    _text("region"), _text("country"), _text("city"), _text("industry"),
    _text("segment"), _text("source"), _text("owner"),
    _ts("created_at"), _text("lifecycle_stage"),
    _ts("churned_at"),  # a subscription's cancellation (the churn basis "subscription" reads it)
)

opportunities = sa.Table(
    "opportunities", metadata,
    _id("opportunity_id", primary=True),
    _id("customer_id"),
    _text("owner"), _text("team"), _text("region"), _text("product"), _text("source"),
    _num("amount", nullable=False),
    _ts("created_at", nullable=False),
    sa.Column("expected_close_date", sa.Date),
    _ts("closed_at"),
    _text("stage"), _text("status", 10), _text("lost_reason"),
    sa.Index("ix_opportunities_created_at", "created_at"),
)

opportunity_stages = sa.Table(
    "opportunity_stages", metadata,
    _id("opportunity_id", nullable=False),
    _text("stage"),
    _ts("entered_at", nullable=False),
    sa.Index("ix_opportunity_stages_opportunity_id", "opportunity_id"),
)

pipeline_stages = sa.Table(
    "pipeline_stages", metadata,
    sa.Column("stage", sa.String(120), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    _num("win_probability", nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
)

orders = sa.Table(
    "orders", metadata,
    _id("order_id", primary=True),
    _id("customer_id", nullable=False),
    _ts("ordered_at", nullable=False),
    _num("amount", nullable=False),
    _text("channel"),
    sa.Index("ix_orders_customer_id", "customer_id"),
)

order_items = sa.Table(
    "order_items", metadata,
    _id("order_id", nullable=False),
    _text("product"),
    sa.Column("quantity", sa.Integer),
    _num("amount", nullable=False),
    sa.Index("ix_order_items_order_id", "order_id"),
)

tickets = sa.Table(
    "tickets", metadata,
    _id("ticket_id", primary=True),
    _id("customer_id"),
    _ts("created_at", nullable=False),
    _ts("first_response_at"), _ts("resolved_at"),
    _text("status", 20), _text("priority", 20), _text("channel"),
    _text("team"), _text("agent"), _text("product"), _text("category"),
    sa.Column("reopened", sa.Integer),
    sa.Index("ix_tickets_created_at", "created_at"),
)

survey_responses = sa.Table(
    "survey_responses", metadata,
    _id("response_id", primary=True),
    _id("customer_id"),
    _id("ticket_id"),
    sa.Column("kind", sa.String(10), nullable=False),
    _num("score", nullable=False),
    _ts("responded_at", nullable=False),
    sa.Column("comment", sa.Text),
    _text("product"), _text("team"), _text("agent"),
)

interactions = sa.Table(
    "interactions", metadata,
    _id("interaction_id", primary=True),
    _id("customer_id"), _id("opportunity_id"),
    _text("kind", 20),
    _ts("occurred_at", nullable=False),
    _text("owner"), _ts("due_at"), _ts("completed_at"),
)

users = sa.Table(
    "users", metadata,
    sa.Column("username", sa.String(120), primary_key=True),
    _text("display_name", 200), _text("role", 20), _text("password_hash", 300),
    _ts("created_at"),
    sa.Column("scope", sa.Text),  # JSON {"regions": [...], "teams": [...], "owners": [...]} (crm/auth.py)
    sa.Column("disabled", sa.Boolean), sa.Column("failed_attempts", sa.Integer), _ts("locked_until"),
    _ts("password_changed_at"), _ts("last_login_at"),
)
"""People who may sign in (crm/auth.py): an argon2id hash, never the password; role, row scope, lockout state."""

auth_sessions = sa.Table(
    "auth_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(120), nullable=False),
    _ts("created_at", nullable=False), _ts("last_seen_at"), _ts("ended_at"), _text("end_reason", 20),
    sa.Index("ix_auth_sessions_username", "username"),
)
"""Signed-in browser sessions (crm/auth.py): the SHA-256 of the token the browser holds in a cookie, never
the token; who, since when, last activity (written at most once a minute), and when and why it ended
(``end_reason``: ``idle``, ``signed_out``, ``disabled``, ``locked``, ``unknown_user``, ``scope``)."""

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _ts("at", nullable=False), _text("actor"), _text("action"), sa.Column("detail", sa.Text),
)

import_batches = sa.Table(
    "import_batches", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _ts("at", nullable=False), _text("table_name"), _text("source", 400),
    sa.Column("rows", sa.Integer), _text("status", 20),
    sa.Column("rejected", sa.Integer), _text("actor"), sa.Column("mapping", sa.Text), sa.Column("detail", sa.Text),
    _ts("undone_at"), _text("undone_by"),
)
"""One row per import run: the tables it wrote (comma-separated), its files, rows, who, and its undo."""

import_superseded = sa.Table(
    "import_superseded", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, nullable=False), _text("table_name"), sa.Column("part", sa.Integer),
    sa.Column("rows", sa.Text, nullable=False),
    sa.Index("ix_import_superseded_batch_id", "batch_id"),
)
"""Rows an upsert or replace took out of a table, as NDJSON parts, so the import can be undone."""

customer_merges = sa.Table(
    "customer_merges", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _ts("at", nullable=False), _text("actor"), _id("kept_id", nullable=False),
    sa.Column("merged_ids", sa.Text, nullable=False), sa.Column("rows", sa.Text),
    sa.Column("customers", sa.Text, nullable=False), sa.Column("repointed", sa.Text, nullable=False),
    _ts("undone_at"), _text("undone_by"),
)
"""One row per customer merge (crm/duplicates.py): who kept which id, the merged ids (a JSON list), rows
repointed per table (JSON), the deleted customer rows (NDJSON) and every repointed row as JSON
{table: {old customer id: [row keys]}}, so the merge can be undone exactly."""

saved_segments = sa.Table(
    "saved_segments", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("rule", sa.Text, nullable=False),
    _text("created_by"), _ts("created_at"), _ts("updated_at"),
    sa.Column("shared", sa.Boolean),  # created_by owns it; shared: every signed-in person sees it (null: not shared)
)

crm_meta = sa.Table(
    "crm_meta", metadata,
    sa.Column("key", sa.String(60), primary_key=True),
    sa.Column("value", sa.String(400)),
)

BUSINESS_TABLES: tuple[str, ...] = (
    "customers", "opportunities", "opportunity_stages", "pipeline_stages",
    "orders", "order_items", "tickets", "survey_responses", "interactions",
)
"""Tables whose change bumps the data version, in load order."""

EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2100, 12, 31, 23, 59, 59, 999999)
"""Timestamps outside these bounds are mistakes (0001-01-01, 9999-12-31 placeholders): an import rejects
them and the metrics leave them out, so period arithmetic never leaves the calendar."""

IMPORT_BATCH = "import_batch"
"""The column that tells which import wrote a row (empty for demo data and older rows)."""

for _name in BUSINESS_TABLES:
    metadata.tables[_name].append_column(sa.Column(IMPORT_BATCH, sa.Integer))

PARENT_KEYS: dict[str, str] = {"opportunity_stages": "opportunity_id", "order_items": "order_id"}
"""What an upsert replaces in a table without a key of its own: every row of the same parent."""


def primary_key(name: str) -> str | None:
    """The single-column primary key of a canonical table, or None."""
    keys = [str(c.name) for c in metadata.tables[name].primary_key.columns]
    return keys[0] if len(keys) == 1 else None


def data_columns(name: str) -> list[str]:
    """The columns an import may fill (the table's, without the import bookkeeping column)."""
    return [c.name for c in table(name).columns if c.name != IMPORT_BATCH]


@dataclass(frozen=True)
class Enum:
    """A closed set of values a column may take (empty is always allowed)."""

    column: str
    values: tuple[str, ...]


ENUMS: dict[str, tuple[Enum, ...]] = {
    "opportunities": (Enum("status", ("open", "won", "lost")),),
    "pipeline_stages": (Enum("kind", ("open", "won", "lost")),),
    "tickets": (Enum("priority", ("urgent", "high", "normal", "low")),),
    "survey_responses": (Enum("kind", ("nps", "csat")),),
    "interactions": (Enum("kind", ("call", "email", "meeting", "chat")),),
}


def table(name: str) -> sa.Table:
    """The canonical table called ``name``; KeyError names the known tables."""
    try:
        return metadata.tables[name]
    except KeyError:
        known = ", ".join(BUSINESS_TABLES)
        raise KeyError(f"unknown table {name!r}; canonical tables: {known}") from None


def polars_dtype(column: sa.Column) -> pl.DataType:
    """The Polars dtype a column is read as (timestamps in microseconds)."""
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return pl.Datetime("us")
    if isinstance(kind, sa.Date):
        return pl.Date()
    if isinstance(kind, sa.Integer):
        return pl.Int64()
    if isinstance(kind, sa.Float):
        return pl.Float64()
    return pl.String()


def polars_schema(name: str, columns: list[str] | None = None) -> dict[str, pl.DataType]:
    """Column name -> Polars dtype for a canonical table (optionally a subset)."""
    cols = table(name).columns
    return {c.name: polars_dtype(c) for c in cols if columns is None or c.name in columns}
