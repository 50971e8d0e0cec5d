"""Customer 360 glue: which customer the page shows (the URL's ``customer=``), the search box and its matches,
the header tiles, the tables, and the links to the page from other pages' grids.

The customer in the URL is the page's own parameter (crm.views): a link opens a customer directly, and a pick
from the search writes it once (one browser history entry), so Back returns to the customer before.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from crm.customer_view import (
    CustomerHeader,
    CustomerView,
    customer_view,
    find_customers,
    open_items_tables,
    timeline_table,
    view_filters,
)
from crm.filters import Filters
from crm.format import EMPTY, format_money, plain
from crm.grid import link_renderer
from crm.masking import mask_contacts, sees_contacts
from crm.ui import loaders
from crm.ui.frame import PageContext, view_key
from crm.ui.layout import tile_grid
from crm.ui.url import current_query, link_params, url_leads, write_url

CUSTOMER_PAGE = "pages/customer.py"
PARAM = "customer"
"""The page's URL parameter: the customer's id."""
DETAILS_WIDTH_PX = 520
"""The timeline's details column: an 80-character summary in view."""
_ID = "cus_id"
_QUERY = "cus_query"


# --- links to the page --------------------------------------------------------------------------------------


def customer_link_params(customer_id: str) -> dict[str, list[str]]:
    """The query string of a link to ``customer_id``'s 360 page: the current filters and the customer."""
    return {**link_params(CUSTOMER_PAGE), PARAM: [customer_id]}


def grid_links(name_column: str, id_column: str = "customer_id") -> dict[str, str]:
    """``explorer_grid``'s ``links``: the ``name_column`` cells link to their row's customer on the 360 page
    (a new tab, with the current filters)."""
    query = urlencode(link_params(CUSTOMER_PAGE), doseq=True)
    return {name_column: link_renderer(CUSTOMER_PAGE, PARAM, id_column, query, "Open in Customer 360 (a new tab)")}


def ticked_links(ticked: pl.DataFrame, name_column: str, id_column: str = "customer_id", limit: int = 5) -> None:
    """Links to the 360 page (this tab) of the first ``limit`` customers ticked in a grid (the keyboard's way)."""
    people = ticked.select(id_column, name_column).unique(id_column, keep="first", maintain_order=True)
    if people.is_empty():
        return
    row = st.container(horizontal=True)
    for customer_id, name in people.head(limit).iter_rows():
        with row:
            st.page_link(CUSTOMER_PAGE, label=f"Open {plain(name or customer_id)} in Customer 360",
                         icon=":material/person_search:", query_params=customer_link_params(str(customer_id)))
    if people.height > limit:
        st.caption(f"Links to the first {limit} of the {people.height:,} ticked customers.")


# --- which customer ---------------------------------------------------------------------------------------------


def chosen_customer() -> str | None:
    """The customer the page shows: from the URL when it leads this run (a link, Back/Forward, a new session),
    else the one picked in this session; None when there is none."""
    if url_leads() or _ID not in st.session_state:
        st.session_state[_ID] = (st.query_params.get(PARAM) or "").strip() or None
    chosen = st.session_state[_ID]
    return str(chosen) if chosen else None


def _open(customer_id: str) -> None:
    """Show ``customer_id``: remember it, clear the search box, write it to the URL (one history entry)."""
    st.session_state[_ID] = customer_id
    st.session_state[_QUERY] = ""
    write_url({**current_query(), PARAM: [customer_id]})


def _on_table_pick(key: str, ids: list[str]) -> None:
    rows = st.session_state[key].selection.rows
    if rows:
        _open(ids[rows[0]])


def _on_box_pick(key: str) -> None:
    if st.session_state.get(key):
        _open(st.session_state[key])


