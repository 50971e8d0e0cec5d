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
import threading
import weakref
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import polars as pl

LARGEST_DIGESTED = 10_000
"""A set, list, tuple or dict with more items than this is not digested (``Undigestable``)."""


_PER_FRAME: dict[tuple[int, str], tuple[weakref.ref[pl.DataFrame], Any]] = {}
"""What ``per_frame`` worked out, by the frame's ``id`` and a name; an entry goes when its frame does."""
_PER_FRAME_LOCK = threading.RLock()  # re-entrant: a frame freed while it is held runs ``forget``
T = TypeVar("T")


def per_frame(frame: pl.DataFrame, name: str, compute: Callable[[pl.DataFrame], T]) -> T:
    """``compute(frame)`` once while ``frame`` lives (per ``name``): for values many calls derive from the same
    frame object, such as its digest (the tables a page draws come from a cache every session shares: the same
    frame each run) or the funnel's stages read from the stage configuration. Frames are not changed in place
    anywhere in the app, so a live frame's value does not go stale."""
    key = (id(frame), name)
    with _PER_FRAME_LOCK:
        known = _PER_FRAME.get(key)
    if known is not None and known[0]() is frame:
        return known[1]  # type: ignore[no-any-return]
    value = compute(frame)

    def forget(ref: weakref.ref[pl.DataFrame]) -> None:
        with _PER_FRAME_LOCK:
            if _PER_FRAME.get(key, (None, None))[0] is ref:
                del _PER_FRAME[key]

    with _PER_FRAME_LOCK:
        _PER_FRAME[key] = (weakref.ref(frame, forget), value)
    return value


class Undigestable(Exception):
    """An argument ``digest`` does not take (an unknown type, or a large collection)."""


def digest(value: object) -> bytes:
    """The exact digest of ``value`` (32 bytes); raises Undigestable (see the module's docstring)."""
    into = hashlib.blake2b(digest_size=32)
    _feed(value, into)
    return into.digest()


def _feed(value: object, into: Any) -> None:
    if isinstance(value, pl.DataFrame):
        into.update(b"frame" + _frame_digest(value))
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


def _frame_digest(frame: pl.DataFrame) -> bytes:
    """The digest of a frame's schema and Arrow IPC bytes, once per live frame (``per_frame``)."""
    def compute(frame: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="uncompressed")
        return hashlib.blake2b(repr(frame.schema).encode() + buffer.getvalue(), digest_size=32).digest()

    return per_frame(frame, "digest", compute)
