"""The Churn risk and Next product figures on tiny frames: the values they draw."""

from __future__ import annotations

import polars as pl
import pytest

from crm import charts

RULES = pl.DataFrame({
    "antecedent": ["A", "B", "A"], "consequent": ["B", "A", "C"], "support": [0.25, 0.25, 0.1],
    "confidence": [0.5, 0.8, 0.2], "lift": [1.6, 1.6, 0.7],
})


def test_the_product_matrix_draws_lift_per_pair_and_leaves_the_rest_blank():
    trace = charts.build_product_matrix(RULES, "lift", ["A", "B", "C"]).data[0]
    assert [list(r) for r in trace.z] == [[None, 1.6, 0.7], [1.6, None, None], [None, None, None]]
    assert trace.zmid == 1 and (trace.zmin, trace.zmax) == (pytest.approx(0.4), pytest.approx(1.6))  # around 1
    assert [list(r) for r in trace.text] == [["", "1.60", "0.70"], ["1.60", "", ""], ["", "", ""]]
    assert [list(r) for r in trace.customdata] == [["", "25.0%", "10.0%"], ["25.0%", "", ""], ["", "", ""]]


def test_the_product_matrix_of_confidence_is_in_percent():
    trace = charts.build_product_matrix(RULES, "confidence", ["A", "B", "C"]).data[0]
    assert [list(r) for r in trace.z] == [[None, 50.0, 20.0], [80.0, None, None], [None, None, None]]
    assert (trace.zmin, trace.zmax) == (0, 100)


def test_the_importance_chart_draws_shares_largest_on_top():
    trace = charts.build_importance_chart(pl.DataFrame({"label": ["x", "y"], "importance": [0.75, 0.25]})).data[0]
    assert list(trace.y) == ["x", "y"] and list(trace.x) == [75.0, 25.0] and list(trace.text) == ["75%", "25%"]