def search_box(ctx: PageContext) -> bool:
    """The search box; its matches as a small table (click a row) and a picker (type, arrows, Enter). True
    while a search is typed in."""
    contacts = sees_contacts(ctx.user.role)
    what = "name, email, phone or customer ID" if contacts else "name or customer ID"
    query = st.text_input("Find a customer", key=_QUERY, placeholder=f"Type a {what}",
                          help=f"Matches any part of the {what}, ignoring case" + (
                              "; a phone number matches on its digits." if contacts else
                              ". Your role does not see contacts, so email and phone are not searched."))
    if not query.strip():
        return False
    matches = find_customers(ctx.frames, ctx.filters, query, contacts=contacts)
    if matches.total == 0:
        st.info(f"No customer you may see matches “{plain(query.strip())}”. Check the spelling, or search by "
                f"another part of the {what}.", icon=":material/person_off:")
        return True
    rows = mask_contacts(matches.rows, ctx.user.role)
    shown = "" if matches.total <= rows.height else f"; the first {rows.height} are listed: type more to narrow"
    st.caption(f"{matches.total:,} {'customer matches' if matches.total == 1 else 'customers match'}{shown}. "
               "Click a row, or choose below with the keyboard.")
    ids = [str(i) for i in rows["customer_id"].to_list()]
    key = view_key("cus_matches", query.strip().lower())
    st.dataframe(rows.with_columns(pl.col(c).fill_null("") for c in rows.columns), key=key, hide_index=True,
                 on_select=partial(_on_table_pick, key, ids), selection_mode="single-row",
                 column_order=("name", "email", "phone", "region", "segment", "owner", "customer_id"),
                 height=min(36 * (rows.height + 1) + 2, 400),
                 column_config={"customer_id": st.column_config.TextColumn("Customer ID"),
                                "name": st.column_config.TextColumn("Name"),
                                "email": st.column_config.TextColumn("Email"),
                                "phone": st.column_config.TextColumn("Phone"),
                                "region": st.column_config.TextColumn("Region"),
                                "segment": st.column_config.TextColumn("Segment"),
                                "owner": st.column_config.TextColumn("Owner")})
    names = dict(zip(ids, rows["name"].to_list(), strict=True))
    box = view_key("cus_pick", query.strip().lower())
    st.selectbox("Open a match", ids, index=None, key=box, on_change=partial(_on_box_pick, box),
                 format_func=lambda i: f"{names.get(i) or i} · {i}", placeholder="Choose a customer to open")
    return True


# --- the customer ---------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=256)
def _view(url: str, version: int, filters: Filters, customer_id: str, scored: bool) -> CustomerView | None:
    """``scored``: the store's churn model is fitted (part of the key: the header gains its risk once it is)."""
    frames = loaders.get_frames(url, version)
    models = loaders.churn_models(url, version, frames, start=False) if scored else None
    return customer_view(frames, filters, customer_id, churn_model=models.model if models else None)


def load_customer(ctx: PageContext, customer_id: str) -> CustomerView | None:
    """The customer as of the period end within the person's scope (crm.customer_view), cached per data version,
    period and scope (the sidebar's dimension filters do not change it); None when not in the view."""
    kept = Filters.create(ctx.filters.period, scope=view_filters(ctx.filters).scope)  # period and scope only
    models = loaders.churn_models(ctx.url, ctx.version, ctx.frames)  # starts the fit if no one has (background)
    return _view(ctx.url, ctx.version, kept, customer_id, models is not None and models.ready)


def _tile(label: str, value: str, note: str = "", help: str | None = None) -> None:
    with st.container(border=True):
        st.metric(label, value, help=help)
        if note:
            st.caption(note)


def header_tiles(header: CustomerHeader, contacts_masked: bool) -> None:
    """Who the customer is and where they stand, as tiles; every value from the store as text."""
    place = " · ".join(str(v) for v in (header.region, header.country) if v) or EMPTY
    contacts = " · ".join(str(v) for v in (header.email, header.phone) if v) or "no email or phone on record"
    # st.text, not Markdown: the store's values as they are (an email is not turned into a link)
    st.text(f"{header.customer_id} · {header.industry or 'industry not recorded'} · {place} · {contacts}"
            + (" (contacts masked for your role)" if contacts_masked else ""))
    as_of = f"{header.as_of:%d %b %Y}"
    grid = tile_grid("customer")
    with grid:
        _tile("Segment", plain(header.segment or EMPTY), f"Owner: {plain(header.owner or 'nobody')}")
        if header.r is None:
            _tile("RFM", "Not scored", "No order in the 365 days to " + as_of,
                  help="RFM scores customers with an order in the 365 days up to the period end.")
        else:
            _tile("RFM", plain(header.rfm_segment or EMPTY),
                  f"R {header.r} · F {header.f} · M {header.m} · tier {plain(header.tier or EMPTY)}",
                  help="Recency, frequency and monetary value, each scored 1–5 against every customer you may see "
                       f"(5 is best), as of {as_of}; the named segment and tier follow from the three scores.")
        last = f"last order {header.last_order_date:%d %b %Y}" if header.last_order_date else "no order yet"
        _tile("Lifetime revenue", plain(format_money(header.lifetime_revenue)), f"{last} · "
              f"{'active' if header.active else 'not active'}",
              help=f"Every order up to {as_of}. Active: an order in the 90 days up to then (or, on a subscription "
                   "store, signed up and not cancelled).")
        if header.churn_risk is None:
            _tile("Churn risk", EMPTY, "Not scored: no churn model is kept for this data yet"
                  if header.active else "Only active customers are scored")
        else:
            _tile("Churn risk", f"{header.churn_risk:.0%}", plain(header.churn_rule or ""),
                  help="The churn model's risk that this customer orders nothing in the next 90 days, and the rule "
                       "that put them there.")
        _tile("Open deals", f"{header.open_deals:,}", plain(format_money(header.open_deal_amount)) + " open")
        _tile("Tickets, 90 days", f"{header.tickets_90d:,}",
              f"{header.sla_breaches_90d:,} past their first-response target")
        nps = EMPTY if header.last_nps is None else f"{header.last_nps:.0f}"
        csat = EMPTY if header.last_csat is None else f"{header.last_csat:.0f} of 5"
        _tile("Last NPS", nps, f"last CSAT {csat}")


