"""Browser: every page opened with hostile link values, on a store whose names hold HTML and Markdown, shows
them as text: no link or image to another host anywhere (the page, Plotly's SVG, AG Grid's frame), no
exception, no traceback, and nothing requested from a host other than the app's own server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import polars as pl
import pytest

from crm.filters import PAGE_PARAMS
from crm.segments import SegmentRule, save_segment
from crm.store import Store
from crm.ui.pages import PAGES
from tests.e2e.harness import VIEWPORT, Server, run_streamlit, session_cookie

pytestmark = pytest.mark.browser

TIMEOUT_MS = 90_000
"""A busy machine takes tens of seconds for a fresh session's first render (TESTING-NOTES)."""
HOST = "x.example"

MD_LINK = f"[Click to log in](http://{HOST}/phish)"
MD_IMAGE = f"![px](http://{HOST}/p.png)"
HTML_IMG = f"<img src=http://{HOST}/i.png onerror=alert(1)>"
HTML_LINK = f'<a href="http://{HOST}/a">x</a>'
SCRIPT = "<script>alert(1)</script>"
MARKUP = (MD_LINK, MD_IMAGE, HTML_IMG, HTML_LINK, SCRIPT)
LONG = (MD_LINK + " " + HTML_LINK + " ") * 135
"""A 10 kB value (percent-encoded about half as long again: two of them keep the URL under Tornado's 64 kB
limit for a request line)."""


def _html(name: str) -> str:
    return f'<a href="http://{HOST}/{name}">{name}</a><img src=http://{HOST}/{name}.png onerror=alert(1)>'


def _markdown(name: str) -> str:
    return f"[{name}](http://{HOST}/{name}) ![{name}](http://{HOST}/{name}.png)"


# What the store holds instead of some demo names: (tables, column, demo value, hostile value).
RENAMES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("customers", "opportunities", "interactions"), "owner", "Kai Lopes", _html("owner")),
    (("customers", "opportunities", "interactions"), "owner", "Ava Thompson", _markdown("owner")),
    (("customers", "opportunities"), "region", "Europe", _markdown("region")),
    (("customers", "opportunities"), "source", "Inbound", _markdown("source")),
    (("customers",), "industry", "Software", _html("industry")),
    (("opportunities",), "team", "Team Cirrus", _html("sales team")),
    (("tickets", "survey_responses"), "team", "Tier 1", _markdown("support team")),
    (("tickets", "survey_responses"), "agent", "Wen Li", _html("agent")),
    (("opportunities", "order_items", "tickets", "survey_responses"), "product", "Analytics Pro", _html("product")),
    (("opportunities",), "lost_reason", "No budget", _html("reason")),
    (("pipeline_stages", "opportunities", "opportunity_stages"), "stage", "qualified", _html("stage")),
    (("tickets",), "category", "how-to", _markdown("category")),
)
REGION = _markdown("region")
PRODUCT = _html("product")


