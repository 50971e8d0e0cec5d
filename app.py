"""CRM Cockpit entry point: the frame around every page (st.navigation over pages/)."""

import streamlit as st

from crm.ui.pages import FAVICON, PAGES

st.set_page_config(page_title="CRM Cockpit", page_icon=FAVICON, layout="wide")

navigation = st.navigation(
    [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES], position="hidden"
)
navigation.run()
