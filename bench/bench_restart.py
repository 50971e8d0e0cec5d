"""Restart benchmark: how long until the first cockpit when the server restarts on unchanged data.

    python bench/bench_restart.py                 # scale 100 (1M deals), SQLite, in-process phases
    python bench/bench_restart.py --pg            # also PostgreSQL (postgresql://postgres@127.0.0.1:5432/test)
    python bench/bench_restart.py --server        # also a real `streamlit run` + headless chromium, per case
    python bench/bench_restart.py --scale 10      # quick look

Each phase runs in a fresh Python process (a restart), so nothing is warm but the operating system's page
cache (as after a real restart). Phases:

- reference: ``load_frames(store, snapshots=False)``: read every table and prepare it (what every start
  did before crm.snapshot);
- first start: the same, then the prepared snapshot is written;
- restart: ``load_frames(store)`` memory-maps the snapshot;
- after a write of the tickets (a version bump naming that table): the tickets are read again, the other
  raw tables mapped from the snapshot, everything prepared, a new snapshot written;
- after a settings change (a bump naming no table): no table is read, everything is prepared;

and after each, the cockpit's numbers (this and the previous period's KPIs, the 12-month trend) as the
first visitor's page computes them. Peak RSS is VmHWM of the phase's process. With ``--server``, the time
from ``streamlit run`` to the cockpit's tiles in headless chromium, signed in, with and without a snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CACHE = ROOT / "bench" / ".cache"

_PHASE = r"""
import json, os, sys, time, resource
sys.path.insert(0, {root!r})
started = time.perf_counter()
from crm.dataset import load_frames
from crm.filters import Filters, resolve_preset, DEFAULT_PRESET
from crm.metrics import compute_with_previous, monthly_trend
from crm.narrowing import narrow
from crm.scope import Scope
from crm.store import Store
imported = time.perf_counter()
store = Store({url!r})
touch = {touch!r}
if touch is not None:  # a write of these tables (content unchanged): the next load re-reads only them
    with store.transaction() as conn:
        store.bump_version(conn, touch)
marks = []
frames = load_frames(store, snapshots={snapshots}, progress=lambda f, text: marks.append((time.perf_counter(), text)))
loaded = time.perf_counter()
def since(word):
    hit = [t for t, text in marks if text.startswith(word)]
    return hit[0] if hit else None
preparing, saving = since("Preparing"), since("Saving")
read_s = (preparing or loaded) - imported
prepare_s = ((saving or loaded) - preparing) if preparing else 0.0
save_s = (loaded - saving) if saving else 0.0
anchor = frames.last_event_date()
filters = Filters.create(resolve_preset(DEFAULT_PRESET, anchor), preset=DEFAULT_PRESET, scope=Scope())
compute_with_previous(narrow(frames, filters), filters.period)
monthly_trend(narrow(frames, filters.ending()), filters.ending().period, 12)
done = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({{"import_s": imported - started, "load_s": loaded - imported, "read_s": read_s,
                  "prepare_s": prepare_s, "save_s": save_s, "cockpit_s": done - loaded,
                  "total_s": done - started, "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "rows": sum(getattr(frames, n).height for n in ("customers", "opportunities", "stages", "tickets",
                                                                   "surveys", "orders", "order_items"))}}))
"""


def phase(url: str, snapshots: bool, folder: Path | None, touch: list[str] | None = None) -> dict[str, float]:
    env = {**os.environ, "CRM_SNAPSHOT_DIR": str(folder) if folder else "off"}
    code = _PHASE.format(root=str(ROOT), url=url, snapshots=snapshots, touch=touch)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sqlite_store(scale: float) -> str:
    from datagen import load_or_generate

    from crm import auth
    from crm.store import Store

    path = CACHE / f"restart-scale{scale:g}.db"
    if not path.exists():
        frames, _, _ = load_or_generate(scale)
        store = Store(f"sqlite:///{path}")
        started = time.perf_counter()
        store.replace_business_data(frames)
        auth.add_demo_users(store)
        print(f"# wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return f"sqlite:///{path}"


def postgres_store(scale: float, admin_url: str) -> str:
    import psycopg
    from datagen import load_or_generate

    from crm import auth
    from crm.store import Store

    name = f"crm_restart_{str(scale).replace('.', '_')}"
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    store = Store(url)
    if store.data_version() == 0:
        frames, _, _ = load_or_generate(scale)
        store.replace_business_data(frames)
        auth.add_demo_users(store)
    return url


def server_first_cockpit(url: str, folder: Path | None) -> float:
    """Seconds from `streamlit run` to the cockpit's tiles in headless chromium, signed in as the demo exec."""
    from playwright.sync_api import sync_playwright

    from crm import auth
    from crm.store import Store
    from tests.e2e.harness import VIEWPORT, launch_chromium, run_streamlit, session_cookie

    token = auth.create_session(Store(url), "exec")
    os.environ["CRM_SNAPSHOT_DIR"] = str(folder) if folder else "off"
    log = Path(tempfile.mkdtemp()) / "server.log"
    started = time.perf_counter()
    with run_streamlit(url, log, admit_session=False) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_cookies([session_cookie(token)])
        page = context.new_page()
        page.goto(server.url, timeout=600_000)
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=600_000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--pg", action="store_true", help="also PostgreSQL")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--server", action="store_true", help="also time a real server to the first cockpit")
    args = parser.parse_args()

    stores = {"SQLite": sqlite_store(args.scale)}
    if args.pg:
        stores["PostgreSQL"] = postgres_store(args.scale, args.pg_url)
    print(f"# Restart benchmark: demo scale {args.scale:g}, {os.cpu_count()} cores\n")
    print("| store | phase | read s | prepare s | save snapshot s | load s | cockpit numbers s | process total s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, url in stores.items():
        folder = Path(tempfile.mkdtemp(prefix="crm-bench-snapshots-"))
        try:
            reference = phase(url, snapshots=False, folder=None)
            first = phase(url, snapshots=True, folder=folder)
            restart = phase(url, snapshots=True, folder=folder)
            tickets = phase(url, snapshots=True, folder=folder, touch=["tickets"])
            settings = phase(url, snapshots=True, folder=folder, touch=[])
            for label, r in (("reference: read + prepare", reference), ("first start (+ write snapshot)", first),
                             ("restart: map snapshot", restart),
                             ("after a write of the tickets: re-read tickets, prepare (+ snapshot)", tickets),
                             ("after a settings change: prepare (+ snapshot)", settings)):
                print(f"| {name} | {label} | {r['read_s']:.2f} | {r['prepare_s']:.2f} | {r['save_s']:.2f} | "
                      f"{r['load_s']:.2f} | {r['cockpit_s']:.2f} | {r['total_s']:.2f} | {r['peak_mb']:,.0f} |")
            ratios.append((name, reference["total_s"] / restart["total_s"], restart))
            if args.server:
                cold = server_first_cockpit(url, None)
                warm = server_first_cockpit(url, folder)
                print(f"| {name} | server start → cockpit tiles, no snapshot | | | | | | {cold:.1f} | |")
                print(f"| {name} | server start → cockpit tiles, snapshot | | | | | | {warm:.1f} | |")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    for name, ratio, restart in ratios:
        print(f"{name}: restart {ratio:.1f}× faster than read + prepare; {restart['rows']:,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
