"""Exact digests of call arguments: the keys of results shared between sessions (crm.charts.shared) and
kept next to the snapshot (crm.results).

Two calls get the same digest exactly when their arguments are equal: every value is fed by its type and
an exact form (frames by their schema and Arrow IPC bytes, dataclasses field by field, sets sorted), so
the key does not depend on the process (no ``hash()``, which Python salts per process).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
from datetime import date, datetime
from typing import Any

import polars as pl

LARGEST_DIGESTED = 10_000
"""A set, list, tuple or dict with more items than this is not digested (``Undigestable``)."""


class Undigestable(Exception):
    """An argument ``digest`` does not take (an unknown type, or a large collection)."""


def digest(value: object) -> bytes:
    """The exact digest of ``value`` (32 bytes); raises Undigestable (see the module's docstring)."""
    into = hashlib.blake2b(digest_size=32)
    _feed(value, into)
    return into.digest()


def _feed(value: object, into: Any) -> None:
    if isinstance(value, pl.DataFrame):
        buffer = io.BytesIO()
        value.write_ipc(buffer, compression="uncompressed")
        into.update(b"frame" + repr(value.schema).encode() + buffer.getvalue())
    elif value is None or isinstance(value, str | int | float | bool | date | datetime):
        into.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, enum.Enum):
        into.update(f"{type(value).__qualname__}.{value.name};".encode())
    elif isinstance(value, list | tuple | set | frozenset | dict):
        if len(value) > LARGEST_DIGESTED:
            raise Undigestable(f"{type(value).__name__} of {len(value)} items")
        items = sorted(value.items(), key=lambda item: repr(item[0])) if isinstance(value, dict) else (
            sorted(value, key=repr) if isinstance(value, set | frozenset) else value)
        into.update(f"{type(value).__name__}[{len(value)}](".encode())
        for item in items:
            _feed(item, into)
        into.update(b")")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        into.update(f"{type(value).__qualname__}(".encode())
        for field in dataclasses.fields(value):
            into.update(f"{field.name}=".encode())
            _feed(getattr(value, field.name), into)
        into.update(b")")
    else:
        raise Undigestable(type(value).__name__)
