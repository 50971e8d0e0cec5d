"""Next product: association rules between products from order items, and who to offer what.

A basket is an order stamped in the period (``ordered_at`` from its start to its end moment) with its
items' products (each product once per basket; an order without items, or items without a product, is no
basket). Over the N baskets, for a rule A → B between two products:

- support = baskets holding A and B / N;
- confidence = baskets holding A and B / baskets holding A;
- lift = confidence / (baskets holding B / N): above 1, B comes with A more often than on its own.

Rules have one product on each side, and only pairs bought together at least once are rules. A customer
"bought" a product when one of their orders stamped before the period end holds it (their history up to
then, not only the period); ``customers_missing`` of A → B counts the customers who bought A and never B.

How it counts (Polars, then small numpy matrices): products are numbered in name order, and each basket
becomes a bit mask of its products (one 64-bit word per 64 products), OR-ed per order; likewise each
customer's history. Baskets and customers share few distinct masks, so the pair counts are a product of
two small matrices, (distinct masks × products)ᵀ · (counts × the same), and everything per customer is
worked out once per distinct mask. The items are grouped per order once per data version; each call
joins the narrowed orders to those masks on a 64-bit hash of the order id (checked free of collisions
over the store's ids, else on the id itself).

The caller narrows the frames (filters and scope) and passes the ``Dataset`` with the ``Frames`` it was
narrowed from: the order items come from the frames (grouped per order once per data version), the orders
from the narrowed data, so the items of orders the narrowing left out are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crm.dataset import Dataset, Frames
from crm.filters import Period

MIN_SUPPORT = 0.01
MIN_CONFIDENCE = 0.1
NEXT_PRODUCTS = 3
SUPPORT_CHOICES: tuple[str, ...] = ("0.005", "0.01", "0.02", "0.05", "0.1")
"""Least supports the Next product page offers (shares of the period's baskets; its ``support`` URL parameter)."""
CONFIDENCE_CHOICES: tuple[str, ...] = ("0.1", "0.2", "0.3", "0.5", "0.7")
"""Least confidences the page offers (its ``confidence`` URL parameter)."""
PAGE_SUPPORT, PAGE_CONFIDENCE = "0.02", "0.2"
"""The page's defaults, 2% and 20%: on the demo every pair bought together more often than by chance is a rule."""
LIFT_CHOICES: tuple[str, ...] = ("above_1", "any")
"""Which rules by lift the page shows (its ``lift`` URL parameter): above 1 only (the default), or any."""
_WORD = 64

RULE_SCHEMA: dict[str, pl.DataType] = {
    "antecedent": pl.String(), "consequent": pl.String(), "baskets": pl.Int64(), "antecedent_baskets": pl.Int64(),
    "consequent_baskets": pl.Int64(), "both_baskets": pl.Int64(), "support": pl.Float64(), "confidence": pl.Float64(),
    "lift": pl.Float64(), "customers_missing": pl.Int64(),
}
"""The columns of ``association_rules``."""

NEXT_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(), "rank": pl.Int64(), "product": pl.String(), "antecedent": pl.String(),
    "confidence": pl.Float64(), "lift": pl.Float64(),
}
"""The columns of ``next_products``."""


