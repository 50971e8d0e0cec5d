"""Check that a performance change kept every cockpit number: compare this checkout's ``crm``
with another git revision's on the benchmark data.

    python bench/compare_revisions.py [--rev HEAD] [--scale 100]

Both versions compute ``compute_with_previous`` and a 12-month ``monthly_trend``
for the same list of filters (periods of several lengths and ends, every region
and segment, products, teams, owners, customers, combinations) in a child
process each; the values are compared key by key. Counts, medians, percentiles
and rates must be equal; sums of money may differ in the last bits only
(summation order), so floats are also reported by their largest relative
difference. It also prints the median time of a filter change (KPIs + trend)
for both, from the same runs (one process after the other: a rough comparison
on a shared machine). Money is rounded to cents by ``compute_many``; a sum that lies on a
half cent can round either way after last-bit noise (this happens between two
runs of the same code too), so money one cent apart is reported, not failed.
Exit status 1 when anything else differs by more than ``--rtol``.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


def filter_specs(end: date = date(2026, 6, 30)) -> list[dict]:
    """The filters both versions are run on (plain data, so they cross process boundaries)."""
    def last(days: int, at: date = end) -> tuple[date, date]:
        return (at - timedelta(days=days - 1), at)

    specs: list[dict] = [{"period": last(90)}]
    specs += [{"period": last(90, end - timedelta(days=d))} for d in (1, 2, 3, 7, 45, 200)]
    specs += [{"period": last(n)} for n in (1, 7, 30, 365, 500)]
    specs += [{"period": (date(2026, 1, 1), end)}, {"period": (date(2026, 4, 1), date(2026, 4, 30))},
              {"period": (date(2024, 7, 1), date(2024, 9, 30))}, {"period": (date(2023, 1, 1), date(2023, 3, 31))}]
    specs += [{"period": last(90), "regions": (r,)} for r in ("Europe", "North America", "Asia Pacific", "Latin America")]
    specs += [{"period": last(90), "segments": (s,)} for s in ("Enterprise", "Mid-Market", "SMB")]
    specs += [{"period": last(90), "products": ("Data Connect",)}, {"period": last(90), "teams": ("Team Cirrus",)},
              {"period": last(90), "teams": ("Technical",)}, {"period": last(90), "owners": ("Ava Thompson",)},
              {"period": last(30), "regions": ("Europe",), "segments": ("SMB",), "products": ("Cockpit Core",)},
              {"period": last(90), "customers": ("C0000001", "C0000002", "C0000100", "C0001000")},
              {"period": last(90), "regions": ("Nowhere",)}]
    return specs


CHILD = r"""
import pickle, sys, time
from crm.dataset import COLUMNS, enrich
from crm.filters import Filters, Period
from crm.metrics import compute_many, compute_with_previous, monthly_trend
from crm.scope import Scope
from crm.narrowing import narrow
sys.path.insert(0, {bench!r})
from datagen import load_or_generate
from compare_revisions import filter_specs
raw, _, _ = load_or_generate({scale!r})
frames = enrich({{name: raw[name].select(cols) for name, cols in COLUMNS.items()}})
out = []
for spec in filter_specs():
    spec = dict(spec)
    period = Period(*spec.pop("period"))
    filters = Filters.create(period, **spec, scope=Scope())
    started, cpu = time.perf_counter(), time.process_time()
    current, previous = compute_with_previous(narrow(frames, filters), period)
    trend = monthly_trend(narrow(frames, filters), period, 12).to_dicts()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    ds = narrow(frames, filters)
    overlapping = compute_many(ds, [period, Period(period.start, period.start), period.previous()])
    out.append({{"filters": filters.describe(), "current": current, "previous": previous, "trend": trend,
                 "overlapping": overlapping, "seconds": seconds, "cpu": cpu}})
with open({target!r}, "wb") as fh:
    pickle.dump(out, fh)
"""


def run(source_root: Path, scale: float, target: Path) -> list[dict]:
    """Compute every filter's values with the ``crm`` package found under ``source_root``."""
    code = CHILD.format(bench=str(BENCH), scale=scale, target=str(target))
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=source_root)
    with open(target, "rb") as fh:
        return pickle.load(fh)


def compare(old: list[dict], new: list[dict], rtol: float) -> int:
    """Print differences; the number of values differing by more than ``rtol`` (money: one cent)."""
    sys.path.insert(0, str(ROOT))
    from crm.metrics.registry import METRICS, Unit

    money = {m.key for m in METRICS if m.unit is Unit.CURRENCY}
    worst: dict[str, float] = {}
    cents: dict[str, int] = {}
    bad = 0
    for a, b in zip(old, new, strict=True):
        pairs: list[tuple[str, dict, dict]] = [("current", a["current"], b["current"]),
                                               ("previous", a["previous"], b["previous"])]
        pairs += [(f"trend[{i}]", x, y) for i, (x, y) in enumerate(zip(a["trend"], b["trend"], strict=True))]
        pairs += [(f"many[{i}]", x, y) for i, (x, y) in enumerate(zip(a["overlapping"], b["overlapping"], strict=True))]
        for where, x, y in pairs:
            if set(x) != set(y):
                print(f"{a['filters']} {where}: keys differ: {sorted(set(x) ^ set(y))}")
                bad += 1
                continue
            for key in x:
                u, v = x[key], y[key]
                if isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v):
                    continue
                if u == v:
                    continue
                if isinstance(u, (int, float)) and isinstance(v, (int, float)) and not isinstance(u, bool):
                    if key in money and abs(u - v) <= 0.0100001:
                        cents[key] = cents.get(key, 0) + 1
                        continue
                    rel = abs(u - v) / max(abs(u), abs(v))
                    worst[key] = max(worst.get(key, 0.0), rel)
                    if rel <= rtol:
                        continue
                print(f"{a['filters']} {where} {key}: {u!r} (old) != {v!r} (new)")
                bad += 1
    for key, rel in sorted(worst.items()):
        print(f"  {key}: not bit-identical; largest relative difference {rel:.2e}")
    for key, count in sorted(cents.items()):
        print(f"  {key}: {count} value(s) one cent apart (a sum on a half-cent, rounded after last-bit noise)")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="git revision to compare against (default HEAD)")
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--rtol", type=float, default=1e-12, help="tolerated relative difference of floats")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-rev-") as tmp:
        old_root = Path(tmp) / "old"
        old_root.mkdir()
        archive = subprocess.run(["git", "archive", args.rev, "crm"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive, check=True)
        print(f"computing with crm at {args.rev} ...", flush=True)
        old = run(old_root, args.scale, Path(tmp) / "old.pickle")
        print("computing with this checkout's crm ...", flush=True)
        new = run(ROOT, args.scale, Path(tmp) / "new.pickle")
    bad = compare(old, new, args.rtol)
    for label, runs in ((args.rev, old), ("this checkout", new)):
        warm = runs[1:]  # the first filter pays for the first call
        print(f"KPIs + 12-month trend with {label}: median {statistics.median(r['seconds'] for r in warm) * 1000:.0f} ms,"
              f" CPU {statistics.median(r['cpu'] for r in warm) * 1000:.0f} ms (first call"
              f" {runs[0]['seconds'] * 1000:.0f} ms; {len(runs)} filters, timed once each)")
    values = sum(len(r["current"]) * (2 + len(r["trend"]) + len(r["overlapping"])) for r in new)
    print(f"{len(new)} filters, {values} values compared: {bad} differ beyond rtol={args.rtol:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