def next_products(offers: pl.DataFrame) -> None:
    """The top products to offer next, with the rule behind each, as text."""
    if offers.is_empty():
        st.caption("No product to suggest: no rule from this period's baskets points from what this customer "
                   "bought to something they have not.")
        return
    for row in offers.iter_rows(named=True):
        st.markdown(f"- **{plain(row['product'])}**: bought by {row['confidence']:.0%} of the baskets holding "
                    f"{plain(row['antecedent'])}, which this customer bought ({row['lift']:.1f}× as likely as "
                    "on its own)")


def timeline(events: pl.DataFrame, as_of: str) -> None:
    """The timeline, newest first, with a choice of what to show."""
    table = timeline_table(events)
    if table.is_empty():
        st.info(f"Nothing is recorded with this customer up to {as_of}.", icon=":material/event_busy:")
        return
    kinds = list(dict.fromkeys(table.sort("what")["what"].to_list()))
    chosen = st.pills("Show", kinds, selection_mode="multi", default=kinds, key="cus_kinds")
    shown = table.filter(pl.col("what").is_in(chosen or kinds))
    st.caption(f"{shown.height:,} of {table.height:,} events, newest first. Times are calendar hours: a first "
               "response against its priority's target, a resolution from the ticket's opening.")
    # the details get the room of a typical summary (80 characters); a narrower window scrolls the table sideways
    st.dataframe(shown, key="cus_timeline", hide_index=True, height=min(35 * shown.height + 38, 560),
                 column_order=("at", "summary", "amount", "time", "what"),  # the details first: in view at 1024 px
                 column_config={
                     "at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm", width=120),
                     "what": st.column_config.TextColumn("What", width=110),
                     "summary": st.column_config.TextColumn("Details", width=DETAILS_WIDTH_PX),
                     "amount": st.column_config.TextColumn("Amount", width=90),
                     "time": st.column_config.TextColumn("Time (target)", width=110),
                 })


def open_items(view: CustomerView) -> None:
    """Open deals, open tickets and overdue follow-ups, each with its own empty state."""
    deals, tickets, follow_ups = open_items_tables(view.open_items)
    as_of = f"{view.header.as_of:%d %b %Y}"
    if view.open_items.is_empty():
        st.info(f"Nothing is open on {as_of}: no open deal, open ticket or overdue follow-up.",
                icon=":material/task_alt:")
        return
    deals_tab, tickets_tab, follow_ups_tab = st.tabs([f"Open deals · {deals.height:,}", f"Open tickets · {tickets.height:,}",
                                                      f"Overdue follow-ups · {follow_ups.height:,}"])
    with deals_tab:
        if deals.is_empty():
            st.caption(f"No deal open on {as_of}.")
        else:
            st.dataframe(deals, key="cus_open_deals", hide_index=True, column_config={
                "opportunity_id": st.column_config.TextColumn("Deal"), "product": st.column_config.TextColumn("Product"),
                "stage": st.column_config.TextColumn("Stage"), "amount": st.column_config.TextColumn("Amount"),
                "owner": st.column_config.TextColumn("Owner"), "created": st.column_config.TextColumn("Created"),
                "expected_close": st.column_config.TextColumn("Expected close"),
                "days_open": st.column_config.NumberColumn("Days open", format="%d")})
    with tickets_tab:
        if tickets.is_empty():
            st.caption(f"No ticket open on {as_of}.")
        else:
            st.dataframe(tickets, key="cus_open_tickets", hide_index=True, column_config={
                "ticket_id": st.column_config.TextColumn("Ticket"), "opened": st.column_config.TextColumn("Opened"),
                "priority": st.column_config.TextColumn("Priority"), "category": st.column_config.TextColumn("Category"),
                "product": st.column_config.TextColumn("Product"), "agent": st.column_config.TextColumn("Agent"),
                "waited": st.column_config.TextColumn("Open for"), "target": st.column_config.TextColumn("Target"),
                "sla": st.column_config.TextColumn("First response")})
    with follow_ups_tab:
        if follow_ups.is_empty():
            st.caption(f"No follow-up overdue on {as_of}.")
        else:
            st.dataframe(follow_ups, key="cus_follow_ups", hide_index=True, column_config={
                "interaction_id": st.column_config.TextColumn("Interaction"), "kind": st.column_config.TextColumn("Kind"),
                "due": st.column_config.TextColumn("Due"),
                "days_overdue": st.column_config.NumberColumn("Days overdue", format="%d"),
                "owner": st.column_config.TextColumn("Owner"), "deal": st.column_config.TextColumn("Deal"),
                "made": st.column_config.TextColumn("Made")})
