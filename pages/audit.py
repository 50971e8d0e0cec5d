"""Audit log (admins): who did what and when, newest first, filtered by day, person and action; exportable."""

from datetime import date, timedelta

import streamlit as st

from crm import audit_log
from crm.filters import Filters, Period
from crm.ui.access import allowed, only_for
from crm.ui.frame import page_frame
from crm.ui.grid import export_buttons

ctx = page_frame("Audit log")
st.title("Audit log")
if not allowed("audit"):
    only_for("audit", "read the audit log")
    st.stop()
st.caption("Sign-ins, exports, imports and their undo, merges, settings, saved segments and user changes, as the app "
           "and the command line wrote them. The log is only ever added to. The sidebar filters do not apply here.")

a, b, c = st.columns([1, 2, 3])
today = date.today()
since = a.date_input("Since", today - timedelta(days=30), key="audit_since",
                     format="YYYY-MM-DD", help="Entries from this day on; clear it for every entry.")
every = audit_log.read_entries(ctx.store, since)
actors = b.multiselect("Who", sorted(every["actor"].drop_nulls().unique().to_list()), key="audit_actors",
                       placeholder="Everyone")
actions = c.multiselect("What", sorted(every["action"].unique().to_list()), key="audit_actions",
                        format_func=audit_log.action_words, placeholder="Every action")
entries = audit_log.filter_entries(every, actors, actions)
table = audit_log.audit_table(entries)

if table.is_empty():
    st.info("No entry matches: move the day back or clear a choice.", icon=":material/manage_search:")
    st.stop()
st.dataframe(table, hide_index=True, key="audit_table", column_config={
    "When": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
    "Who": st.column_config.TextColumn("Who"),
    "What": st.column_config.TextColumn("What"),
    "Details": st.column_config.TextColumn("Details", width="large"),
})
first = since or entries["at"].min().date()  # type: ignore[union-attr]
export_buttons(table, base="audit_log", title="Audit log", filters=Filters.create(Period(first, max(first, today))),
               data_version=ctx.version, key="audit_export",
               selection_rule=audit_log.describe_choice(since, actors, actions))
