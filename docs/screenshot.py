"""Take the README screenshots: every main page over the seeded demo data, full page, 1400 px wide; the login
page, a page a role may not open, Customer 360, Churn risk and Next product (docs/screenshots/, 1440 px wide).

    python docs/screenshot.py [--out-dir docs] [--only segments] [--only access] [--only customer] [--only models]

Builds a throw-away demo store with ``python -m crm init-demo`` (fixed seed and as-of date, so the
picture only changes when the app does), starts the app the way the browser tests do
(``tests/e2e/harness.py``) and drives Debian chromium through Playwright.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm.metrics import tiles  # noqa: E402
from tests.e2e.harness import VIEWPORT, launch_chromium, run_streamlit, session_cookie, sign_in  # noqa: E402

SEED = 7
AS_OF = "2026-06-30"
_CONTENT_HEIGHT = """() => Math.max(...['stMain', 'stSidebarContent'].map(
    id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight ?? 0))"""


def build_demo_store(folder: Path) -> str:
    """A SQLite demo store in ``folder``, filled by the CLI; its URL."""
    url = f"sqlite:///{folder / 'crm.db'}"
    subprocess.run([sys.executable, "-m", "crm", "--db", url, "init-demo", "--seed", str(SEED), "--as-of", AS_OF],
                   cwd=ROOT, check=True)
    return url


PAGES: tuple[tuple[str, str], ...] = (
    ("", "cockpit.png"),
    ("funnel", "funnel.png"),
    ("satisfaction", "satisfaction.png"),
    ("service", "service.png"),
    ("customers", "customers.png"),
    ("segments", "segments.png"),
    ("quality", "quality.png"),
)
"""(URL path, file name) of each picture; every page opens on its default view (the last 90 days)."""

_BACKGROUND_DONE = """() => document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]') !== null
    && !['computing…', 'being checked in the background'].some(words => document.body.innerText.includes(words))"""
"""The cockpit's churn fit and quality check are done, and no run is redrawing the page (while one does, the
page can show neither the old words nor the new ones)."""

_DRAWN = """() => [...document.querySelectorAll('[data-testid="stMetricChart"]')]
        .every(chart => chart.querySelector('svg') !== null)
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(chart => chart.querySelector('.main-svg .trace, .main-svg image, canvas.gl-canvas-context') !== null)
        // heatmaps draw an image, WebGL scatters a canvas
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
        .every(chart => chart.querySelector('svg.marks') !== null)
    && document.querySelectorAll('[data-testid="stMetric"], [data-testid="stPlotlyChart"]').length > 0
    && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]') !== null"""


def take(base: str, out_dir: Path, only: tuple[str, ...] = ()) -> None:
    """Open each page, wait until its tiles and charts are drawn, save a full-page PNG per page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for path, name in [p for p in PAGES if not only or p[0] in only]:
            page = browser.new_page(viewport=VIEWPORT)
            page.context.add_cookies([session_cookie()])  # signed in as the demo admin (every page)
            page.set_default_timeout(60_000)
            page.goto(f"{base}/{path}")
            if not path:  # the cockpit: every tile (the registry's and at-risk revenue, fitted), then every chart
                page.wait_for_function("n => document.querySelectorAll('[data-testid=\"stMetric\"]').length === n",
                                       arg=len(tiles()) + 1)
                page.locator(".st-key-tile_at_risk_revenue [data-testid='stMetricValue']").filter(
                    has_not_text="computing").wait_for()
                page.wait_for_function(_BACKGROUND_DONE)
            page.wait_for_timeout(1500)  # a page draws its charts after the first tiles
            page.wait_for_function(_DRAWN)
            errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
            if errors.count():
                raise SystemExit(f"/{path} shows an error: {errors.all_inner_texts()}")
            # Streamlit scrolls inside its main area, so a "full page" shot would stop at the viewport:
            # grow the viewport to the content instead (same width, so the layout does not change).
            page.set_viewport_size({"width": VIEWPORT["width"],
                                    "height": max(VIEWPORT["height"], page.evaluate(_CONTENT_HEIGHT))})
            page.wait_for_timeout(1500)  # let Plotly and Vega finish resizing and their transitions
            page.wait_for_function(_DRAWN)
            page.screenshot(path=str(out_dir / name), full_page=True)
            page.close()
            print(f"wrote {out_dir / name}")
        browser.close()


DATA_SAMPLE = ROOT / "data" / "examples" / "helpdesk_tickets" / "tickets.csv"
DATA_VIEWPORT = {"width": 1440, "height": 900}
_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def take_data(base: str, out_dir: Path) -> None:
    """The Data page at 1440×900 with a help-desk export uploaded: the table chosen and the mapping form down to
    the priority value map."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=DATA_VIEWPORT)
        page.context.add_cookies([session_cookie()])
        page.set_default_timeout(90_000)
        page.goto(f"{base}/data")
        page.get_by_text("Upload a CSV or XLSX export to start").wait_for()
        page.wait_for_selector(_IDLE)
        page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(DATA_SAMPLE))
        page.get_by_text("Map the file's columns onto tickets").wait_for()
        page.wait_for_selector(_IDLE)
        editor = page.locator('[class*="_values_priority_"] [data-testid="data-grid-canvas"] tbody tr')
        editor.first.wait_for(state="attached")
        page.get_by_text("Import into table").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(1500)  # let the grids draw after the scroll
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if errors.count():
            raise SystemExit(f"/data shows an error: {errors.all_inner_texts()}")
        page.screenshot(path=str(out_dir / "data.png"))
        print(f"wrote {out_dir / 'data.png'}")
        browser.close()