def hostile_frames(demo: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The demo data with the RENAMES applied, every customer name and survey comment made hostile too."""
    frames = dict(demo)
    for tables, column, old, new in RENAMES:
        for table in tables:
            frame = frames[table]
            assert (frame[column] == old).any(), (table, column, old)
            frames[table] = frame.with_columns(pl.col(column).replace(old, new))
    customers = frames["customers"]
    frames["customers"] = customers.with_columns(
        name=pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(pl.format('<a href="http://{}/c">{}</a>', pl.lit(HOST), pl.col("name")))
        .otherwise(pl.format("[{}](http://{}/c)", pl.col("name"), pl.lit(HOST))))
    responses = frames["survey_responses"]
    frames["survey_responses"] = responses.with_columns(
        comment=pl.col("comment") + f" {HTML_IMG} {MD_IMAGE} {HTML_LINK}")
    return frames


@pytest.fixture(scope="module")
def hostile_server(browser, demo_frames, tmp_path_factory) -> Iterator[Server]:
    """One app server over a SQLite store whose names and comments hold HTML and Markdown."""
    folder = tmp_path_factory.mktemp("hostile")
    store = Store(f"sqlite:///{folder / 'crm.db'}")
    store.replace_business_data(hostile_frames(demo_frames))
    save_segment(store, MD_IMAGE, SegmentRule(tiers=("Churn risk",)))  # its name is on a button of the Segments page
    store.close()
    with run_streamlit(str(store.url), folder / "server.log") as running:
        yield running


@pytest.fixture
def tab(browser, hostile_server) -> Iterator[tuple[Any, list[str]]]:
    """A page in a fresh context (signed in as the demo admin) and the URLs of every request and websocket it opens."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([session_cookie()])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: requested.append(socket.url))
    yield page, requested
    context.close()


def _segment_rule(names: list[str]) -> str:
    return json.dumps({"as_of": "2026-06-30", "segments": names, "scope": {"owner": [HTML_LINK]}})


def _every_parameter(value: str | tuple[str, ...]) -> dict[str, list[str]]:
    """``value`` (or each of several) in every parameter a page reads: the filters, the pages' own, more."""
    values = [value] if isinstance(value, str) else list(value)
    names = ("region", "segment", "product", "team", "owner", "compare", "select", *PAGE_PARAMS, "x", "y")
    return {name: values for name in names}


LINKS: dict[str, dict[str, list[str]]] = {
    # markup everywhere, an unknown period, a segment rule that is not JSON, a hostile parameter name; the
    # data stays (unknown filter values are dropped), so every page goes on to read its own parameters
    "markup": {
        **_every_parameter(MARKUP), "period": [MD_LINK], "seg": ['{"segments": ["' + MD_LINK + '", ' + MD_IMAGE],
        "select": [f"owner:{v}" for v in MARKUP], MD_LINK: [HTML_IMG],
        "drill": [f"product:{MD_IMAGE}", f"team:{MD_LINK}", f"agent:{HTML_IMG}", f"product:{SCRIPT}"],
    },
    # the widest calendar, 10 kB values, hostile customer ids and a well-formed segment rule naming hostile
    # segments: they select nobody, so the pages show their empty states
    "far dates, long values": {
        **_every_parameter(MD_IMAGE), "from": ["0001-01-01"], "to": ["9999-12-31"],
        "customers": [f"{MD_LINK},{HTML_IMG}"], "select": [f"owner:{LONG}"], "drill": [f"product:{LONG}"],
        "seg": [_segment_rule([MD_LINK, MD_IMAGE, HTML_IMG])],
    },
    # names the store holds, chosen: filter tags, captions, crumbs, charts and grids show them
    "store values": {
        "period": ["last_365"], "compare": ["0"], "region": [REGION], "by": ["owner"], "split": ["agent"],
        "dim": ["industry"], "drill": [f"product:{PRODUCT}"],
    },
}
SHOWN: dict[str, str] = {"markup": MD_LINK, "far dates, long values": "0001-01-01", "store values": REGION}
"""Text each link leaves on every page (a notice, or the filter bar's tag): the values arrived, as text."""
STORE_SHOWN: dict[str, str] = {
    "Cockpit": f"region={REGION}",  # the caption describing the filters
    "Funnel": _html("stage"),  # the funnel's tick labels
    "Satisfaction": PRODUCT,  # the drill's crumb and the "what moved" chart
    "Service": _html("agent"),  # the breakdown's tick labels
    "Churn & retention": _html("industry"),  # the churn-by chart's tick labels
    "Segments": f'<a href="http://{HOST}/c">',  # customer names in the grid
    "Churn risk": f'<a href="http://{HOST}/c">',  # customer names in the risk list
    "Next product": PRODUCT,  # the rules table and the product matrix's tick labels
    "Customer 360": REGION,  # the filter bar's tag (no customer in the link: the page shows its search box)
    "Data": REGION,
    "Data quality": REGION,  # the filter bar's tag (the page's own tables show the store's rows as grid text)
    "Audit log": REGION,  # the filter bar's tag
}
"""What each page shows of the store's hostile names with the "store values" link: text, in a chart or grid."""


_RENDERED = """() => {
    if (document.querySelector('[data-testid="stException"]')) return true;
    const app = document.querySelector('[data-testid="stApp"]');
    if (app?.getAttribute('data-test-script-state') !== 'notRunning') return false;
    if (!document.querySelector('[data-testid="stMain"] h1')) return false;
    if (document.querySelector('[data-testid="stSkeleton"]')) return false;
    return [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('svg.main-svg'));
}"""
"""The run has ended with the page's title drawn, every element's code has loaded (Streamlit draws a skeleton
until then), and Plotly (which draws after that) has drawn every chart."""

_OUTSIDE = """host => {
    const found = [];
    const goesTo = value => {  // a link or resource address: where it goes, not what its query string carries
        try { return new URL(value, location.href).hostname.endsWith(host); } catch (e) { return value.includes(host); }
    };
    for (const el of document.querySelectorAll('*')) {
        for (const attr of el.attributes) {
            const name = attr.name.toLowerCase(), value = attr.value || '';
            const address = name.endsWith('href') || ['src', 'action', 'poster', 'data', 'formaction'].includes(name);
            const pointing = (address && goesTo(value)) || ((name === 'style' || name === 'srcset') && value.includes(host));
            if (pointing || (name.startsWith('on') && value.includes('alert'))) {
                found.push(el.outerHTML.slice(0, 300));
                break;
            }
        }
    }
    return found;
}"""
"""Elements that link to, load from or run something for ``host``: an address attribute (href, also SVG's
``xlink:href``, which ``a[href]`` does not match; src, action, poster, data) that goes to it, a style or srcset
naming it, any inline handler. The app's own links carry the filters, hostile text included, in their query
string: they go to the app, so they are not counted."""

_TEXT = """() => {
    const svg = [...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n');
    return (document.body?.innerText ?? '') + '\\n' + svg;
}"""


def _url(server: Server, page_path: str, default: bool, link: dict[str, list[str]]) -> str:
    path = "" if default else Path(page_path).stem
    url = f"{server.url}/{path}?{urlencode(link, doseq=True)}"
    assert len(url) < 60_000, len(url)  # Tornado refuses request lines over 64 kB
    return url


def _grids_drawn(page) -> None:
    """Wait until every AG Grid frame has drawn its rows (the grid is a component in an iframe)."""
    for frame in page.frames[1:]:
        if frame.url.startswith("about:"):
            continue
        frame.wait_for_selector(".ag-center-cols-container .ag-row", state="attached")


@pytest.mark.parametrize("variant", LINKS)
@pytest.mark.parametrize("spec", PAGES, ids=[p.title for p in PAGES])
def test_hostile_link_shows_only_text(tab, hostile_server, spec, variant):
    page, requested = tab
    page.goto(_url(hostile_server, spec.path, spec.default, LINKS[variant]))
    page.wait_for_function(_RENDERED)
    _grids_drawn(page)

    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").all_inner_texts()
    errors = page.get_by_test_id("stAlertContentError")
    assert errors.count() == 0, errors.all_inner_texts()
    frames = [f for f in page.frames if not f.url.startswith("about:")]
    texts = [frame.evaluate(_TEXT) for frame in frames]
    assert not [t for t in texts if "Traceback (most recent call last)" in t], "a traceback is shown"
    # the link's values are on the page, as text (plain() puts a zero-width space after each colon)
    shown = "\n".join(texts).replace("\u200b", "")
    assert SHOWN[variant] in shown
    if variant == "store values":
        assert STORE_SHOWN[spec.title] in shown
    pointing = {frame.url: frame.evaluate(_OUTSIDE, HOST) for frame in frames}
    assert not any(pointing.values()), pointing

    own = urlsplit(hostile_server.url).netloc
    hosts = {urlsplit(url).netloc for url in requested if urlsplit(url).scheme not in ("data", "blob", "about")}
    assert hosts == {own}, sorted(url for url in requested if urlsplit(url).netloc != own)
