"""Customer 360: find a customer; who they are, everything that happened with them, what is open, what to offer."""

import streamlit as st

from crm.format import plain
from crm.masking import sees_contacts
from crm.ui import customer as cus
from crm.ui.frame import page_frame

ctx = page_frame("Customer 360")
st.title("Customer 360")
as_of = f"{ctx.filters.period.end:%d %b %Y}"
st.caption(f"As of {as_of}, the end of the period in the sidebar, with the rows you may see "
           f"({plain(ctx.filters.scope.in_words() if ctx.filters.scope else 'every row')}). The sidebar's region, "
           "segment, product, team and owner filters do not hide parts of one customer's history.")
searching = cus.search_box(ctx)
customer_id = cus.chosen_customer()
if customer_id is None:
    if searching:
        st.stop()
    st.info("Find a customer with the search box above, or open one from the customer grid on the Segments page or "
            "the deals grid on the Funnel page (the customer's name is a link).", icon=":material/person_search:")
    st.stop()
with st.spinner("Reading the customer's history…"):
    view = cus.load_customer(ctx, customer_id)
if view is None:
    st.warning(f"No customer {plain(customer_id)} among the rows you may see on {as_of}: the ID may be mistyped, "
               "or the customer is outside your view. Search for them above.", icon=":material/person_off:")
    st.stop()

st.header(plain(view.header.name or customer_id), anchor=False)
cus.header_tiles(view.header.masked(ctx.user.role), contacts_masked=not sees_contacts(ctx.user.role))

st.subheader("Open items", anchor=False)
cus.open_items(view)

st.subheader("Next products to offer", anchor=False)
cus.next_products(view.next_products)

st.subheader("Timeline", anchor=False)
cus.timeline(view.timeline, as_of)
