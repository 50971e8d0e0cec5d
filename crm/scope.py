"""A person's row scope: the regions, teams and owners whose rows they may see (a leaf: Polars only).

What a scope lets through, table by table (crm.narrowing applies it, with the filters, before any
aggregation; docs/security.md has the matrix):

- ``regions``: deals by their own region; customers, orders, tickets and survey responses by the
  customer's region.
- ``teams``: deals, tickets and survey responses by their team (sales team on deals, support team on
  tickets and responses); customers and their orders when the customer has a deal or a ticket of the team.
- ``owners``: deals they own; customers they own and those customers' orders; tickets and responses of
  customers they own or that they handled as agent.

Kinds combine with AND (``region=Europe`` and ``team=Borealis``: the Borealis rows in Europe); values of
one kind with OR. An empty scope is every row (an executive, an analyst, an admin); roles that must
never get every row by accident (manager, rep) are refused an empty scope when the user is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

SCOPE_KINDS: dict[str, str] = {"region": "regions", "team": "teams", "owner": "owners"}
"""CLI word → Scope field."""


class ScopeError(ValueError):
    """A scope that cannot be made or read; nothing was written."""


@dataclass(frozen=True)
class Scope:
    """The rows a user may see: regions, teams and owners (each empty: not narrowed by it).

    An empty scope is unrestricted. How it narrows rows is the scope layer's business (issue 13);
    here it is stored, validated and described.
    """

    regions: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in ("regions", "teams", "owners"):
            values = getattr(self, kind)
            if not isinstance(values, tuple) or not all(isinstance(v, str) and v.strip() for v in values):
                raise ScopeError(f"a scope's {kind} are non-empty texts")

    @classmethod
    def create(cls, regions: Iterable[str] = (), teams: Iterable[str] = (), owners: Iterable[str] = ()) -> Scope:
        """A scope from any iterables: values stripped, duplicates dropped, sorted."""

        def clean(values: Iterable[str]) -> tuple[str, ...]:
            if isinstance(values, str):
                values = [values]
            return tuple(sorted({str(v).strip() for v in values if str(v).strip()}))

        return cls(clean(regions), clean(teams), clean(owners))

    @classmethod
    def parse(cls, items: Iterable[str]) -> Scope:
        """From CLI arguments ``region=X``, ``team=Y``, ``owner=Z`` (each repeatable)."""
        found: dict[str, list[str]] = {kind: [] for kind in SCOPE_KINDS.values()}
        for item in items:
            kind, sep, value = item.partition("=")
            kind = kind.strip().lower()
            if not sep or kind not in SCOPE_KINDS or not value.strip():
                raise ScopeError(f"a scope is region=NAME, team=NAME or owner=NAME, not {item!r}")
            found[SCOPE_KINDS[kind]].append(value)
        return cls.create(**found)

    @property
    def unrestricted(self) -> bool:
        """True when the scope narrows nothing (every row)."""
        return not (self.regions or self.teams or self.owners)

    def to_json(self) -> str:
        return json.dumps({"regions": list(self.regions), "teams": list(self.teams), "owners": list(self.owners)})

    @classmethod
    def from_json(cls, text: str | None) -> Scope:
        """The stored form back; empty text is the unrestricted scope; anything unreadable is a ScopeError
        (a caller must fail closed: an unreadable scope is never "every row")."""
        if text is None or not text.strip():
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or set(data) - {"regions", "teams", "owners"}:
                raise ValueError("not a scope object")
            values = {k: data.get(k) or [] for k in ("regions", "teams", "owners")}
            if not all(isinstance(v, list) for v in values.values()):
                raise ValueError("not lists")
            return cls.create(**values)
        except (ValueError, TypeError) as exc:
            raise ScopeError(f"unreadable scope {text[:80]!r}: {exc}") from None

    def describe(self) -> str:
        """``region=Europe; owner=Elena Rossi`` (the CLI's --scope form), or ``all`` when unrestricted."""
        parts = [f"{kind}={v}" for kind, attr in SCOPE_KINDS.items() for v in getattr(self, attr)]
        return "; ".join(parts) or "all"

    def in_words(self) -> str:
        """What the scope lets a person see, for people: ``every row``, ``region Europe``, ``regions Europe
        or Asia and owner Elena Rossi``."""
        parts = []
        for kind, attr in SCOPE_KINDS.items():
            values = getattr(self, attr)
            if values:
                parts.append(f"{kind if len(values) == 1 else attr} {' or '.join(values)}")
        return " and ".join(parts) or "every row"
