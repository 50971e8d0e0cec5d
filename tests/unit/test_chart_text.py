"""Values from the store reach Plotly figures as text: no live link, image or tag in a label, tick or hover."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator

import plotly.graph_objects as go
import polars as pl
import pytest

from crm import charts
from crm.format import chart_text
from crm.segments import AXES

LINK = '<a href="http://x.example/h">Ann</a>'
IMAGE = "<img src=http://x.example/i.png onerror=alert(1)>"
HOSTILE = f"{LINK}{IMAGE}<b>&amp; R&D</b>"
"""An owner, stage, reason or id as a store may hold it: HTML Plotly would render, and an entity."""
OTHER = "Bea [Click](http://x.example/phish)"

_TAG = re.compile(r"<\s*/?\s*(a|img|b|span|script|i|em|sup|sub|s|u)\b", re.IGNORECASE)
_CUSTOMDATA = re.compile(r"%\{customdata(?:\[(\d+)\])?")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def shown_strings(fig: go.Figure) -> list[str]:
    """Every string of the figure (as Streamlit sends it: ``fig.to_json()``) that Plotly may draw: all of
    them except ``customdata``, which only shows where a hover or text template names it."""
    spec = json.loads(fig.to_json())
    shown = list(_strings(spec.get("layout", {})))
    for trace in spec.get("data", []):
        customdata = trace.get("customdata")
        shown += _strings({k: v for k, v in trace.items() if k != "customdata"})
        templates = [t for key in ("hovertemplate", "texttemplate") for t in _strings(trace.get(key))]
        for template in templates:
            for match in _CUSTOMDATA.finditer(template):
                index = match.group(1)
                for point in customdata or []:
                    shown += _strings(point if index is None else point[int(index)])
    return shown


def assert_shown_as_text(fig: go.Figure) -> None:
    """No string Plotly draws carries one of the hostile tags; the hostile value is drawn (escaped)."""
    shown = shown_strings(fig)
    assert any(chart_text(HOSTILE) in s for s in shown), "the hostile value does not reach the figure"
    # the funnel's own <b>…</b><br> around a stage name is markup we write; the value inside is escaped
    ours = [re.sub(r"^<b>(.*?)</b><br>", r"\1", s) for s in shown]
    tagged = [s for s in ours if _TAG.search(s)]
    assert not tagged, tagged


def test_chart_text_escapes_what_plotly_reads_as_markup_and_reads_back_the_same():
    escaped = chart_text(HOSTILE)
    assert "<" not in escaped and ">" not in escaped
    assert "&amp;amp;" in escaped and "R&amp;D" in escaped  # an entity in the value stays the characters it is
    assert '"' in escaped  # Plotly does not decode &quot;: quotes stay quotes
    assert html.unescape(escaped) == HOSTILE  # what Plotly shows (it decodes &lt; &gt; &amp;) is the value
    assert chart_text("Team Atlas") == "Team Atlas"


def _funnel(mode: str) -> go.Figure:
    frame = pl.DataFrame({
        "stage": ["lead", HOSTILE, "won"], "step": [1, 2, 3], "deals": [10, 6, 3],
        "amount": [1000.0, 600.0, 300.0], "reached": [10, 6, 3], "step_conversion": [None, 0.6, 0.5],
        "cumulative_conversion": [1.0, 0.6, 0.3], "dropped": [None, 4, 3],
    })
    return charts.build_funnel_chart(frame, mode)


def _breakdown() -> go.Figure:
    frame = pl.DataFrame({
        "owner": [HOSTILE, HOSTILE, OTHER, OTHER], "stage": ["lead", HOSTILE, "lead", HOSTILE],
        "step": [1, 2, 1, 2], "step_conversion": [None, 0.5, None, 0.25], "reached": [4, 2, 4, 1],
    })
    return charts.build_breakdown_heatmap(frame, "owner")


def _win_rate() -> go.Figure:
    frame = pl.DataFrame({"owner": [HOSTILE, OTHER], "win_rate": [0.5, 0.25], "won": [1, 1], "lost": [1, 3],
                          "previous_win_rate": [0.4, None]})
    return charts.build_win_rate_chart(frame, "owner")


def _rfm_scatter() -> go.Figure:
    points = pl.DataFrame({
        "customer_id": [HOSTILE, "C2"], "segment": ["Champions", "Lost"], "recency_days": [3, 300],
        "frequency": [9, 1], "monetary": [900.0, 20.0], "r": [5, 1], "f": [5, 1], "m": [5, 1],
    })
    density = pl.DataFrame(schema={"x_mid": pl.Float64, "y_mid": pl.Float64, "customers": pl.Int64})
    return charts.build_rfm_scatter(points, density, "recency_days", "monetary", AXES)


def _product_matrix(measure: str) -> go.Figure:
    rules = pl.DataFrame({"antecedent": [HOSTILE, OTHER], "consequent": [OTHER, HOSTILE], "support": [0.2, 0.2],
                          "confidence": [0.5, 0.4], "lift": [1.4, 1.4]})
    return charts.build_product_matrix(rules, measure, sorted([HOSTILE, OTHER]))


FIGURES: dict[str, Callable[[], go.Figure]] = {
    "funnel cohort": lambda: _funnel("cohort"),
    "funnel snapshot": lambda: _funnel("snapshot"),
    "breakdown heatmap": _breakdown,
    "velocity": lambda: charts.build_velocity_chart(
        pl.DataFrame({"stage": ["lead", HOSTILE], "median_days": [3.0, 5.0], "p75_days": [6.0, 9.0]})),
    "win rate": _win_rate,
    "lost reasons": lambda: charts.build_lost_reasons_chart(
        pl.DataFrame({"lost_reason": [HOSTILE, OTHER, None], "deals": [3, 2, 1], "amount": [300.0, 200.0, 50.0],
                      "previous_deals": [1, None, 0]})),
    "service breakdown": lambda: charts.build_service_breakdown_chart(
        pl.DataFrame({"agent": [HOSTILE, OTHER], "first_response_p50": [2.0, 3.0], "first_response_p90": [8.0, 9.0],
                      "tickets": [5, 7]}), "agent", "calendar hours"),
    "what moved": lambda: charts.build_what_moved_chart(
        pl.DataFrame({"team": [HOSTILE, OTHER], "rate_effect": [0.02, -0.01], "mix_effect": [0.0, 0.01]}),
        "team", "csat"),
    "churn by": lambda: charts.build_churn_by_chart(
        pl.DataFrame({"industry": [HOSTILE, OTHER], "churn_rate": [0.1, None], "churned": [1, 0],
                      "active_before": [10, 0], "churn_rate_previous": [0.2, None]}), "industry"),
    "rfm scatter": _rfm_scatter,
    "churn importance": lambda: charts.build_importance_chart(
        pl.DataFrame({"label": [f"segment {HOSTILE}", "days since the last order"], "importance": [0.6, 0.4]})),
    "product matrix lift": lambda: _product_matrix("lift"),
    "product matrix confidence": lambda: _product_matrix("confidence"),
}


@pytest.mark.parametrize("name", FIGURES)
def test_store_values_reach_the_figure_as_text(name):
    assert_shown_as_text(FIGURES[name]())


def test_the_check_finds_a_live_link():
    """The checker itself: a figure with the raw value in a label, or in a hover template's customdata, fails."""
    raw_label = go.Figure(go.Bar(x=[HOSTILE], y=[1]), layout={"title": {"text": chart_text(HOSTILE)}})
    raw_hover = go.Figure(go.Bar(x=[chart_text(HOSTILE)], y=[1], customdata=[[HOSTILE]],
                                 hovertemplate="%{customdata[0]}<extra></extra>"))
    for fig in (raw_label, raw_hover):
        with pytest.raises(AssertionError, match=r"x\.example"):
            assert_shown_as_text(fig)


