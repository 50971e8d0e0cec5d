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
    """Σ of money values in currency units, exact: each rounded to whole cents, summed as integers,
    then the float nearest to that many cents / 100. (Polars turns a division by a constant into a
    multiplication by its reciprocal, one unit in the last place off for about one total in eight,
    e.g. 352,520 cents -> 3525.2000000000003, pola-rs/polars#23741; a decimal division is exact.)"""
    return from_cents(cents(expr).sum())


def from_cents(expr: pl.Expr) -> pl.Expr:
    """Whole cents (an integer) as the nearest float in currency units (a decimal division, see
    ``cents_sum``)."""
    return (expr.cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64)
