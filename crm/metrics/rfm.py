"""RFM scores as of the period end, the named segments and the four cockpit tiers.

R = whole days from the last order's date to the period's last day; F = orders
and M = amount over the orders dated within the 365 days ending on that day.
Customers with no order in those days are not scored. Each of R, F, M scores
1–5 as ⌈5 × r / n⌉: n scored customers, r the customer's average rank (1…n;
ties share the mean of their ranks, so tied customers always share a score),
ranked so that a higher score is better (the most recent, most frequent,
biggest spender ranks n). Segments and tiers come from ordered rule tables:
the first rule a customer matches names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from crm.dataset import Dataset
from crm.filters import Period
from crm.money import from_cents

RFM_WINDOW_DAYS = 365

Range = tuple[int, int]


@dataclass(frozen=True)
class Rule:
    """A name for the customers whose R, F and M scores each lie in a closed range."""

    name: str
    r: Range
    f: Range
    m: Range

    def matches(self, r: int, f: int, m: int) -> bool:
        """True when the scores lie in the rule's ranges."""
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


SEGMENT_RULES: tuple[Rule, ...] = (
    Rule("Champions", (4, 5), (4, 5), (4, 5)),
    Rule("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    Rule("Loyal", (2, 5), (3, 5), (3, 5)),
    Rule("New", (4, 5), (1, 1), (1, 1)),
    Rule("Promising", (3, 4), (1, 1), (1, 1)),
    Rule("Potential Loyalist", (3, 5), (1, 3), (1, 3)),
    Rule("Need Attention", (2, 3), (2, 3), (2, 3)),
    Rule("At Risk", (1, 2), (2, 5), (2, 5)),
    Rule("About to Sleep", (2, 3), (1, 2), (1, 2)),
    Rule("Lost", (1, 1), (1, 2), (1, 2)),
    Rule("Hibernating", (1, 2), (1, 2), (1, 2)),
)
"""The named segments in precedence order (DESIGN.md); a customer matching none is "Others"."""

TIER_RULES: tuple[Rule, ...] = (
    Rule("High value", (4, 5), (4, 5), (4, 5)),
    Rule("Newcomers", (4, 5), (1, 2), (1, 5)),
    Rule("Potential", (1, 3), (3, 5), (3, 5)),
    Rule("Churn risk", (1, 2), (1, 2), (1, 2)),
)
"""The cockpit's four tiers in precedence order; anything else is "others". Named so that no tier reads
like a segment (the segments have a "New" and an "At Risk")."""

FORMER_TIER_NAMES: dict[str, str] = {
    "high value": "High value", "new": "Newcomers", "potential": "Potential", "at risk": "Churn risk",
}
"""The tiers' earlier names, as older links and saved segments hold them."""

TIER_ACTIONS: dict[str, str] = {
    "High value": "A senior account manager, early access and loyalty events.",
    "Potential": "A recall plan with personal offers and a call about their current needs.",
    "Newcomers": "A welcome guide, a satisfaction call within 7 days, related products.",
    "Churn risk": "Escalate to a service lead, a strong retention offer, ask why they left.",
    "others": "Keep in the regular programme; watch for movement between tiers.",
}
"""What to do with each tier (DESIGN.md)."""

def _rules_text(rules: tuple[Rule, ...], otherwise: str) -> str:
    ranges = [f"{r.name} R{r.r[0]}–{r.r[1]} F{r.f[0]}–{r.f[1]} M{r.m[0]}–{r.m[1]}" for r in rules]
    return "first match of: " + "; ".join(ranges) + f"; else {otherwise}"


DEFINITIONS: dict[str, str] = {
    "rfm": "As of the period end: R = whole days since the last order; F = orders and M = order amount over the "
           "365 days ending then; customers without an order in those days are not scored. Each scored 1-5 as "
           "ceil(5 x average rank / n), ties sharing their mean rank, higher is better.",
    "rfm_segment": _rules_text(SEGMENT_RULES, "Others"),
    "tier": _rules_text(TIER_RULES, "others"),
}
"""What an export's manifest says about RFM, its segments and tiers (from the rule tables above)."""

OTHER_SEGMENT = "Others"
OTHER_TIER = "others"


def _first_match(rules: tuple[Rule, ...]) -> np.ndarray:
    """For each of the 125 (r, f, m) scores, at index (r - 1) × 25 + (f - 1) × 5 + (m - 1), the
    position of the first rule it matches (``len(rules)``: none): naming a customer is then a
    lookup, not a chain of rules."""
    return np.array([
        next((i for i, rule in enumerate(rules) if rule.matches(r, f, m)), len(rules))
        for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    ], dtype=np.int64)


def _quintiles(values: np.ndarray) -> np.ndarray:
    """⌈5 × r / n⌉ for each value, r its average rank in ascending order (1…n, ties share the mean
    of their ranks), in integers: exact at the quintile edges.

    The scores rise with the value, so after one sort they are four thresholds: a run of equal
    values at sorted positions lo…hi - 1 has ranks lo + 1…hi, mean (lo + 1 + hi) / 2, and
    ⌈5 (lo + 1 + hi) / 2n⌉ = (5 (lo + 1 + hi) + 2n - 1) // 2n; every value above the largest
    run scoring at most s scores more than s."""
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    ordered = np.sort(values)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], n)
    run_scores = (5 * (starts + 1 + ends) + 2 * n - 1) // (2 * n)
    score = np.ones(n, dtype=np.int8)
    for s in range(1, 5):
        at_most = np.flatnonzero(run_scores <= s)
        if at_most.size:
            score += values > ordered[starts[at_most[-1]]]
        else:
            score += 1
    return score


