"""CPU of a page rerun whose numbers are cached: what each further session costs the server.

    python bench/bench_rerun_cpu.py                # demo scale 10 (100k deals), 5 sessions per page
    python bench/bench_rerun_cpu.py --scale 100 --sessions 9

For each page a first session computes the numbers (st.cache_data) and builds the figures; then
``--sessions`` new sessions open the same page with the same filters, each timed by the process's CPU
time over its run (Streamlit's AppTest: the script as a server runs it, without the websocket). Two
ways, interleaved session by session:

- **shared**: figures built once per input and handed to every session (crm.charts.shared);
- **rebuilt**: the same code with the shared figures dropped before the session, so it builds its own
  (what every session did before).

Printed: the median CPU per session for both and the ratio. The load test (bench_load.py) measures the
whole server with browsers; this isolates the page script.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

PAGES = ("pages/cockpit.py", "pages/funnel.py", "pages/satisfaction.py", "pages/service.py", "pages/customers.py",
         "pages/segments.py")


def drop_shared_figures() -> None:
    from crm import charts

    for name in dir(charts):
        clear = getattr(getattr(charts, name), "cache_clear", None)
        if name.startswith("build_") and clear is not None:
            clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    from bench_restart import sqlite_store

    os.environ["CRM_DATABASE_URL"] = sqlite_store(args.scale)
    os.environ["CRM_SNAPSHOT_DIR"] = "off"
    os.chdir(ROOT)
    logging.disable(logging.WARNING)
    from tests.app.conftest import open_page

    print(f"# Cached page rerun CPU per new session: demo scale {args.scale:g}, {args.sessions} sessions per way\n")
    print("| page | rebuilt per session, ms | shared, ms | rebuilt / shared |")
    print("|---|---|---|---|")
    for page in PAGES:
        open_page(page, {}).run()  # the first session: numbers computed and cached, figures built
        cpu: dict[str, list[float]] = {"rebuilt": [], "shared": []}
        for _ in range(args.sessions):
            for way in ("rebuilt", "shared"):
                at = open_page(page, {})
                if way == "rebuilt":
                    drop_shared_figures()
                else:
                    at.run()  # a session that builds, so the next run finds the figures (as after any first session)
                    at = open_page(page, {})
                started = time.process_time()
                at.run()
                cpu[way].append(time.process_time() - started)
        rebuilt, shared = (statistics.median(cpu[w]) * 1000 for w in ("rebuilt", "shared"))
        print(f"| {page} | {rebuilt:.0f} | {shared:.0f} | {rebuilt / shared:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