ACCESS_VIEWPORT = {"width": 1440, "height": 900}


def take_access(base: str, database_url: str, out_dir: Path, viewport: dict[str, int] = ACCESS_VIEWPORT) -> None:
    """The login page a visitor gets on the demo store (login.png) and the Data page opened by the demo rep
    (not-permitted.png), each as the window shows it."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for name, path, user, text in (("login.png", "", None, "demo-only password"),
                                       ("not-permitted.png", "data", "rep", "Not permitted")):
            page = browser.new_page(viewport=viewport)
            page.set_default_timeout(90_000)
            if user:
                sign_in(page.context, database_url, user)
            page.goto(f"{base}/{path}")
            page.get_by_text(text).first.wait_for()
            page.wait_for_selector(_IDLE)
            page.wait_for_timeout(500)  # icons and fonts settle after the run
            page.screenshot(path=str(out_dir / name))
            page.close()
            print(f"wrote {out_dir / name}")
        browser.close()


CUSTOMER = "C0000001"
"""The demo customer the Customer 360 picture shows."""


def take_customer(base: str, out_dir: Path) -> None:
    """The Customer 360 page of ``CUSTOMER``, 1440 px wide, the whole page (tiles, open items, timeline)."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=ACCESS_VIEWPORT)
        page.context.add_cookies([session_cookie()])
        page.set_default_timeout(90_000)
        page.goto(f"{base}/customer?customer={CUSTOMER}")
        page.get_by_role("heading", name="Timeline", exact=True).wait_for()
        page.wait_for_selector(_IDLE)
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if errors.count():
            raise SystemExit(f"/customer shows an error: {errors.all_inner_texts()}")
        page.set_viewport_size({"width": ACCESS_VIEWPORT["width"],
                                "height": max(ACCESS_VIEWPORT["height"], page.evaluate(_CONTENT_HEIGHT))})
        page.wait_for_timeout(1500)  # the tables redraw at the new height
        page.screenshot(path=str(out_dir / "customer.png"))
        print(f"wrote {out_dir / 'customer.png'}")
        browser.close()


MODEL_PAGES: tuple[tuple[str, str, str], ...] = (
    ("churn_risk", "churn-risk.png", "How well the model predicts"),
    ("cross_sell", "next-product.png", "Customers to offer the next product"),
)
"""(URL path, file name, the page's last heading) of the Churn risk and Next product pictures."""


def take_models(base: str, out_dir: Path, viewport: dict[str, int] = ACCESS_VIEWPORT) -> None:
    """The Churn risk and Next product pages, ``viewport`` wide, the whole page (their grids drawn)."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for path, name, last in MODEL_PAGES:
            page = browser.new_page(viewport=viewport)
            page.context.add_cookies([session_cookie()])
            page.set_default_timeout(120_000)  # the churn model is fitted on the first visit
            page.goto(f"{base}/{path}")
            page.get_by_role("heading", name=last, exact=True).wait_for()
            page.wait_for_selector(_IDLE)
            page.frame_locator('iframe[data-testid="stCustomComponentV1"]').locator(".ag-row").first.wait_for()
            errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
            if errors.count():
                raise SystemExit(f"/{path} shows an error: {errors.all_inner_texts()}")
            page.set_viewport_size({"width": viewport["width"],
                                    "height": max(viewport["height"], page.evaluate(_CONTENT_HEIGHT))})
            page.wait_for_timeout(1500)  # charts and grids redraw at the new height
            page.wait_for_function(_DRAWN)
            page.screenshot(path=str(out_dir / name), full_page=True)
            page.close()
            print(f"wrote {out_dir / name}")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--only", action="append", default=[], metavar="PATH", help="only this page (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-screenshot-") as tmp:
        folder = Path(tmp)
        url = build_demo_store(folder)
        with run_streamlit(url, folder / "streamlit.log", demo=True) as server:  # demo: the login page lists its users
            pages = tuple(p for p in args.only if p not in ("data", "access", "customer", "models"))
            if not args.only or pages:
                take(server.url, args.out_dir, pages)
            if not args.only or "data" in args.only:
                take_data(server.url, args.out_dir)
            if not args.only or "access" in args.only:
                take_access(server.url, url, args.out_dir / "screenshots")
            if not args.only or "customer" in args.only:
                take_customer(server.url, args.out_dir / "screenshots")
            if not args.only or "models" in args.only:
                take_models(server.url, args.out_dir / "screenshots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
