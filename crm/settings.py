"""Service settings kept in the store: the business calendar and the SLA targets per priority.

They live in the store's meta table (so every app server and the CLI agree)
and changing them bumps the data version (they change numbers on screen).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from crm import schema
from crm.business_hours import BusinessCalendar, CalendarError
from crm.store import Store

DEFAULT_SLA_TARGETS: dict[str, float] = {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}
"""First-response targets in hours (DESIGN.md); an empty or unknown priority uses normal."""
PRIORITIES: tuple[str, ...] = ("urgent", "high", "normal", "low")


class SettingsError(ValueError):
    """Settings that cannot be used; the message says why."""


@dataclass(frozen=True)
class ServiceSettings:
    """The calendar business hours are counted in, and the SLA targets (hours) per priority."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    sla_targets: tuple[tuple[str, float], ...] = tuple(DEFAULT_SLA_TARGETS.items())

    def __post_init__(self) -> None:
        targets = dict(self.sla_targets)
        if set(targets) != set(PRIORITIES):
            raise SettingsError(f"SLA targets must name exactly {', '.join(PRIORITIES)}")
        if any(not (0 < v <= 24 * 365) for v in targets.values()):
            raise SettingsError("SLA targets must be positive hours (at most a year)")

    @property
    def targets(self) -> dict[str, float]:
        """Priority -> target hours."""
        return dict(self.sla_targets)


def load_settings(store: Store) -> ServiceSettings:
    """The store's settings, or the defaults where none are saved (a bad saved value: the defaults)."""
    if not store.has_schema():
        return ServiceSettings()
    with store.connect() as conn:
        rows: dict[str, str] = dict(conn.execute(  # type: ignore[arg-type]
            sa.select(schema.crm_meta.c.key, schema.crm_meta.c.value).where(
                schema.crm_meta.c.key.in_(["business_calendar", "sla_targets"]))
        ).all())
    try:
        calendar = BusinessCalendar.from_json(rows["business_calendar"]) if "business_calendar" in rows else None
        targets = json.loads(rows["sla_targets"]) if "sla_targets" in rows else None
        return ServiceSettings(
            calendar=calendar or BusinessCalendar(),
            sla_targets=tuple((p, float(targets[p])) for p in PRIORITIES) if targets else tuple(
                DEFAULT_SLA_TARGETS.items()),
        )
    except (CalendarError, SettingsError, KeyError, ValueError, TypeError):
        return ServiceSettings()


def save_settings(store: Store, settings: ServiceSettings) -> int:
    """Save the settings in one transaction; returns the new data version."""
    store.ensure_schema()
    meta = schema.crm_meta
    values = {"business_calendar": settings.calendar.to_json(), "sla_targets": json.dumps(settings.targets)}
    with store.transaction() as conn:
        for key, value in values.items():
            conn.execute(meta.delete().where(meta.c.key == key))
            conn.execute(meta.insert().values(key=key, value=value))
        return store.bump_version(conn)


def parse_holidays(text: str) -> tuple[date, ...]:
    """Holidays typed one per line (``YYYY-MM-DD``, blank lines and ``# notes`` ignored), sorted and unique;
    SettingsError names the first bad line."""
    days: set[date] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            days.add(date.fromisoformat(entry))
        except ValueError:
            raise SettingsError(f"holiday line {number}: {entry!r} is not a date (use YYYY-MM-DD)") from None
    return tuple(sorted(days))
