"""Settings kept in the store: the business calendar, the SLA targets per priority and the churn basis.

They live in the store's meta table (so every app server and the CLI agree)
and changing them bumps the data version (they change numbers on screen).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import polars as pl
import sqlalchemy as sa

from crm import schema
from crm.auth import audit
from crm.business_hours import BusinessCalendar, CalendarError
from crm.roles import require
from crm.store import Store

DEFAULT_SLA_TARGETS: dict[str, float] = {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}


def sla_target_expr(targets: Mapping[str, float] = DEFAULT_SLA_TARGETS) -> pl.Expr:
    """Target hours for each ticket's priority (normal when empty or unknown)."""
    return pl.col("priority").replace_strict(dict(targets), default=targets["normal"], return_dtype=pl.Float64)

"""First-response targets in hours (DESIGN.md); an empty or unknown priority uses normal."""
PRIORITIES: tuple[str, ...] = ("urgent", "high", "normal", "low")


class SettingsError(ValueError):
    """Settings that cannot be used; the message says why."""


class ChurnBasis(StrEnum):
    """What "active customer" means for active customers, churn rate and the churn trend (DESIGN.md)."""

    ACTIVITY = "activity"
    """Active on d: an order dated within the activity window ending on d (crm.metrics.churn)."""
    SUBSCRIPTION = "subscription"
    """Active on d: created_at on or before d and no churned_at (cancellation) on or before d."""


CHURN_BASIS = "churn_basis"
"""The meta-table key of the churn basis (``python -m crm settings set churn_basis ...``)."""


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


def save_settings(store: Store, settings: ServiceSettings, actor: str | None = None, role: str | None = None) -> int:
    """Save the settings in one transaction; returns the new data version. Audited as
    ``settings.service_changed`` (before and after) in the same transaction; with ``role``, NotPermitted
    (nothing written) unless that role may change settings (crm.roles)."""
    if role is not None:
        require(role, "settings")
    before = load_settings(store)
    store.ensure_schema()
    meta = schema.crm_meta
    values = {"business_calendar": settings.calendar.to_json(), "sla_targets": json.dumps(settings.targets)}
    with store.transaction() as conn:
        for key, value in values.items():
            conn.execute(meta.delete().where(meta.c.key == key))
            conn.execute(meta.insert().values(key=key, value=value))
        version = store.bump_version(conn, ())  # no table changed: the frames are re-prepared
        audit(conn, actor, "settings.service_changed", {
            "calendar_from": json.loads(before.calendar.to_json()), "calendar_to": json.loads(settings.calendar.to_json()),
            "sla_targets_from": before.targets, "sla_targets_to": settings.targets, "data_version": version})
        return version


def parse_churn_basis(text: str) -> ChurnBasis:
    """The basis named by ``text`` (case and surrounding spaces ignored); SettingsError lists the choices."""
    try:
        return ChurnBasis(text.strip().lower())
    except ValueError:
        choices = " or ".join(b.value for b in ChurnBasis)
        raise SettingsError(f"churn_basis is {choices}, not {text!r}") from None


def load_churn_basis(store: Store) -> ChurnBasis:
    """The store's churn basis; ``activity`` when none is saved (or the saved value is not a basis)."""
    if not store.has_schema():
        return ChurnBasis.ACTIVITY
    with store.connect() as conn:
        saved = conn.execute(
            sa.select(schema.crm_meta.c.value).where(schema.crm_meta.c.key == CHURN_BASIS)
        ).scalar()
    try:
        return ChurnBasis(saved) if saved else ChurnBasis.ACTIVITY
    except ValueError:
        return ChurnBasis.ACTIVITY


def save_churn_basis(store: Store, basis: ChurnBasis, actor: str | None = None, role: str | None = None) -> int:
    """Save the churn basis in one transaction; returns the new data version (the numbers change). Audited
    as ``settings.churn_basis_changed`` (from, to) in the same transaction; with ``role``, NotPermitted
    (nothing written) unless that role may change the churn basis (crm.roles)."""
    if role is not None:
        require(role, "churn_basis")
    before = load_churn_basis(store)
    store.ensure_schema()
    meta = schema.crm_meta
    with store.transaction() as conn:
        conn.execute(meta.delete().where(meta.c.key == CHURN_BASIS))
        conn.execute(meta.insert().values(key=CHURN_BASIS, value=ChurnBasis(basis).value))
        version = store.bump_version(conn, ())  # no table changed: the frames are re-prepared
        audit(conn, actor, "settings.churn_basis_changed",
              {"from": before.value, "to": ChurnBasis(basis).value, "data_version": version})
        return version


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
