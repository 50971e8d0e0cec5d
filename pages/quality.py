"""Data quality (admins, analysts): a score per table, findings per rule with the rows behind them and an
export, references to missing rows, completeness, freshness, and duplicate customers with merge and undo."""

import streamlit as st

from crm.format import plain
from crm.quality import QUALITY_THRESHOLD
from crm.ui import quality
from crm.ui.frame import page_frame
from crm.ui.loaders import QualityCheckFailed

ctx = page_frame("Data quality")
st.title("Data quality")
st.caption(f"Every stored row checked against the rules an import applies. Tables scoring under {QUALITY_THRESHOLD:g} "
           "are flagged on the cockpit. The whole store is checked: the sidebar filters do not apply here.")

if ctx.frames.is_empty():
    st.info("The store holds no data yet. Load demo data with `python -m crm init-demo`, or import your files on the "
            "Data page; their quality is reported here.", icon=":material/inbox:")
    st.stop()

try:
    report = quality.get_report(ctx.url, ctx.version)
except QualityCheckFailed as exc:
    st.error(f"The tables could not be checked ({plain(exc)}); the server log has the details. The other pages are "
             "not affected.", icon=":material/error:")
    st.stop()

quality.scores_section(report)
quality.findings_section(report)
quality.drill_section(ctx.url, ctx.version, report, ctx.filters)
quality.references_section(report)
quality.completeness_section(report)
quality.freshness_section(report)
quality.duplicates_section(ctx.url, ctx.version, ctx.store)
