"""Per-customer facts, churn-model training and cross-sell rules at demo scale and above (issue 15).

    python bench/bench_customer_facts.py                          # scales 1, 10, 100; 10M order items (~5 min)
    python bench/bench_customer_facts.py --scales 1 10 --items 0  # quicker: no cross-sell section
    python bench/bench_customer_facts.py --skip-churn --out bench/last-facts.md

Data: ``crm.demo.generate(DemoSpec(seed=7, scale=S, as_of=2026-06-30))`` through bench/datagen.py's
Parquet cache (scale 1 = 2,000 customers, ~21k orders, 10k tickets, 10k deals). Frames are enriched
once per scale and narrowed to every row (the unrestricted scope).

1. Facts: ``crm.customer_facts.customer_facts`` as of ``--dates`` different days (30 June 2026 and 30,
   60, ... days before), cold (first call) and warm (median of the rest), against the plain pandas
   version in bench/pandas_facts_reference.py (its ``prepare`` timed apart); every value is compared
   (ids, counts and dates equal, money to the cent, shares to 1e-9, RFM scores and names equal). Exit
   status 1 on a mismatch.
2. Churn model: ``evaluate_churn_model`` (the time split and the held-back figures) and
   ``train_churn_model`` (the final fit) as of 30 June 2026 with the default 6 training dates, with
   the training rows and the held-back AUC of the tree, the boosted model and the naive rule; and the
   parts of one fit timed apart (the labelled facts of the 6 dates, the tree, the boosted model on one
   OpenMP thread, as crm.churn_model fits it).
3. Cross-sell: ``association_rules`` over ``--items`` synthetic order items (4M orders, 500k customers,
   20 products drawn from a Zipf law, 1–4 items per order), first call per data version (it groups the
   items per order) and warm, for a year and a quarter; ``next_products`` and ``rule_targets`` warm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
import pandas_facts_reference as ref  # noqa: E402
import polars as pl  # noqa: E402
from datagen import AS_OF, load_or_generate  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from crm import churn_model, cross_sell, schema  # noqa: E402
from crm.customer_facts import FACT_COLUMNS, customer_facts  # noqa: E402
from crm.dataset import COLUMNS, Dataset, Frames, empty_raw, enrich  # noqa: E402
from crm.filters import Filters, Period  # noqa: E402


def dataset(frames: Frames) -> Dataset:
    """Every row, through the narrowing entry point the code base has."""
    period = Period(AS_OF, AS_OF)
    try:
        from crm.narrowing import narrow
        from crm.scope import Scope

        return narrow(frames, Filters.create(period, scope=Scope()))
    except ImportError:
        return frames.narrow(Filters.create(period))  # type: ignore[attr-defined,no-any-return]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def mismatches(crm: pl.DataFrame, pandas: pl.DataFrame) -> list[str]:
    """Where the two disagree (column and a few customer ids)."""
    if crm["customer_id"].to_list() != pandas["customer_id"].to_list():
        return [f"customers differ: {crm.height} vs {pandas.height} rows"]
    found = []
    for column in FACT_COLUMNS:
        a, b = crm[column], pandas[column]
        if a.dtype.is_float() or b.dtype.is_float():
            x, y = a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy()
            tolerance = 0.005 if column in ("monetary", "lifetime_revenue", "order_value_90d", "order_value_prev_90d",
                                            "order_value_change", "open_deal_amount") else 1e-9
            bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= tolerance))
        else:
            bad = ~(a.cast(pl.String).fill_null("∅") == b.cast(pl.String).fill_null("∅")).to_numpy()
        if bad.any():
            ids = crm["customer_id"].filter(pl.Series(bad)).head(3).to_list()
            found.append(f"{column}: {int(bad.sum())} rows, e.g. {ids}")
    return found


def pandas_as_polars(facts: Any) -> pl.DataFrame:
    frame = pl.from_pandas(facts[[c for c in FACT_COLUMNS if c in facts.columns]])
    return frame.with_columns(pl.col("active").fill_null(False))


def bench_facts(scale: float, dates: int, rows: list[list[str]], problems: list[str],
                churn_rows: list[list[str]] | None) -> None:
    raw, source, seconds = load_or_generate(scale)
    print(f"scale {scale:g}: data from {source} in {seconds:.1f} s", file=sys.stderr)
    frames = enrich({name: raw[name] for name in COLUMNS})
    ds = dataset(frames)
    days = [AS_OF - timedelta(days=30 * i) for i in range(dates)]
    crm_times, pandas_times = [], []
    data, prepare_s = timed(lambda: ref.prepare(raw))
    facts = None
    for day in days:
        facts, s = timed(lambda day=day: customer_facts(ds, day))
        crm_times.append(s)
        expected, s = timed(lambda day=day: ref.customer_facts(data, day))
        pandas_times.append(s)
        problems += [f"scale {scale:g}, {day}: {m}" for m in mismatches(facts, pandas_as_polars(expected))]
    assert facts is not None
    warm = statistics.median(crm_times[1:]) if len(crm_times) > 1 else crm_times[0]
    pandas_warm = statistics.median(pandas_times[1:]) if len(pandas_times) > 1 else pandas_times[0]
    rows.append([
        f"{scale:g}", f"{raw['customers'].height:,}", f"{raw['orders'].height:,}", f"{raw['tickets'].height:,}",
        ms(crm_times[0]), ms(warm), ms(prepare_s), ms(pandas_warm), f"{pandas_warm / warm:.1f}×",
    ])
    if churn_rows is None:
        return
    evaluation, evaluate_s = timed(lambda: churn_model.evaluate_churn_model(ds, AS_OF))
    _, train_s = timed(lambda: churn_model.train_churn_model(ds, AS_OF, evaluation=evaluation))
    # the parts of a fit: the labelled facts of the 6 training dates, then each model
    training, facts_s = timed(lambda: churn_model.labelled_facts(ds, churn_model.training_dates(AS_OF)))
    x = churn_model.feature_matrix(training, churn_model.feature_list(training))
    y = training["churned"].to_numpy()
    _, tree_s = timed(lambda: DecisionTreeClassifier(
        max_depth=churn_model.MAX_DEPTH, class_weight="balanced", min_samples_leaf=churn_model.MIN_LEAF_SHARE,
        random_state=churn_model.RANDOM_STATE).fit(x, y))
    with threadpool_limits(limits=churn_model.OPENMP_THREADS, user_api="openmp"):
        _, boosted_s = timed(lambda: HistGradientBoostingClassifier(random_state=churn_model.RANDOM_STATE).fit(x, y))
    figures = {r["model"]: r for r in evaluation.metrics.iter_rows(named=True)}
    churn_rows.append([
        f"{scale:g}", f"{evaluation.training_rows:,}", f"{evaluation.evaluation_rows:,}",
        f"{evaluation.evaluation_churn_rate:.1%}", ms(evaluate_s), ms(train_s), ms(facts_s), ms(tree_s), ms(boosted_s),
        *(f"{figures[m]['auc']:.3f}" for m in ("tree", "boosted", "naive_rule", "recency")),
        f"{figures['tree']['precision_top10']:.2f} / {figures['tree']['recall_top10']:.2f}", evaluation.kept,
    ])


def synthetic_items(n_items: int, seed: int = 7) -> Frames:
    """About ``n_items`` order items over 4M orders (fewer for small n), 500k customers, 20 products."""
    rng = np.random.default_rng(seed)
    n_orders = max(1, round(n_items / 2.5))
    n_customers = max(1, n_orders // 8)
    start = datetime(2025, 7, 1)
    raw = empty_raw()
    ids = np.array([f"C{i:07d}" for i in range(n_customers)], dtype=object)
    target = schema.polars_schema("customers", COLUMNS["customers"])
    raw["customers"] = pl.DataFrame({"customer_id": ids}).select(
        [pl.col("customer_id") if c == "customer_id" else pl.lit(None, t).alias(c) for c, t in target.items()])
    order_ids = np.array([f"O{i:08d}" for i in range(n_orders)], dtype=object)
    seconds = rng.integers(0, 365 * 86_400, n_orders)
    raw["orders"] = pl.DataFrame({
        "order_id": order_ids, "customer_id": ids[rng.integers(0, n_customers, n_orders)],
        "ordered_at": pl.Series(np.datetime64(start, "us") + seconds.astype("timedelta64[s]")),
        "amount": np.round(rng.random(n_orders) * 100, 2), "channel": ["web"] * n_orders,
    }).cast(schema.polars_schema("orders", COLUMNS["orders"]))  # type: ignore[arg-type]
    per_order = rng.integers(1, 5, n_orders)
    order = np.repeat(np.arange(n_orders), per_order)
    products = np.array([f"Product {i:02d}" for i in range(20)], dtype=object)
    raw["order_items"] = pl.DataFrame({
        "order_id": order_ids[order], "product": products[rng.zipf(1.5, order.size) % 20],
        "quantity": np.ones(order.size, dtype=np.int64), "amount": np.ones(order.size),
    }).cast(schema.polars_schema("order_items", COLUMNS["order_items"]))  # type: ignore[arg-type]
    return enrich(raw)


def bench_cross_sell(n_items: int) -> list[str]:
    frames, generate_s = timed(lambda: synthetic_items(n_items))
    ds = dataset(frames)
    year = Period(date(2025, 7, 1), date(2026, 6, 30))
    quarter = Period(date(2026, 4, 1), date(2026, 6, 30))
    rules, first = timed(lambda: cross_sell.association_rules(ds, frames, year, 0.001, 0.05))
    warm_year = statistics.median(timed(lambda: cross_sell.association_rules(ds, frames, year, 0.001, 0.05))[1]
                                  for _ in range(3))
    warm_quarter = statistics.median(timed(lambda: cross_sell.association_rules(ds, frames, quarter, 0.001, 0.05))[1]
                                     for _ in range(3))
    offers, next_s = timed(lambda: cross_sell.next_products(ds, frames, year, rules, above_lift=0.0))
    top = rules.row(0, named=True)
    targets, targets_s = timed(lambda: cross_sell.rule_targets(ds, frames, year, top["antecedent"], top["consequent"]))
    return [
        f"### Cross-sell over {frames.order_items.height:,} order items ({frames.orders.height:,} orders, "
        f"{frames.customers.height:,} customers; generated and enriched in {generate_s:.1f} s)", "",
        table(["what", "time", "rows"], [
            ["association_rules, a year, first call of the data version", ms(first), f"{rules.height:,} rules"],
            ["association_rules, a year, warm (median of 3)", ms(warm_year), f"{rules.height:,} rules"],
            ["association_rules, a quarter, warm (median of 3)", ms(warm_quarter), ""],
            ["next_products, every customer, top 3", ms(next_s), f"{offers.height:,} offers"],
            ["rule_targets of the top rule", ms(targets_s), f"{targets.height:,} customers"],
        ]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100], help="demo scales (1 = 2,000 customers)")
    parser.add_argument("--dates", type=int, default=5, help="as-of dates timed per scale (default 5)")
    parser.add_argument("--skip-churn", action="store_true", help="no churn-model section")
    parser.add_argument("--items", type=int, default=10_000_000, help="order items for the cross-sell section (0: none)")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args()

    facts_rows: list[list[str]] = []
    churn_rows: list[list[str]] | None = None if args.skip_churn else []
    problems: list[str] = []
    for scale in args.scales:
        bench_facts(scale, args.dates, facts_rows, problems, churn_rows)
    report = [
        "## Per-customer facts, churn model, cross-sell", "",
        f"polars {pl.__version__}, {args.dates} as-of dates per scale (30 June 2026 and every 30 days back); "
        "warm = median of the dates after the first.", "",
        "### customer_facts against plain pandas", "",
        table(["scale", "customers", "orders", "tickets", "crm first", "crm warm", "pandas prepare", "pandas warm",
               "pandas / crm"], facts_rows), "",
        "Values: " + ("crm and pandas agree on every fact of every customer and date." if not problems
                      else f"{len(problems)} MISMATCHES:\n" + "\n".join(f"- {p}" for p in problems)), "",
    ]
    if churn_rows is not None:
        report += [
            "### Churn model (as of 30 June 2026; 6 training dates 30 days apart; held back: 1 April 2026)", "",
            table(["scale", "training rows", "held-back rows", "held-back churn", "evaluate", "train",
                   "train: facts", "train: tree fit", "train: boosted fit", "AUC tree", "AUC boosted",
                   "AUC naive rule", "AUC recency", "tree P/R top 10%", "kept"], churn_rows),
            "",
        ]
    if args.items:
        report += [*bench_cross_sell(args.items), ""]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
