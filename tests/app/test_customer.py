"""AppTest: the Customer 360 page. A link with ?customer=ID opens that customer (tiles, open items, timeline
equal to what crm.customer_view computes); the search finds customers and a pick opens one and writes it to
the URL; an unknown id and a customer outside a rep's scope say so; contacts are masked for an analyst; the
Segments and Funnel pages link their ticked customers here."""

from __future__ import annotations

from datetime import date

import polars as pl
from streamlit.testing.v1 import AppTest

from crm import auth
from crm.customer_view import customer_view, timeline_table
from crm.dataset import load_frames
from crm.filters import Filters, Period
from crm.format import format_money
from crm.scope import Scope
from crm.ui.frame import view_key
from tests.app.conftest import open_page, shown

PAGE = "pages/customer.py"
Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PERIOD = Period(date(2026, 4, 1), date(2026, 6, 30))


def busiest(store, owner_not: str | None = auth.DEMO_OWNER) -> str:
    """The demo customer with the most orders (not one of the demo rep's)."""
    frames = load_frames(store)
    owners = frames.customers.select("customer_id", "owner")
    counts = frames.orders.group_by("customer_id").len().join(owners, on="customer_id")
    if owner_not:
        counts = counts.filter(pl.col("owner") != owner_not)
    return str(counts.sort(["len", "customer_id"], descending=[True, False])["customer_id"][0])


def expected(store, customer_id: str, scope: Scope | None = None):
    found = customer_view(load_frames(store), Filters.create(PERIOD, scope=scope or Scope()), customer_id)
    assert found is not None
    return found


def table_with(at: AppTest, column: str):
    """The one st.dataframe holding ``column`` (AppTest gives dataframes no key)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: shown(m.value) for m in at.metric}


def test_a_link_opens_the_customer_with_tiles_open_items_and_timeline(app_store):
    customer = busiest(app_store)
    at = open_page(PAGE, {**Q2, "customer": customer})
    assert not at.exception, at.exception
    want = expected(app_store, customer)
    header = want.header
    assert shown(at.header[0].value) == header.name
    tiles = metrics(at)
    assert tiles["Segment"] == header.segment
    assert tiles["Lifetime revenue"] == format_money(header.lifetime_revenue)
    assert tiles["Open deals"] == f"{header.open_deals:,}"
    assert tiles["RFM"] == (header.rfm_segment or "Not scored")
    assert tiles["Churn risk"] == "—"  # no churn model kept yet: said, not invented
    timeline = table_with(at, "summary")
    table = timeline_table(want.timeline)
    assert timeline["summary"].tolist() == table["summary"].to_list()
    assert timeline["what"].tolist() == table["what"].to_list()
    assert len(timeline) > 10
    assert at.query_params["customer"] == [customer] or at.query_params["customer"] == customer
    assert not [w.value for w in at.warning if "link" in w.value]  # customer= is the page's own parameter


def test_the_search_finds_a_customer_and_a_pick_opens_them_and_writes_the_url(app_store):
    customer = busiest(app_store)
    name = str(load_frames(app_store).customers.filter(pl.col("customer_id") == customer)["name"][0])
    at = open_page(PAGE, Q2)
    assert not at.exception, at.exception
    assert any("Find a customer with the search box" in shown(i.value) for i in at.info)
    at.text_input(key="cus_query").input(name).run()
    assert not at.exception, at.exception
    matches = table_with(at, "email")
    assert customer in matches["customer_id"].tolist()
    at.selectbox(key=view_key("cus_pick", name.lower())).select(customer).run()
    assert not at.exception, at.exception
    assert shown(at.header[0].value) == name
    assert at.session_state["cus_query"] == ""  # the box is cleared for the next search
    query = at.query_params["customer"]
    assert (query if isinstance(query, str) else query[0]) == customer


def test_an_unknown_id_says_so(app_store):
    at = open_page(PAGE, {**Q2, "customer": "C-NOPE"})
    assert not at.exception, at.exception
    assert any("No customer C-NOPE among the rows you may see" in shown(w.value) for w in at.warning)
    assert not at.metric


def test_a_rep_does_not_find_a_customer_outside_their_scope(app_store):
    customer = busiest(app_store)  # not one of the demo rep's customers
    at = open_page(PAGE, {**Q2, "customer": customer}, role="rep")
    assert not at.exception, at.exception
    assert any(f"No customer {customer} among the rows you may see" in shown(w.value) for w in at.warning)
    at.text_input(key="cus_query").input(customer).run()
    assert any("No customer you may see matches" in shown(i.value) for i in at.info)
    own = str(load_frames(app_store).customers.filter(pl.col("owner") == auth.DEMO_OWNER)["customer_id"].sort()[0])
    at = open_page(PAGE, {**Q2, "customer": own}, role="rep")
    assert not at.exception, at.exception
    want = expected(app_store, own, Scope.create(owners=[auth.DEMO_OWNER]))
    timeline = table_with(at, "summary")
    assert timeline["summary"].tolist() == timeline_table(want.timeline)["summary"].to_list()


def test_an_analyst_gets_masked_contacts_and_no_search_by_them(app_store):
    customer = busiest(app_store)
    person = load_frames(app_store).customers.filter(pl.col("customer_id") == customer).row(0, named=True)
    at = open_page(PAGE, {**Q2, "customer": customer}, role="analyst")
    assert not at.exception, at.exception
    identity = " ".join(t.value for t in at.text)  # st.text: the store's values as they are, no Markdown
    assert person["email"] not in identity and "(contacts masked for your role)" in identity
    assert f"{person['email'][0]}***@" in identity and person["phone"] not in identity
    at.text_input(key="cus_query").input(person["email"]).run()
    assert any("No customer you may see matches" in shown(i.value) for i in at.info)
    admin = open_page(PAGE, {**Q2, "customer": customer}, role="admin")  # admins, managers and reps see contacts
    identity = " ".join(t.value for t in admin.text)
    assert person["email"] in identity and person["phone"] in identity


def test_no_customer_value_reads_none(app_store):
    at = open_page(PAGE, {**Q2, "customer": busiest(app_store)})
    assert len(at.dataframe) >= 2
    for frame in at.dataframe:
        values = frame.value.astype(str).to_numpy().ravel().tolist()
        assert "None" not in values and "nan" not in values, list(frame.value.columns)


def test_the_header_shows_the_churn_risk_the_stores_model_gives_once_it_is_fitted(app_store):
    from crm.churn_risk import churn_models
    from crm.customer_facts import customer_facts
    from crm.narrowing import narrow
    from crm.ui import loaders

    customer = busiest(app_store)
    url, version = str(app_store.url), app_store.data_version()
    at = open_page(PAGE, {**Q2, "customer": customer})
    assert not at.exception
    loaders.wait_for_churn_models(url, version, loaders.get_frames(url, version), on_step=lambda text: None)
    at.run()
    tile = next(m for m in at.metric if m.label == "Churn risk")
    frames = load_frames(app_store)
    model = churn_models(frames).model
    assert model is not None
    facts = customer_facts(narrow(frames, Filters.create(Period(date(2026, 6, 30), date(2026, 6, 30)), scope=Scope())),
                           date(2026, 6, 30))
    risk = model.risk(facts.filter(pl.col("customer_id") == customer))
    assert tile.value == f"{float(risk[0]):.0%}"
