"""The audit log as people read it: what each action means in words, its detail as text, and filtering.

Rows are written by crm.auth.audit (in the transaction of the change they record) and read by
crm.auth.read_audit; this module turns them into the admin page's table and its export. Pure Polars:
no Streamlit here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl

from crm.auth import read_audit
from crm.store import Store

ACTIONS: dict[str, str] = {
    "login.success": "Signed in",
    "login.failure": "Sign-in refused",
    "login.lockout": "Account locked after failed sign-ins",
    "logout": "Signed out",
    "session.ended": "Session ended (the account was disabled, locked or given a new password)",
    "session.expired": "Session ended after idle hours",
    "user.added": "Added a user",
    "user.disabled": "Disabled a user",
    "user.enabled": "Enabled a user",
    "user.password_reset": "Reset a password",
    "user.role_changed": "Changed a user's role",
    "user.scope_changed": "Changed a user's scope",
    "data.exported": "Exported data",
    "import.loaded": "Imported data",
    "import.undone": "Undid an import",
    "customers.merged": "Merged duplicate customers",
    "customers.unmerged": "Undid a merge of customers",
    "settings.service_changed": "Changed the business calendar or SLA targets",
    "settings.churn_basis_changed": "Changed the churn basis",
    "segment.saved": "Saved a segment",
    "segment.renamed": "Renamed a segment",
    "segment.shared": "Shared a segment",
    "segment.unshared": "Stopped sharing a segment",
    "segment.deleted": "Deleted a segment",
}
"""Every action the app and the CLI audit, in words (docs/security.md lists the same names)."""

_KEY_WORDS: dict[str, str] = {
    "sla_targets_from": "SLA targets before", "sla_targets_to": "SLA targets after",
    "calendar_from": "calendar before", "calendar_to": "calendar after", "data_version": "data version",
    "display_name": "display name", "via": "from", "grid": "table",
}


_FIRST: tuple[str, ...] = ("user", "segment", "via", "grid", "title", "format", "rows", "filters", "selection", "masking")
"""Detail keys read first, in this order (what was exported, and how much, before the file name)."""


def action_words(action: str) -> str:
    """``data.exported`` → "Exported data"; an action this module does not know reads as its code in words."""
    known = ACTIONS.get(action)
    if known is not None:
        return known
    text = action.replace(".", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{_key_text(k)} {_value_text(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _key_text(key: str) -> str:
    return _KEY_WORDS.get(key, key.replace("_", " "))


def detail_text(detail: str | None) -> str:
    """An audit row's JSON detail as one line: ``table: customers · format: csv · rows: 1,204``, the keys of
    ``_FIRST`` first; empty values left out; text that is not a JSON object is shown as it is."""
    if not detail:
        return ""
    try:
        data = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(data, dict):
        return _value_text(data)
    keys = sorted(data, key=lambda k: _FIRST.index(k) if k in _FIRST else len(_FIRST))  # stable: the rest as stored
    return " · ".join(f"{_key_text(k)}: {_value_text(data[k])}" for k in keys if data[k] not in (None, "", [], {}))


def filter_entries(entries: pl.DataFrame, actors: Sequence[str] = (), actions: Sequence[str] = ()) -> pl.DataFrame:
    """``entries`` (read_audit's columns) by the given actors and actions (empty: all), newest first."""
    kept = entries
    if actors:
        kept = kept.filter(pl.col("actor").is_in(list(actors)))
    if actions:
        kept = kept.filter(pl.col("action").is_in(list(actions)))
    return kept.sort("id", descending=True)


def audit_table(entries: pl.DataFrame) -> pl.DataFrame:
    """The page's (and the export's) table: When, Who, What, Details, in the order of ``entries``. A row
    without an actor was written by the system ("—")."""
    return entries.select(
        pl.col("at").alias("When"),
        pl.col("actor").fill_null("—").alias("Who"),
        pl.col("action").map_elements(action_words, return_dtype=pl.String).alias("What"),
        pl.col("detail").map_elements(detail_text, return_dtype=pl.String).alias("Details"),
    )


def read_entries(store: Store, since: date | None = None, actors: Sequence[str] = (),
                 actions: Sequence[str] = ()) -> pl.DataFrame:
    """The audit log from ``since`` (a day, from its midnight; None: all), by actor and action, newest first
    (read_audit's columns: id, at, actor, action, detail)."""
    return filter_entries(read_audit(store, since=since), actors, actions)


def describe_choice(since: date | None, actors: Sequence[str], actions: Sequence[str]) -> str:
    """The page's filters in words, for an export's manifest: "since 2026-11-06; who ann; what Exported data"."""
    parts = [f"since {since.isoformat()}" if since else "every entry"]
    if actors:
        parts.append("who " + ", ".join(actors))
    if actions:
        parts.append("what " + ", ".join(action_words(a) for a in actions))
    return "; ".join(parts)


__all__ = ["ACTIONS", "action_words", "audit_table", "describe_choice", "detail_text", "filter_entries", "read_entries"]
