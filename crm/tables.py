"""Tables shared by every caller and held within a memory budget (Polars' estimate of each), the least
recently used dropped first: the pages' tables (crm/ui/loaders.py) and a trend's whole months
(crm.results.computed_trend)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from crm.digest import Undigestable, digest


class _Sized(Protocol):
    def estimated_size(self) -> float: ...


_Table = TypeVar("_Table", bound=_Sized)


class SharedTables:
    """Tables computed for the pages, shared by every session and held within a memory budget (Polars'
    estimate of each), the least recently used dropped first: a count of entries does not bound memory when
    one filter's deal list holds a few thousand rows at 1M deals and millions at 10M. A table larger than a
    quarter of the budget is handed out and not kept. Two sessions asking for the same table at once compute
    it once; different tables are computed side by side (within the compute slots)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.lock = threading.Lock()
        self.held: OrderedDict[bytes, _Sized] = OrderedDict()
        self.size = 0
        self.computing: dict[bytes, threading.Lock] = {}

    def get(self, arguments: tuple[Any, ...], compute: Callable[[], _Table]) -> _Table:
        """The table for ``arguments`` (what it is computed from), computed by ``compute`` when not held
        (a frame, or anything with Polars' ``estimated_size``). Arguments without an exact digest
        (crm.digest) are computed each time."""
        try:
            key = digest(arguments)
        except Undigestable:
            return compute()
        with self.lock:
            if key in self.held:
                self.held.move_to_end(key)
                return cast(_Table, self.held[key])
            gate = self.computing.setdefault(key, threading.Lock())
        with gate:
            with self.lock:
                if key in self.held:
                    return cast(_Table, self.held[key])
            try:
                value = compute()
            finally:
                with self.lock:
                    self.computing.pop(key, None)
            size = int(value.estimated_size())
            with self.lock:
                if size <= self.budget // 4 and key not in self.held:
                    self.held[key] = value
                    self.size += size
                    while self.size > self.budget:
                        _, dropped = self.held.popitem(last=False)
                        self.size -= int(dropped.estimated_size())
            return value