@dataclass(frozen=True)
class _Purchases:
    """What was bought, as bit masks over ``products`` (sorted names; product i is bit i % 64 of word
    i // 64, columns ``w0``, ``w1``, …)."""

    products: list[str]
    baskets: pl.DataFrame
    """Per distinct basket mask: the words and ``n`` (baskets with exactly those products)."""
    customers: pl.DataFrame
    """Per customer who bought anything by the period end (in no particular order): customer_id and the
    words of their history."""

    @property
    def words(self) -> list[str]:
        return [f"w{i}" for i in range(max(1, -(-len(self.products) // _WORD)))]

    def bits(self, masks: pl.DataFrame) -> np.ndarray:
        """The masks (rows with the word columns) as a boolean matrix, rows × products."""
        columns = [
            (masks[word].to_numpy()[:, None] >> np.arange(_WORD, dtype=np.uint64)) & np.uint64(1)
            for word in self.words
        ]
        return np.hstack(columns)[:, : len(self.products)].astype(bool) if masks.height else np.zeros(
            (0, len(self.products)), dtype=bool)

    def has(self, product: str) -> pl.Expr:
        """True for mask rows holding ``product`` (never, for a product nobody bought)."""
        if product not in self.products:
            return pl.lit(False)
        code = self.products.index(product)
        bit = pl.lit(np.uint64(1) << np.uint64(code % _WORD), dtype=pl.UInt64)
        return (pl.col(f"w{code // _WORD}") & bit) != 0


@dataclass(frozen=True)
class _OrderMasks:
    """Per order with items: its products' mask (words ``w0``, …) under the join key ``key`` (the id's
    64-bit hash, or the id itself in the unlikely case two ids of the store share a hash)."""

    products: list[str]
    key: str
    masks: pl.DataFrame


def _order_masks(frames: Frames) -> _OrderMasks:
    """``_OrderMasks`` of every order with items, once per data version (``Frames.memo``): the costly step
    at 10M items is grouping the items by their text order id, done here and not per filter."""

    def compute() -> _OrderMasks:
        items = frames.order_items.filter(pl.col("product").is_not_null() & pl.col("order_id").is_not_null())
        products = items["product"].unique().sort().to_list()
        code = pl.col("product").replace_strict(products, list(range(len(products))), return_dtype=pl.Int64)
        powers = pl.Series([1 << i for i in range(_WORD)], dtype=pl.UInt64)
        words = [f"w{w}" for w in range(max(1, -(-len(products) // _WORD)))]
        masks = (
            items.lazy().select("order_id", _code=code)
            .select("order_id", *(
                pl.when(pl.col("_code") // _WORD == w).then(pl.lit(powers).gather(pl.col("_code") % _WORD))
                .otherwise(pl.lit(0, dtype=pl.UInt64)).alias(word)
                for w, word in enumerate(words)
            ))
            .group_by("order_id").agg(pl.col(words).bitwise_or())
            .collect()
        )
        if _hash_collides(pl.concat([masks["order_id"], frames.orders["order_id"]])):
            return _OrderMasks(products, "order_id", masks)
        return _OrderMasks(products, "_key", masks.select(pl.col("order_id").hash().alias("_key"), *words))

    return frames.memo(("crm.cross_sell.order_masks",), compute)


def _hash_collides(ids: pl.Series) -> bool:
    """True when two different ids share a 64-bit hash (then the masks are joined on the text)."""
    distinct = ids.drop_nulls().unique()
    return distinct.hash().n_unique() < distinct.len()


def products_ordered(frames: Frames) -> list[str]:
    """The products any order item in the store names: those a rule or a target list may name."""
    return list(_order_masks(frames).products)


def _purchases(ds: Dataset, frames: Frames, period: Period) -> _Purchases:
    """The narrowed orders stamped before the period end with their products, as masks: per distinct
    basket mask (orders in the period) and per customer (orders by the period end)."""
    order_masks = _order_masks(frames)
    key = pl.col("order_id").hash().alias("_key") if order_masks.key == "_key" else pl.col("order_id")
    words = [c for c in order_masks.masks.columns if c.startswith("w")]
    orders = (
        ds.orders.filter(pl.col("ordered_at") < period.end_ts)
        .select(key, "customer_key", "customer_id", in_period=pl.col("ordered_at") >= period.start_ts)
        .join(order_masks.masks.lazy(), on=order_masks.key, how="inner")
    )
    baskets = orders.filter(pl.col("in_period")).group_by(words).agg(n=pl.len().cast(pl.Int64))
    # grouped on the integer key (numbered in customer_id order, crm.dataset), the id taken along
    customers = (
        orders.filter(pl.col("customer_key").is_not_null() & pl.col("customer_id").is_not_null())
        .group_by("customer_key").agg(pl.col("customer_id").first(), pl.col(words).bitwise_or())
        .select("customer_id", *words)
    )
    basket_masks, customer_masks = pl.collect_all([baskets, customers])
    return _Purchases(order_masks.products, basket_masks.sort(words), customer_masks)


def _together(bits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """co[a, b] = Σ counts over the rows holding a and b (co[a, a]: rows holding a)."""
    # in floats, for the BLAS product (numpy multiplies integer matrices in plain loops): exact while the
    # counts stay below 2^53
    weighted = bits.astype(np.float64)
    return np.rint(weighted.T @ (weighted * counts[:, None].astype(np.float64))).astype(np.int64)


def association_rules(ds: Dataset, frames: Frames, period: Period,
                      min_support: float = MIN_SUPPORT, min_confidence: float = MIN_CONFIDENCE) -> pl.DataFrame:
    """One row per rule A → B with support >= ``min_support`` and confidence >= ``min_confidence``
    (fractions 0–1), strongest lift first (then confidence, then the names). Columns (``RULE_SCHEMA``):
    antecedent, consequent, baskets (N), antecedent_baskets, consequent_baskets, both_baskets, support,
    confidence, lift, customers_missing (bought the antecedent by the period end, never the consequent)."""
    bought = _purchases(ds, frames, period)
    counts = bought.baskets["n"].to_numpy()
    n = int(counts.sum())
    if n == 0:
        return pl.DataFrame(schema=RULE_SCHEMA)
    co = _together(bought.bits(bought.baskets), counts)
    history = bought.customers.group_by(bought.words).agg(n=pl.len().cast(pl.Int64))
    owned = _together(bought.bits(history), history["n"].to_numpy())
    a, b = np.nonzero(co)
    pair = a != b
    a, b = a[pair], b[pair]
    singles = np.diag(co)
    names = np.asarray(bought.products, dtype=object)
    rules = pl.DataFrame({
        "antecedent": names[a].tolist(), "consequent": names[b].tolist(), "baskets": np.full(a.size, n, dtype=np.int64),
        "antecedent_baskets": singles[a], "consequent_baskets": singles[b], "both_baskets": co[a, b],
        "customers_missing": np.diag(owned)[a] - owned[a, b],
    }, schema_overrides={"antecedent": pl.String, "consequent": pl.String})
    return (
        rules.with_columns(
            support=pl.col("both_baskets") / n,
            confidence=pl.col("both_baskets") / pl.col("antecedent_baskets"),
        )
        .with_columns(lift=pl.col("confidence") / (pl.col("consequent_baskets") / n))
        .filter((pl.col("support") >= min_support) & (pl.col("confidence") >= min_confidence))
        .sort(["lift", "confidence", "antecedent", "consequent"], descending=[True, True, False, False])
        .select(list(RULE_SCHEMA))
        .cast(RULE_SCHEMA)  # type: ignore[arg-type]
    )


def rule_targets(ds: Dataset, frames: Frames, period: Period, antecedent: str,
                 consequent: str) -> pl.DataFrame:
    """The customers who bought ``antecedent`` by the period end and never ``consequent``, most valuable
    first: customer_id, name, owner, region, segment, revenue (their order amount in the period; 0.0
    without), lifetime_revenue (by the period end). Ties: customer_id."""
    bought = _purchases(ds, frames, period)
    who = bought.customers.filter(bought.has(antecedent) & ~bought.has(consequent)).select("customer_id")
    end, start = period.end_ts, period.start_ts
    value = (
        ds.orders.filter((pl.col("ordered_at") < end) & pl.col("customer_id").is_in(who["customer_id"].implode()))
        .group_by("customer_id")
        .agg(revenue=pl.col("amount_cents").filter(pl.col("ordered_at") >= start).sum(),
             lifetime_revenue=pl.col("amount_cents").sum())
    )
    return (
        who.lazy().join(value, on="customer_id", how="left")
        .join(ds.customers.select("customer_id", "name", "owner", "region", "segment"), on="customer_id", how="left")
        .with_columns((pl.col("revenue", "lifetime_revenue").fill_null(0).cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64))
        .sort(["revenue", "lifetime_revenue", "customer_id"], descending=[True, True, False])
        .select("customer_id", "name", "owner", "region", "segment", "revenue", "lifetime_revenue")
        .collect()
    )


def next_products(ds: Dataset, frames: Frames, period: Period, rules: pl.DataFrame,
                  top: int = NEXT_PRODUCTS, customers: list[str] | None = None, above_lift: float = 1.0) -> pl.DataFrame:
    """Per customer (all who bought anything by the period end, or ``customers``), up to ``top`` products
    they never bought, each from the rule (of ``rules``, ``association_rules`` rows, those with lift above
    ``above_lift``: by default only rules where buying the antecedent makes the consequent more likely)
    with the highest confidence among the products they did buy. Columns (``NEXT_SCHEMA``): customer_id,
    rank (1 = best), product, antecedent, confidence, lift. Ranked by confidence, then lift, then product
    name; the rule behind a product is its best one (ties: higher lift, then antecedent name). Sorted by
    customer_id, rank."""
    bought = _purchases(ds, frames, period)
    people = bought.customers
    if customers is not None:
        people = people.filter(pl.col("customer_id").is_in(customers))
    patterns = people.select(bought.words).unique().sort(bought.words)
    p = len(bought.products)
    confidence, lift = np.full((p, p), -1.0), np.full((p, p), -1.0)
    code = {name: i for i, name in enumerate(bought.products)}
    for r in rules.filter(pl.col("lift") > above_lift).iter_rows(named=True):
        if r["antecedent"] in code and r["consequent"] in code:
            confidence[code[r["antecedent"]], code[r["consequent"]]] = r["confidence"]
            lift[code[r["antecedent"]], code[r["consequent"]]] = r["lift"]
    owns = bought.bits(patterns)
    best_conf = np.full(owns.shape, -1.0)
    best_lift = np.full(owns.shape, -1.0)
    best_from = np.full(owns.shape, -1, dtype=np.int64)
    for a in range(p):  # in name order, so a tie keeps the antecedent first by name
        holder = owns[:, a][:, None]
        better = holder & ((confidence[a] > best_conf) | ((confidence[a] == best_conf) & (lift[a] > best_lift)))
        better &= confidence[a] >= 0
        best_conf = np.where(better, confidence[a], best_conf)
        best_lift = np.where(better, lift[a], best_lift)
        best_from = np.where(better, a, best_from)
    row, product = np.nonzero((best_from >= 0) & ~owns)
    if row.size == 0:
        return pl.DataFrame(schema=NEXT_SCHEMA)
    names = np.asarray(bought.products, dtype=object)
    offers = (
        pl.DataFrame({
            "_pattern": row.astype(np.int64), "product": names[product].tolist(),
            "antecedent": names[best_from[row, product]].tolist(),
            "confidence": best_conf[row, product], "lift": best_lift[row, product],
        }, schema_overrides={"product": pl.String, "antecedent": pl.String})
        .sort(["_pattern", "confidence", "lift", "product"], descending=[False, True, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_pattern"))
        .filter(pl.col("rank") <= top)
    )
    return (
        people.join(patterns.with_row_index("_pattern").with_columns(pl.col("_pattern").cast(pl.Int64)),
                    on=bought.words, how="inner")
        .join(offers, on="_pattern", how="inner")
        .sort("customer_id", "rank")
        .select(list(NEXT_SCHEMA))
        .cast(NEXT_SCHEMA)  # type: ignore[arg-type]
    )
