"""Money sums are exact: the same total in any order, to the cent."""

from __future__ import annotations

import polars as pl

from crm.money import cents_sum


def test_a_sum_of_cents_is_exact_in_any_order():
    values = [0.1] * 1_000 + [1234567.89, 0.07, 19.99] * 300
    # by hand: 1,000 × 0.10 + 300 × (1,234,567.89 + 0.07 + 19.99) = 100 + 300 × 1,234,587.95 = 370,376,485.00
    totals = {
        pl.DataFrame({"amount": values}).sample(fraction=1.0, shuffle=True, seed=seed).select(cents_sum(pl.col("amount"))).item()
        for seed in range(5)
    }
    assert totals == {370_376_485.0}


def test_weighted_amounts_are_rounded_per_deal():
    frame = pl.DataFrame({"amount": [10.01, 10.01], "p": [0.25, 0.25]})  # 2.5025 each: 2.50 in whole cents
    assert frame.select(cents_sum(pl.col("amount") * pl.col("p"))).item() == 5.0
    assert pl.DataFrame({"amount": []}, schema={"amount": pl.Float64}).select(cents_sum(pl.col("amount"))).item() == 0.0


def test_a_total_is_the_float_nearest_to_its_cents():
    # 3,525.20 = 352,520 cents; 352520 * 0.01 (the reciprocal) is 3525.2000000000003, not 3525.2
    totals = pl.DataFrame({"amount": [3000.00, 525.20, 0.10, 0.07]}).select(
        a=cents_sum(pl.col("amount").head(2)), b=cents_sum(pl.col("amount").tail(2)))
    assert totals.row(0) == (3525.2, 0.17)
