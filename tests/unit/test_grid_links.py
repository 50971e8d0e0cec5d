"""crm.grid.link_renderer: the AG Grid cell renderer that links a customer's name to the Customer 360 page."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from st_aggrid.shared import JsCode

from crm.grid import link_renderer


def test_the_link_goes_to_the_page_with_the_filters_and_the_rows_id():
    query = urlencode({"from": ["2026-04-01"], "region": ["Europe & <Asia>"]}, doseq=True)
    js = link_renderer("pages/customer.py", "customer", "customer_id", query, "Open in Customer 360")
    assert js.startswith("class PageLink {")
    assert json.dumps(f"customer?{query}&") in js  # the filters as one JS string literal, still URL-encoded
    assert "params.data[\"customer_id\"]" in js and "encodeURIComponent(String(id))" in js
    assert "textContent" in js and "innerHTML" not in js  # the store's text is set as text, never as HTML
    assert "'_blank'" in js and "noopener" in js


def test_without_filters_the_link_carries_the_id_only():
    js = link_renderer("pages/customer.py", "customer", "id", "")
    assert json.dumps("customer?") in js


def test_the_code_survives_st_aggrids_comment_stripping():
    # JsCode removes "//" to the end of a line unless a colon stands before it, and folds whitespace
    js = link_renderer("pages/customer.py", "customer", "customer_id", "from=2026-04-01", "x")
    assert "//" not in js
    assert JsCode(js).js_code == f"::JSCODE::{js}::JSCODE::"
