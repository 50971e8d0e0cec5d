"""Data (admins): import a CSV/XLSX export with a column and value mapping (preview, validate, import),
run a mapping file as it is, the import history with undo, and the churn basis setting."""

import streamlit as st

from crm.mapping_form import build_mapping
from crm.ui import data
from crm.ui.churn_settings import churn_basis_form
from crm.ui.frame import page_frame

ctx = page_frame("Data")
st.title("Data")
st.caption("Import CSV or XLSX exports into the store: map their columns and values onto a table, preview, "
           "validate, import. Nothing is written until every row is valid (or the bad ones are set aside), "
           "and every import can be undone.")

folder = data.upload_folder()
files = data.upload_files(folder)
if not files:
    st.info("Upload a CSV or XLSX export to start: its encoding, delimiter and columns are detected, and a "
            "mapping onto the best-matching table is proposed for you to check.", icon=":material/upload_file:")
else:
    path = data.choose_file(files)
    options = data.read_options(path)
    suggestion = data.read_and_suggest(path, options)
    if suggestion is not None:
        form = data.mapping_form(path, suggestion)
        mapping = build_mapping(path, form.choices)
        data.mapping_download(mapping, path)
        data.act(ctx.url, ctx.version, ctx.store, mapping, data.remember_action(form),
                 data.quarantine_folder(folder, form.quarantine))
data.show_outcome()

with st.expander("Run a mapping file (TOML)", icon=":material/description:"):
    data.mapping_file_panel(ctx.url, ctx.version, ctx.store, folder)
data.history_panel(ctx.store)

with st.expander(f"Churn basis: {ctx.frames.churn_basis.value}", icon=":material/group_remove:"):
    churn_basis_form(ctx.store, ctx.frames.churn_basis)
