"""Take the README screenshot: the cockpit over the seeded demo data, full page, 1400×1000 viewport.

    python docs/screenshot.py [--out docs/cockpit.png]

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
from tests.e2e.harness import VIEWPORT, launch_chromium, run_streamlit  # noqa: E402

SEED = 7
AS_OF = "2026-06-30"
CHARTS = 3
"""Plotly charts on the cockpit: the picture waits for each to draw its traces."""
_CONTENT_HEIGHT = """() => Math.max(...['stMain', 'stSidebarContent'].map(
    id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight ?? 0))"""


def build_demo_store(folder: Path) -> str:
    """A SQLite demo store in ``folder``, filled by the CLI; its URL."""
    url = f"sqlite:///{folder / 'crm.db'}"
    subprocess.run([sys.executable, "-m", "crm", "--db", url, "init-demo", "--seed", str(SEED), "--as-of", AS_OF],
                   cwd=ROOT, check=True)
    return url


def take(url: str, out: Path) -> None:
    """Open the cockpit at ``url``, wait until tiles and charts are drawn, save a full-page PNG."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_function(
            """([tiles, charts]) => {
                const sparklines = [...document.querySelectorAll('[data-testid="stMetricChart"]')];
                return document.querySelectorAll('[data-testid="stMetric"]').length === tiles
                    && sparklines.every(chart => chart.querySelector('svg') !== null)
                    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                        .filter(chart => chart.querySelector('.main-svg .trace') !== null).length >= charts
                    && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]') !== null;
            }""",
            arg=[len(tiles()), CHARTS],
        )
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if errors.count():
            raise SystemExit(f"the cockpit shows an error: {errors.all_inner_texts()}")
        # Streamlit scrolls inside its main area, so a "full page" shot would stop at the viewport:
        # grow the viewport to the content instead (same width, so the layout does not change).
        page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], page.evaluate(_CONTENT_HEIGHT))})
        page.wait_for_timeout(1000)  # let Plotly and Vega finish resizing and their transitions
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cockpit.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-screenshot-") as tmp:
        folder = Path(tmp)
        with run_streamlit(build_demo_store(folder), folder / "streamlit.log") as server:
            take(f"{server.url}/", args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