def test_selections_still_get_the_raw_values_back():
    """A box over bars or cells hands the page ``customdata``: the store's own value, not its escaped label."""
    assert json.loads(_win_rate().to_json())["data"][0]["customdata"] == [HOSTILE, OTHER]
    cells = [point[0] for trace in json.loads(_breakdown().to_json())["data"] for point in trace["customdata"]]
    assert set(cells) == {HOSTILE, OTHER}


def test_an_empty_breakdown_value_reads_in_words():
    """The metrics' "(none)" (deals with no owner, churn of customers with no industry) reads "— no owner" on the
    chart, while a selection still gets "(none)" back."""
    fig = charts.build_win_rate_chart(
        pl.DataFrame({"owner": ["Ann", "(none)"], "win_rate": [0.5, 0.25], "won": [1, 1], "lost": [1, 3],
                      "previous_win_rate": [None, None]}), "owner")
    bars = json.loads(fig.to_json())["data"][0]
    assert bars["y"] == ["Ann", "— no owner"] and bars["customdata"] == ["Ann", "(none)"]
    churn = charts.build_churn_by_chart(
        pl.DataFrame({"industry": ["(none)"], "churn_rate": [0.1], "churned": [1], "active_before": [10],
                      "churn_rate_previous": [None]}), "industry")
    assert "— no industry" in json.dumps(json.loads(churn.to_json())["data"], ensure_ascii=False)
