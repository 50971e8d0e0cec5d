"""The form that edits the business calendar and the SLA targets (saved in the store)."""

from __future__ import annotations

from zoneinfo import available_timezones

import streamlit as st

from crm.business_hours import BusinessCalendar, CalendarError
from crm.format import plain
from crm.roles import NotPermitted
from crm.settings import PRIORITIES, ServiceSettings, SettingsError, parse_holidays, save_settings
from crm.store import Store, StoreError
from crm.ui import loaders
from crm.ui.access import actor_name, actor_role, allowed, only_for

WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


def settings_form(store: Store, current: ServiceSettings) -> None:
    """Edit and save the settings; a saved change bumps the data version, so every page recomputes. A role
    that may not change them (crm.roles ``settings``) reads them and is told who may."""
    calendar = current.calendar
    if not allowed("settings"):
        show_settings(current)
        only_for("settings", "change the business calendar and SLA targets")
        return
    with st.form("svc_settings", border=False):
        a, b, c = st.columns([3, 2, 2])
        workdays = a.multiselect("Working days", list(WEEKDAYS), default=list(calendar.workdays),
                                 format_func=WEEKDAYS.__getitem__)
        start = b.time_input("Day starts", calendar.start, step=900)
        end = c.time_input("Day ends", calendar.end, step=900)
        zones = sorted(available_timezones() | {"UTC"})
        timezone = a.selectbox("Time zone", zones, index=zones.index(calendar.timezone) if calendar.timezone in zones else 0,
                               help="Timestamps in the store are UTC; working hours are counted in this zone.")
        holidays = b.text_area("Holidays (one YYYY-MM-DD per line)", "\n".join(d.isoformat() for d in calendar.holidays),
                               height=110)
        targets = {}
        with c:
            st.markdown("First-response targets (hours)")
            for priority in PRIORITIES:
                targets[priority] = st.number_input(priority.capitalize(), min_value=0.25, max_value=24.0 * 365,
                                                    value=float(current.targets[priority]), step=0.5, key=f"svc_t_{priority}")
        saved = st.form_submit_button("Save calendar and targets", type="primary", icon=":material/save:")
    if not saved:
        return
    try:
        settings = ServiceSettings(
            calendar=BusinessCalendar(workdays=tuple(sorted(workdays)), start=start, end=end, timezone=timezone,
                                      holidays=parse_holidays(holidays)),
            sla_targets=tuple((p, float(targets[p])) for p in PRIORITIES),
        )
        version = save_settings(store, settings, actor=actor_name(), role=actor_role())
        loaders.changed_here()
    except (CalendarError, SettingsError, StoreError, NotPermitted) as exc:
        st.error(f"Not saved: {plain(exc)}", icon=":material/error:")
        return
    st.toast(f"Saved; every page now uses the new calendar and targets (data version {version}).", icon=":material/check:")
    st.rerun()


def show_settings(current: ServiceSettings) -> None:
    """The calendar and targets in words, for people who may not change them."""
    calendar = current.calendar
    days = ", ".join(WEEKDAYS[d] for d in calendar.workdays) or "no working day"
    holidays = ", ".join(d.isoformat() for d in calendar.holidays) or "none"
    targets = ", ".join(f"{p} {current.targets[p]:g} h" for p in PRIORITIES)
    st.markdown(f"**Working days** {days}, {calendar.start:%H:%M}–{calendar.end:%H:%M} ({plain(calendar.timezone)}); "
                f"**holidays** {holidays}.  \n**First-response targets** {targets}.")
