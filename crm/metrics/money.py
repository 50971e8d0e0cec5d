"""Sums of money that come out the same on every run.

Polars adds floats in parallel, in an order that varies from run to run, so a
total of amounts could differ in its last bits (and, on a half cent, by a cent
once rounded). Amounts are money in one currency: each value is taken in whole
cents and the cents are added as integers, which is exact in any order.
"""

from __future__ import annotations

import polars as pl


def cents(expr: pl.Expr) -> pl.Expr:
    """A money value in whole cents (Int64; half a cent rounds to the even cent)."""
    return (expr * 100).round().cast(pl.Int64)


def cents_sum(expr: pl.Expr) -> pl.Expr:
    """Σ of money values in currency units, exact: each rounded to whole cents, summed as integers."""
    return cents(expr).sum() / 100
