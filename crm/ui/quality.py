"""Streamlit glue of the Data quality page: cached reports per data version and the page's sections
(scores, findings with a drill and export, completeness, freshness, duplicate customers with merge and undo).

Everything shown is computed in ``crm.quality`` and ``crm.duplicates``; values from the store are shown as text
(``st.dataframe`` cells, or ``crm.format.plain`` inside Markdown)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from crm import quality
from crm.dataset import Frames
from crm.duplicates import DEFAULT_THRESHOLD, MergeError, duplicate_candidates, merge_customers, merge_history, undo_merge
from crm.filters import Filters
from crm.format import column_label, plain
from crm.roles import NotPermitted
from crm.store import Store, StoreError
from crm.ui import loaders
from crm.ui.access import actor_name, actor_role, allowed, only_for
from crm.ui.columns import percent_column
from crm.ui.grid import data_grid, export_buttons
from crm.ui.layout import tile_grid
from crm.ui.pages import PAGES
from crm.ui.url import link_params

PAGE = "pages/quality.py"

KIND_LABELS: dict[str, str] = {
    "completeness": "Required value missing",
    "invalid": "Invalid value",
    "reference": "Reference to a missing row",
    "duplicate key": "Duplicate key",
    "contact": "Invalid email or phone",
}


def label(name: str) -> str:
    """A table or column name as words: ``survey_responses`` -> ``Survey responses``."""
    return name.replace("_", " ").capitalize()


def get_report(url: str, version: int) -> quality.Report:
    """Findings, completeness, scores and newest stamps of the store at ``version`` (worked out once for every
    session, in the background); while they are, a line says which table is being checked."""
    note = st.empty()

    def show(step: str) -> None:
        note.info(f"Checking every table of the store against the import rules, a piece at a time (once per data "
                  f"version; about a minute per 10M rows). {step}", icon=":material/fact_check:")

    try:
        return loaders.quality_report(url, version, show)
    finally:
        note.empty()


@st.cache_data(show_spinner=False, max_entries=16)
def get_finding_rows(url: str, version: int, table: str, column: str, rule: str) -> pl.DataFrame:
    """The rows behind one finding (the table read in pieces)."""
    return quality.store_finding_rows(loaders.get_store(url), table, column, rule)


@st.cache_data(show_spinner=False, max_entries=4)
def get_candidates(url: str, version: int, threshold: float) -> pl.DataFrame:
    """Duplicate customer candidates (crm.duplicates) at ``threshold``."""
    return duplicate_candidates(quality.read_table(loaders.get_store(url), "customers"), threshold)


# --- sections ----------------------------------------------------------------------------------------


def scores_section(report: quality.Report) -> None:
    """Headline tiles and the score of every table."""
    scores = report.scores.filter(pl.col("rows") > 0)
    below = int(scores["below"].sum())
    found = report.findings
    tiles = tile_grid("quality")
    tiles.metric(f"Tables below {quality.QUALITY_THRESHOLD:g}", f"{below:,} of {scores.height:,}",
             help=f"Tables scoring under {quality.QUALITY_THRESHOLD:g} of 100.")
    tiles.metric("Rows with errors", f"{int((scores['rows'] - scores['clean']).sum()):,}",
             help="Rows with at least one error-level finding (what an import would reject).")
    tiles.metric("Rows left out",
             f"{int(found.filter(pl.col('excluded'))['count'].sum()):,}",
             help="Rows the metrics leave out of every number (a row breaking two such rules counts twice).")
    tiles.metric("Invalid contacts", f"{int(found.filter(pl.col('kind') == 'contact')['count'].sum()):,}",
             help="Addresses and phone numbers that are not valid: kept as given and reported; not scored.")
    shown = scores.select(
        pl.col("table").map_elements(label, return_dtype=pl.String).alias("Table"),
        pl.col("rows").alias("Rows"), pl.col("clean").alias("Rows without an error"), pl.col("score").alias("Score"),
        pl.when(pl.col("below")).then(pl.lit("below")).otherwise(pl.lit("ok")).alias("Status"))
    st.container(key="dq_scores").dataframe(shown, hide_index=True, column_config={
        "Rows": st.column_config.NumberColumn(format="localized"),
        "Rows without an error": st.column_config.NumberColumn(format="localized"),
        "Score": st.column_config.ProgressColumn("Score", min_value=0, max_value=100, format="%.1f"),
        "Status": st.column_config.TextColumn("Status", help=f"below: under {quality.QUALITY_THRESHOLD:g}"),
    })
    st.caption(f"**Quality score** (0–100): {quality.SCORE_FORMULA}. Threshold {quality.QUALITY_THRESHOLD:g}.")


def findings_table(found: pl.DataFrame) -> pl.DataFrame:
    """The findings with readable column names and words for tables, columns and kinds."""
    return found.select(
        pl.col("table").map_elements(label, return_dtype=pl.String).alias("Table"),
        pl.col("column").map_elements(column_label, return_dtype=pl.String).alias("Column"),
        pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias("Kind"),
        pl.col("rule").alias("Rule"),
        pl.col("count").alias("Rows"),
        (pl.col("count") / pl.col("rows")).alias("Share of the table"),
        pl.col("excluded").alias("Left out of the numbers"),
    )


def findings_section(report: quality.Report) -> None:
    """Every finding with its count."""
    st.subheader("Findings by rule")
    found = report.findings
    if found.is_empty():
        st.success("No findings: every row follows every rule.", icon=":material/check_circle:")
        return
    st.container(key="dq_findings").dataframe(findings_table(found), hide_index=True, column_config={
        "Rows": st.column_config.NumberColumn(format="localized"),
        "Share of the table": percent_column(),
        "Left out of the numbers": st.column_config.CheckboxColumn(
            help="Rows breaking this rule are skipped by every metric (see the README, data quality)."),
    })


def _finding_text(found: pl.DataFrame, i: int) -> str:
    row = found.row(i, named=True)
    return f"{label(row['table'])} · {row['column']}: {row['rule']} ({row['count']:,} rows)"


def drill_section(url: str, version: int, report: quality.Report, filters: Filters) -> None:
    """Choose a finding; its rows in a grid, with CSV/XLSX export."""
    st.subheader("Rows behind a finding")
    found = report.findings
    if found.is_empty():
        st.caption("Nothing to drill into: there are no findings.")
        return
    i = st.selectbox("Finding", range(found.height), format_func=lambda i: _finding_text(found, i), key="dq_finding",
                     help="The rows that break the rule, the columns that matter first.")
    row = found.row(i, named=True)
    with st.spinner("Finding the rows…"):
        rows = get_finding_rows(url, version, row["table"], row["column"], row["rule"])
    st.caption(f"{rows.height:,} rows of {plain(label(row['table']))} where {plain(row['column'])}: {plain(row['rule'])}.")
    data_grid(rows, key="dq_drill", selectable=False, height=320)
    export_buttons(rows, base=f"quality_{row['table']}_{row['column']}", title=f"Data quality: {_finding_text(found, i)}",
                   filters=filters, data_version=version, key="dq_export",
                   selection_rule=f"rows of {row['table']} where {row['column']}: {row['rule']} (whole store)")


def references_section(report: quality.Report) -> None:
    """References to rows that do not exist, per table and column."""
    st.subheader("References to missing rows")
    refs = report.findings.filter(pl.col("kind") == "reference")
    if refs.is_empty():
        st.success("Every id names a row that exists.", icon=":material/link:")
        return
    st.container(key="dq_references").dataframe(refs.select(
        pl.col("table").map_elements(label, return_dtype=pl.String).alias("Table"),
        pl.col("column").map_elements(column_label, return_dtype=pl.String).alias("Column"),
        pl.col("rule").alias("Problem"), pl.col("count").alias("Rows")), hide_index=True)
    st.caption("Pick one under *Rows behind a finding* to see and export its rows. Import the missing rows, or "
               "correct the ids and import again (mode upsert).")


def completeness_section(report: quality.Report) -> None:
    """Share filled per table and column."""
    st.subheader("Completeness")
    table = report.completeness.filter(pl.col("rows") > 0)
    if table.is_empty():
        st.caption("No rows to measure.")
        return
    st.container(key="dq_completeness").dataframe(table.select(
        pl.col("table").map_elements(label, return_dtype=pl.String).alias("Table"),
        pl.col("column").map_elements(column_label, return_dtype=pl.String).alias("Column"),
        pl.col("required").alias("Required"), pl.col("filled").alias("Filled"), pl.col("rows").alias("Rows"),
        pl.col("share").alias("Share filled")), hide_index=True, height=360, column_config={
        "Filled": st.column_config.NumberColumn(format="localized"),
        "Rows": st.column_config.NumberColumn(format="localized"),
        "Share filled": st.column_config.ProgressColumn("Share filled", min_value=0, max_value=1, format="percent"),
    })
    st.caption("Share filled = rows with a value / rows; an empty or blank text counts as empty. Required columns "
               "must be filled (a missing one is a finding above); the others may be empty.")


def freshness_section(report: quality.Report) -> None:
    """The newest record per table and how long ago it was."""
    st.subheader("Freshness")
    fresh = quality.freshness(report.latest)
    st.container(key="dq_freshness").dataframe(fresh.select(
        pl.col("table").map_elements(label, return_dtype=pl.String).alias("Table"),
        pl.col("column").map_elements(column_label, return_dtype=pl.String).alias("Timestamp"),
        pl.col("rows").alias("Rows"), pl.col("latest").alias("Latest record"),
        pl.col("days_ago").map_elements(quality.age_text, return_dtype=pl.String, skip_nulls=False).alias("How long ago"),
    ), hide_index=True, column_config={
        "Rows": st.column_config.NumberColumn(format="localized"),
        "Latest record": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    st.caption("The newest stamp of each table's main timestamp within 1900–2100 (placeholders such as 9999-12-31 "
               "are no sign of activity). Order items and pipeline stages carry no timestamp.")


# --- duplicates ----------------------------------------------------------------------------------------


def _pair_text(pairs: pl.DataFrame, i: int) -> str:
    p = pairs.row(i, named=True)
    return f"{p['customer_id']} {p['name'] or ''} ↔ {p['other_id']} {p['other_name'] or ''} · {p['score']:.0f} · {p['reason']}"


def duplicates_section(url: str, version: int, store: Store) -> None:
    """Candidate pairs, a merge of the chosen pair, the merge history with undo."""
    st.subheader("Duplicate customers")
    done = st.session_state.pop("dq_done", None)
    if done:
        st.success(plain(done), icon=":material/merge:")
    threshold = st.slider("Name similarity from", 70, 100, int(DEFAULT_THRESHOLD), key="dq_threshold",
                          help="Customers of one city (or country) whose names are at least this similar (0–100) are "
                               "candidates; the same email or phone always is.")
    with st.spinner("Looking for duplicate customers…"):
        pairs = get_candidates(url, version, float(threshold))
    if pairs.is_empty():
        st.info("No duplicate candidates: no two customers share an email or phone, and no names in one place are "
                "this similar. Lower the similarity to look wider.", icon=":material/person_search:")
    else:
        st.container(key="dq_pairs").dataframe(pairs.select(
            pl.col("customer_id").alias("Customer"), pl.col("name").alias("Name"), pl.col("other_id").alias("Other"),
            pl.col("other_name").alias("Other name"), pl.col("score").alias("Score"), pl.col("reason").alias("Reason"),
        ), hide_index=True, height=min(36 * (pairs.height + 1) + 2, 320), column_config={
            "Score": st.column_config.NumberColumn(format="%.0f", help="100 same email, 95 same phone, else the "
                                                   "names' similarity.")})
        merge_form(store, pairs)
    history_section(store)


def merge_form(store: Store, pairs: pl.DataFrame) -> None:
    """Choose a pair and the id to keep; merge in one transaction (it can be undone below). For the roles
    that may merge (crm.roles ``merge``)."""
    if not allowed("merge"):
        only_for("merge", "merge customers")
        return
    with st.container(border=True):
        i = st.selectbox("Pair to merge", range(pairs.height), format_func=lambda i: _pair_text(pairs, i), key="dq_pair")
        pair = pairs.row(i, named=True)
        ids = [pair["customer_id"], pair["other_id"]]
        names = {pair["customer_id"]: pair["name"], pair["other_id"]: pair["other_name"]}
        keep = st.radio("Keep", ids, key=f"dq_keep_{i}", horizontal=True,
                        format_func=lambda c: plain(f"{c} {names[c] or ''}".strip()),  # radio labels are Markdown
                        help="The kept customer's row stays as it is; the other's deals, orders, tickets, responses and "
                             "interactions move to it and its row is deleted.")
        other = ids[1] if keep == ids[0] else ids[0]
        if st.button(f"Merge {plain(other)} into {plain(keep)}", key="dq_merge", type="primary", icon=":material/merge:"):
            try:
                with st.spinner("Merging…"):
                    result = merge_customers(store, keep, [other], actor=actor_name(), role=actor_role())
                    loaders.changed_here()
            except (MergeError, StoreError, NotPermitted) as exc:
                st.error(f"Nothing was merged: {plain(exc)}", icon=":material/error:")
                return
            moved = ", ".join(f"{n:,} {t}" for t, n in result.repointed.items()) or "no rows"
            st.session_state["dq_done"] = (f"Merged {other} into {keep} (merge {result.merge_id}): moved {moved}. "
                                           f"Data version {result.data_version}.")
            st.rerun()


def history_section(store: Store) -> None:
    """Every merge, newest first, with undo for those still in force."""
    history = merge_history(store)
    if history.is_empty():
        st.caption("No merges yet. Merges made here or with `python -m crm customers merge` are listed here and can be "
                   "undone.")
        return
    st.markdown("**Merge history**")
    st.container(key="dq_history").dataframe(history.select(
        pl.col("id").alias("Merge"), pl.col("at").alias("When"), pl.col("kept_id").alias("Kept"),
        pl.col("merged_ids").alias("Merged"), pl.col("repointed").alias("Rows moved"), pl.col("undone_at").alias("Undone"),
    ), hide_index=True, column_config={
        "When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "Undone": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    open_ids = history.filter(pl.col("undone_at").is_null())["id"].to_list()
    if not open_ids:
        return
    if not allowed("merge"):
        only_for("merge", "undo a merge")
        return
    merge_id = st.selectbox("Undo a merge", open_ids, key="dq_undo_pick",
                            help="The merged customers come back and their rows point at them again, in one "
                                 "transaction. Undo later merges of the same customers first.")
    if st.button(f"Undo merge {merge_id}", key="dq_undo", icon=":material/undo:"):
        try:
            with st.spinner("Undoing the merge…"):
                result = undo_merge(store, int(merge_id), actor=actor_name(), role=actor_role())
                loaders.changed_here()
        except (MergeError, StoreError, NotPermitted) as exc:
            st.error(f"Merge {merge_id} was not undone: {plain(exc)}", icon=":material/error:")
            return
        st.session_state["dq_done"] = (f"Merge {merge_id} undone: {', '.join(result.restored_ids)} back. "
                                       f"Data version {result.data_version}.")
        st.rerun()


# --- the cockpit's footer -----------------------------------------------------------------------------------


def quality_footer(url: str, version: int, frames: Frames) -> bool:
    """A link to the Data quality page when any table scores below the threshold (nothing otherwise). The
    scores are worked out in the background (loaders.quality_scores); until then a line says so, and this
    returns True (the cockpit redraws itself when they are ready)."""
    scores = loaders.quality_scores(url, version, frames)
    if scores is None:
        if loaders.quality_pending(url, version, frames):
            st.caption(f"Data quality: the tables are being checked in the background; a link appears here if "
                       f"any scores below {quality.QUALITY_THRESHOLD:g}.")
            return True
        st.caption("Data quality: the tables could not be checked (the server log says why). The Data quality "
                   "page checks them itself.")
        return False
    below = int(scores["below"].sum())
    if not below:
        return False
    title = next(p.title for p in PAGES if p.path == PAGE)
    st.page_link(PAGE, label=f"{title}: {below} table{'s' if below != 1 else ''} below "
                             f"{quality.QUALITY_THRESHOLD:g} — review", icon=":material/fact_check:",
                 query_params=link_params(PAGE),
                 help=f"Tables scoring under {quality.QUALITY_THRESHOLD:g}: "
                      + ", ".join(label(t) for t in scores.filter(pl.col("below"))["table"]))
    return False
