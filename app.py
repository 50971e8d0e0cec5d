"""CRM Cockpit entry point: the frame around every page (st.navigation over pages/)."""

import streamlit as st

from crm.ui.pages import FAVICON, PAGES
from crm.ui.rerun_log import timed_rerun

st.set_page_config(page_title="CRM Cockpit", page_icon=FAVICON, layout="wide")

navigation = st.navigation(
    [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES], position="hidden"
)
with timed_rerun(navigation.url_path, st.query_params.to_dict()):  # a no-op unless CRM_RERUN_LOG is set
    navigation.run()
