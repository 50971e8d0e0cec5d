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

import polars as pl

from crm.dataset import Dataset
from crm.filters import Period
from crm.metrics.money import cents_sum

RFM_WINDOW_DAYS = 365

Range = tuple[int, int]


@dataclass(frozen=True)
class Rule:
    """A name for the customers whose R, F and M scores each lie in a closed range."""

    name: str
    r: Range
    f: Range
    m: Range

    def expr(self) -> pl.Expr:
        """True for the rows whose ``r``, ``f``, ``m`` columns match."""
        return (pl.col("r").is_between(*self.r) & pl.col("f").is_between(*self.f) & pl.col("m").is_between(*self.m))


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
    Rule("high value", (4, 5), (4, 5), (4, 5)),
    Rule("new", (4, 5), (1, 2), (1, 5)),
    Rule("potential", (1, 3), (3, 5), (3, 5)),
    Rule("at risk", (1, 2), (1, 2), (1, 2)),
)
"""The cockpit's four tiers in precedence order; anything else is "others"."""

TIER_ACTIONS: dict[str, str] = {
    "high value": "A senior account manager, early access and loyalty events.",
    "potential": "A recall plan with personal offers and a call about their current needs.",
    "new": "A welcome guide, a satisfaction call within 7 days, related products.",
    "at risk": "Escalate to a service lead, a strong retention offer, ask why they left.",
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


def _name(rules: tuple[Rule, ...], otherwise: str) -> pl.Expr:
    """The first matching rule's name: built from the last rule up, so earlier rules take precedence."""
    expr: pl.Expr = pl.lit(otherwise)
    for rule in reversed(rules):
        expr = pl.when(rule.expr()).then(pl.lit(rule.name)).otherwise(expr)
    return expr


def _score(column: str, descending: bool) -> pl.Expr:
    """⌈5 × average rank / n⌉, ranked so that the better value gets the higher rank."""
    rank = pl.col(column).rank("average", descending=descending)
    return (5 * rank / pl.len()).ceil().cast(pl.Int8)


def rfm_scores(ds: Dataset, period: Period, window_days: int = RFM_WINDOW_DAYS) -> pl.DataFrame:
    """One row per scored customer, by customer_id: customer_key, recency_days, frequency,
    monetary, r, f, m, segment, tier."""
    end = period.end
    first = end - timedelta(days=window_days - 1)
    # grouped and sorted on the integer customer_key (numbered in customer_id order, see
    # crm.dataset.enrich): the same rows and order as by customer_id, without hashing or sorting text
    per_customer = (
        ds.orders.filter(pl.col("order_date").is_between(first, end) & pl.col("customer_id").is_not_null())
        .group_by("customer_key")
        .agg(
            customer_id=pl.col("customer_id").first(),
            recency_days=(pl.lit(end) - pl.col("order_date").max()).dt.total_days().cast(pl.Int64),
            frequency=pl.len().cast(pl.Int64),
            monetary=cents_sum(pl.col("amount")),
        )
    )
    return (
        per_customer.with_columns(
            r=_score("recency_days", descending=True),  # the most days since the last order ranks 1
            f=_score("frequency", descending=False),
            m=_score("monetary", descending=False),
        )
        .with_columns(segment=_name(SEGMENT_RULES, OTHER_SEGMENT), tier=_name(TIER_RULES, OTHER_TIER))
        .sort("customer_key")
        .collect()
    )


def segment_summary(scores: pl.DataFrame, by: str = "segment") -> pl.DataFrame:
    """Per segment (or tier): customers, revenue and its share, average recency, frequency and
    monetary, and what to do: the tier's suggested action; for a segment, that of ``main_tier``,
    the tier most of its customers are in. In rule order."""
    rules = SEGMENT_RULES if by == "segment" else TIER_RULES
    order = [r.name for r in rules] + [OTHER_SEGMENT if by == "segment" else OTHER_TIER]
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
        tier_rank = {name: i for i, name in enumerate([r.name for r in TIER_RULES] + [OTHER_TIER])}
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