SEGMENT_NAMES: tuple[str, ...] = (*(r.name for r in SEGMENT_RULES), OTHER_SEGMENT)
"""The segments in rule order, "Others" last."""
TIER_NAMES: tuple[str, ...] = (*(r.name for r in TIER_RULES), OTHER_TIER)
_SEGMENT_OF_SCORES = _first_match(SEGMENT_RULES)
_TIER_OF_SCORES = _first_match(TIER_RULES)


def segment_positions(scores: pl.DataFrame) -> np.ndarray:
    """Each scored customer's segment as its position in ``SEGMENT_NAMES`` (from r, f and m)."""
    return _SEGMENT_OF_SCORES[_score_code(scores["r"].to_numpy(), scores["f"].to_numpy(), scores["m"].to_numpy())]


def _score_code(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (r.astype(np.int64) - 1) * 25 + (f.astype(np.int64) - 1) * 5 + (m.astype(np.int64) - 1)


def rfm_scores(ds: Dataset, period: Period, window_days: int = RFM_WINDOW_DAYS) -> pl.DataFrame:
    """One row per scored customer, by customer_id: customer_key, recency_days, frequency,
    monetary, r, f, m, segment, tier."""
    end = period.end
    first = end - timedelta(days=window_days - 1)
    # grouped on the integer customer_key (numbered in customer_id order, see crm.dataset.enrich) and
    # the orders are sorted by key and date there: each customer's last order in the window is its last row
    per_customer = (
        ds.orders.filter(pl.col("order_date").is_between(first, end) & pl.col("customer_id").is_not_null())
        .group_by("customer_key")
        .agg(
            customer_id=pl.col("customer_id").first(),
            recency_days=(pl.lit(end) - pl.col("order_date").last()).dt.total_days().cast(pl.Int64),
            frequency=pl.len().cast(pl.Int64),
            cents=pl.col("amount_cents").sum(),
        )
        .sort("customer_key")
        .collect()
    )
    return _with_scores(per_customer)


def _with_scores(per_customer: pl.DataFrame) -> pl.DataFrame:
    """``per_customer`` (customer_key, customer_id, recency_days, frequency and ``cents``, the
    monetary value in whole cents) with monetary, r, f, m, segment and tier."""
    # ranked so that a higher score is better: the most days since the last order ranks 1
    r = _quintiles(-per_customer["recency_days"].to_numpy())
    f = _quintiles(per_customer["frequency"].to_numpy())
    m = _quintiles(per_customer["cents"].to_numpy())  # cents rank as the amounts do
    code = _score_code(r, f, m)
    return per_customer.select(
        "customer_key", "customer_id", "recency_days", "frequency",
        monetary=from_cents(pl.col("cents")),
        r=pl.Series(r), f=pl.Series(f), m=pl.Series(m),
        segment=pl.Series(SEGMENT_NAMES, dtype=pl.String).gather(_SEGMENT_OF_SCORES[code]),
        tier=pl.Series(TIER_NAMES, dtype=pl.String).gather(_TIER_OF_SCORES[code]),
    )


def segment_summary(scores: pl.DataFrame, by: str = "segment") -> pl.DataFrame:
    """Per segment (or tier): customers, revenue and its share, average recency, frequency and
    monetary, and what to do: the tier's suggested action; for a segment, that of ``main_tier``,
    the tier most of its customers are in. In rule order."""
    order = list(SEGMENT_NAMES if by == "segment" else TIER_NAMES)
    total = float(scores["monetary"].sum()) if scores.height else 0.0
    summary = scores.group_by(by).agg(
        customers=pl.len().cast(pl.Int64),
        revenue=pl.col("monetary").sum(),
        avg_recency_days=pl.col("recency_days").mean(),
        avg_frequency=pl.col("frequency").mean(),
        avg_monetary=pl.col("monetary").mean(),
    ).with_columns(revenue_share=pl.when(pl.lit(total) > 0).then(pl.col("revenue") / total))
    out = pl.DataFrame({by: order, "_order": list(range(len(order)))}).join(summary, on=by, how="inner").sort("_order")
    out = out.drop("_order").with_columns(pl.col("revenue").round(2))
    if by == "segment":
        # what to do with a segment: the action of the tier most of its customers are in (ties: the
        # tier first in TIER_RULES)
        tier_rank = {name: i for i, name in enumerate(TIER_NAMES)}
        main = (
            scores.group_by("segment", "tier").agg(n=pl.len())
            .with_columns(rank=pl.col("tier").replace_strict(tier_rank, return_dtype=pl.Int64))
            .sort(["segment", "n", "rank"], descending=[False, True, False])
            .group_by("segment", maintain_order=True).first()
            .select("segment", main_tier="tier")
        )
        out = out.join(main, on="segment", how="left", maintain_order="left")
        return out.with_columns(action=pl.col("main_tier").replace_strict(TIER_ACTIONS, return_dtype=pl.String))
    return out.with_columns(action=pl.col("tier").replace_strict(TIER_ACTIONS, return_dtype=pl.String))
