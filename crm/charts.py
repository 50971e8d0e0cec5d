"""Figure builders: a small frame in, a plotly or altair figure out (plotly graph_objects: ~10x faster
to build than express; altair where a time brush is needed)."""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import altair as alt
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from crm.digest import Undigestable, digest
from crm.format import CURRENCY_SYMBOL, NO_VALUE, chart_text, missing_label

PALETTE = {"primary": "#2563eb", "muted": "#94a3b8", "good": "#16a34a", "bad": "#dc2626", "accent": "#f59e0b"}
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 80, "b": 10},
    "height": 340,
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    "title_y": 0.96,
    "hovermode": "x unified",
}
pio.templates.default = "plotly_white"
"""Every figure here uses the plotly_white template, set once as Plotly's default: naming it in each figure's
layout makes Plotly validate the whole template again for every figure (15–25 ms each, measured); a default
template costs about 1 ms and gives the same figure JSON (bench/RESULTS.md, "After the template fix")."""
_RIGHT_AXIS = {"overlaying": "y", "side": "right", "showgrid": False, "tickmode": "auto"}
"""A second y axis; tickmode auto, else Plotly syncs its ticks to the left grid (ticks like 12.5, 24.9)."""


P = ParamSpec("P")
R = TypeVar("R")
SHARED_FIGURES = 256
"""How many built figures ``shared`` keeps (least recently used dropped first)."""
def shared(build: Callable[P, R]) -> Callable[P, R]:
    """Build a figure once for the same inputs and hand the same figure to every caller after.

    Every session of a server draws the same figures for the same filters; building a Plotly figure
    (validating every property) was most of a cached page rerun's CPU (bench/RESULTS.md, "Figures built
    once"). The figure is keyed by an exact digest of the arguments (crm.digest: frames by their bytes),
    so the same data gives the same figure whichever session asks; arguments it cannot digest are built
    each time. Callers must not change a figure they get (st.plotly_chart does not: it copies it to send)."""
    cache: OrderedDict[bytes, R] = OrderedDict()
    lock = threading.Lock()
    signature = inspect.signature(build)

    @functools.wraps(build)
    def cached(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind(*args, **kwargs)  # f(x, "a") and f(x, title="a") are one call
            bound.apply_defaults()
            key = digest(bound.arguments)
        except Undigestable:
            return build(*args, **kwargs)
        with lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        figure = build(*args, **kwargs)  # outside the lock: two sessions may build the same figure once each
        with lock:
            cache[key] = figure
            while len(cache) > SHARED_FIGURES:
                cache.popitem(last=False)
        return figure

    cached.cache_clear = cache.clear  # type: ignore[attr-defined]
    return cached


def _labels(values: pl.Series | list, dimension: str = "value") -> list[str | None]:
    """Category values from the store (owners, stages, reasons…) as Plotly shows them: as text, never HTML,
    and the metrics' empty-value code (``NO_VALUE``) in words ("— no owner"). A selection gets the raw
    values back through ``customdata``, which Plotly does not display."""
    return [None if v is None else missing_label(dimension) if v == NO_VALUE else chart_text(v) for v in values]


PARTIAL_OPACITY = 0.4
"""Opacity of a partial bucket's bar (its line segment is dotted, its marker hollow)."""
PARTIAL_PATTERN = "/"
"""Hatching of a partial bucket's bar."""


def _complete(frame: pl.DataFrame) -> list[bool]:
    """Per bucket: whole (True) or partial; a frame without ``complete`` counts every bucket as whole."""
    return frame["complete"].to_list() if "complete" in frame.columns else [True] * frame.height


def _coverage_texts(frame: pl.DataFrame) -> list[str]:
    """Per bucket "" when whole, else how much of it the data covers: "1 of 31 days"."""
    if "complete" not in frame.columns:
        return [""] * frame.height
    return ["" if whole else f"{days} of {total} days"
            for whole, days, total in zip(frame["complete"], frame["covered_days"], frame["calendar_days"], strict=True)]


def _x_labels(frame: pl.DataFrame, column: str, fmt: str) -> list[str]:
    """Bucket labels; a partial bucket says so: "Dec 2026 · 1 of 31 days"."""
    return [f"{b.strftime(fmt)} · {note}" if note else b.strftime(fmt)
            for b, note in zip(frame[column], _coverage_texts(frame), strict=True)]


def _months(frame: pl.DataFrame) -> list[str]:
    return _x_labels(frame, "month", "%b %Y")


@dataclass(frozen=True)
class Sparkline:
    """A tile's sparkline: the whole months' values, and the partial months apart."""

    values: list[float]
    """Values of the whole months, oldest first (undefined months left out): the line ends on the last whole month."""
    partial: list[tuple[str, float | None]]
    """(label such as "Dec · 1 of 31 days", value so far) of each partial month, oldest first."""


def sparkline(trend: pl.DataFrame, key: str) -> Sparkline:
    """The sparkline of metric ``key`` from a monthly trend (crm.reports.kpi_trend / with_month_coverage)."""
    whole = _complete(trend)
    values = trend[key].to_list()
    short = _x_labels(trend, "month", "%b")  # a tile is narrow; its month is next to the period anyway
    return Sparkline([v for v, w in zip(values, whole, strict=True) if w and v is not None],
                     [(label, v) for label, v, w in zip(short, values, whole, strict=True) if not w])


def _hover_notes(frame: pl.DataFrame) -> list[str]:
    """Per bucket the hover line of a partial bucket ("" for a whole one), for ``%{hovertext}``."""
    return [f"<br><i>partial: {note}, not comparable with whole buckets</i>" if note else ""
            for note in _coverage_texts(frame)]


def _partial_bars(frame: pl.DataFrame) -> dict:
    """Marker settings that draw partial buckets' bars lighter and hatched."""
    whole = _complete(frame)
    return {"opacity": [1.0 if w else PARTIAL_OPACITY for w in whole],
            "pattern": {"shape": ["" if w else PARTIAL_PATTERN for w in whole]}}


def _add_trend_line(fig: go.Figure, frame: pl.DataFrame, x: list[str], y: list, name: str, color: str,
                    hovertemplate: str, dash: str | None = None, **trace: object) -> None:
    """A line over buckets: solid through whole buckets, dotted into partial ones, whose markers are
    hollow with a hover note (partial buckets are drawn, never joined to whole ones as if they were one)."""
    whole = _complete(frame)
    near = [not whole[i] or (i > 0 and not whole[i - 1]) or (i + 1 < len(whole) and not whole[i + 1])
            for i in range(len(whole))]
    line = {"color": color, **({"dash": dash} if dash else {})}
    if not all(whole):
        fig.add_scatter(x=x, y=[v if n else None for v, n in zip(y, near, strict=True)], mode="lines",
                        line={"color": color, "dash": "dot"}, legendgroup=name, showlegend=False,
                        hoverinfo="skip", name=f"{name} (partial)", **trace)
    fig.add_scatter(x=x, y=[v if w else None for v, w in zip(y, whole, strict=True)], name=name,
                    mode="lines+markers", line=line, legendgroup=name, hovertemplate=hovertemplate, **trace)
    if not all(whole):
        custom = trace.pop("customdata", None)
        fig.add_scatter(x=x, y=[None if w else v for v, w in zip(y, whole, strict=True)], mode="markers",
                        marker={"color": color, "symbol": "circle-open", "size": 9, "line": {"width": 2}},
                        legendgroup=name, showlegend=False, name=f"{name} (partial)",
                        hovertext=_hover_notes(frame), customdata=custom,
                        hovertemplate=hovertemplate.replace("<extra>", "%{hovertext}<extra>", 1), **trace)


@shared
def build_revenue_chart(frame: pl.DataFrame) -> go.Figure:
    """Revenue won per month (bars) with the same month a year earlier (line); a partial month (see
    ``complete``) is a lighter, hatched bar labelled with the days it covers."""
    x = _months(frame)
    fig = go.Figure()
    fig.add_bar(x=x, y=frame["revenue_won"].to_list(), name="Revenue won",
                marker={"color": PALETTE["primary"], **_partial_bars(frame)},
                customdata=frame["won_deals"].to_list(), hovertext=_hover_notes(frame),
                hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}} from %{{customdata}} deals%{{hovertext}}<extra></extra>")
    fig.add_scatter(x=x, y=frame["revenue_won_previous_year"].to_list(), name="Same month last year",
                    mode="lines+markers", line={"color": PALETTE["muted"], "dash": "dot"},
                    hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}}<extra>last year</extra>")
    fig.update_layout(title="Revenue won by month", yaxis={"tickprefix": CURRENCY_SYMBOL, "tickformat": "~s"},
                      **_LAYOUT)
    return fig


@shared
def build_satisfaction_chart(frame: pl.DataFrame) -> go.Figure:
    """NPS (left axis, −100…100) and CSAT (right axis, %) per month, response counts on hover."""
    x = _months(frame)
    fig = go.Figure()
    _add_trend_line(fig, frame, x, frame["nps"].to_list(), "NPS", PALETTE["primary"],
                    "NPS %{y:.1f} (n=%{customdata})<extra></extra>", customdata=frame["nps_responses"].to_list())
    _add_trend_line(fig, frame, x, [None if v is None else 100 * v for v in frame["csat"].to_list()], "CSAT",
                    PALETTE["accent"], "CSAT %{y:.1f}% (n=%{customdata})<extra></extra>", yaxis="y2",
                    customdata=frame["csat_responses"].to_list())
    fig.update_layout(
        title="NPS and CSAT by month",
        yaxis={"title": "NPS", "range": [-100, 100], "zeroline": True},
        yaxis2={"title": "CSAT %", "range": [0, 100], **_RIGHT_AXIS},
        **_LAYOUT,
    )
    return fig


@shared
def build_service_chart(frame: pl.DataFrame) -> go.Figure:
    """Tickets created per month (bars), backlog at month end and SLA breach rate (lines)."""
    x = _months(frame)
    fig = go.Figure()
    fig.add_bar(x=x, y=frame["tickets_created"].to_list(), name="Tickets created",
                marker={"color": PALETTE["muted"], **_partial_bars(frame)}, hovertext=_hover_notes(frame),
                hovertemplate="%{y:,}%{hovertext}<extra>tickets created</extra>")
    _add_trend_line(fig, frame, x, frame["backlog"].to_list(), "Backlog at month end", PALETTE["primary"],
                    "%{y:,}<extra>backlog</extra>")
    _add_trend_line(fig, frame, x, [None if v is None else 100 * v for v in frame["sla_breach_rate"].to_list()],
                    "SLA breach rate", PALETTE["bad"], "%{y:.1f}%<extra>SLA breaches</extra>", yaxis="y2")
    fig.update_layout(
        title="Tickets, backlog and SLA breaches by month",
        yaxis={"title": "Tickets"},
        yaxis2={"title": "SLA breach rate", "rangemode": "tozero", "ticksuffix": "%", **_RIGHT_AXIS},
        **_LAYOUT,
    )
    return fig


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


TEXT_DARK, TEXT_LIGHT = "#0f172a", "#ffffff"


def _luminance(rgb: str) -> float:
    """WCAG relative luminance (0 black … 1 white) of ``rgb(r, g, b)`` or ``#rrggbb``."""
    if rgb.startswith("#"):
        channels = [int(rgb[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    else:
        channels = [float(c) / 255 for c in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_text_colors(values: list[float], colorscale: str, low: float, high: float) -> list[str]:
    """Per value, the text colour readable on the cell the colour scale gives it (``low`` … ``high`` is
    the scale's cmin … cmax): white on dark red, dark green or dark blue, near-black on light cells."""
    from plotly.colors import sample_colorscale

    span = (high - low) or 1.0
    fills = sample_colorscale(colorscale, [min(1.0, max(0.0, (v - low) / span)) for v in values]) if values else []
    dark = _luminance(TEXT_DARK)
    # the text colour with the larger WCAG contrast ratio against the cell
    return [TEXT_LIGHT if 1.05 / (_luminance(f) + 0.05) > (_luminance(f) + 0.05) / (dark + 0.05) else TEXT_DARK
            for f in fills]


@shared
def build_funnel_chart(funnel: pl.DataFrame, mode: str, selected_steps: tuple[int, ...] = ()) -> go.Figure:
    """Horizontal funnel: reached per step with step and cumulative conversion written on the bars,
    and the drop-off from the previous step as a red segment. A box selection returns the steps under it."""
    stages = _labels(funnel["stage"])
    steps = funnel["step"].to_list()
    fig = go.Figure()
    if mode == "snapshot":
        fig.add_bar(
            y=stages, x=funnel["deals"].to_list(), orientation="h", name="Open deals", marker_color=PALETTE["primary"],
            customdata=steps,
            text=[f"{d:,} deals · {CURRENCY_SYMBOL}{a:,.0f}" for d, a in zip(funnel["deals"], funnel["amount"], strict=True)],
            textposition="auto", hovertemplate="%{y}: %{x:,} open deals<extra></extra>",
        )
        title = "Open pipeline by stage at the period end"
    else:
        reached = funnel["reached"].to_list()
        stages = [
            f"<b>{name}</b><br>{r:,} · {'step ' + _pct(sc) + ' · ' if i else ''}{_pct(c)} of first"
            for i, (name, r, sc, c) in enumerate(zip(stages, reached, funnel["step_conversion"],
                                                     funnel["cumulative_conversion"], strict=True))
        ]
        fig.add_bar(y=stages, x=reached, orientation="h", name="Reached", marker_color=PALETTE["primary"],
                    customdata=steps, text=[f"{r:,}" for r in reached], textposition="inside",
                    hovertemplate="%{x:,} deals reached<extra></extra>")
        dropped = [0 if d is None else d for d in funnel["dropped"].to_list()]
        fig.add_bar(y=stages, x=dropped, orientation="h", name="Dropped since previous step",
                    marker_color="rgba(220,38,38,0.35)", customdata=steps,
                    text=[f"−{d:,}" if d else "" for d in dropped], textposition="inside",
                    hovertemplate="%{x:,} lost from the previous step<extra></extra>")
        title = "Strict funnel (in-order paths only)" if mode == "strict" else "Cohort funnel (deals created in the period)"
    if selected_steps:
        chosen = [i for i, s in enumerate(steps) if s in selected_steps]
        fig.update_traces(selectedpoints=chosen, unselected={"marker": {"opacity": 0.35}})
    fig.update_layout(barmode="stack", title=title, dragmode="select", yaxis={"autorange": "reversed"},
                      xaxis={"title": "Deals"}, **{**_LAYOUT, "hovermode": "closest"})
    return fig


@shared
def build_breakdown_heatmap(breakdown: pl.DataFrame, by: str) -> go.Figure:
    """Step conversion per ``by`` group (rows) and funnel step (columns) as coloured squares, worst red.

    The first step (grey) shows its deal count: it has no conversion. Cells are selected by dragging a box over them.
    """
    groups = _labels(breakdown[by].unique(maintain_order=True), by)
    first, rest = breakdown.filter(pl.col("step") == 1), breakdown.filter(pl.col("step") > 1)
    fig = go.Figure()
    for part, coloured in ((first, False), (rest, True)):
        values = part["step_conversion"].to_list()
        marker: dict = {"symbol": "square", "size": 46}
        shades = [0.0 if v is None else 100 * v for v in values]
        if coloured:
            low, high = min(shades, default=0.0), max(shades, default=100.0)
            marker |= {"color": shades, "colorscale": "RdYlGn", "cmin": low, "cmax": high,
                       "showscale": True, "colorbar": {"title": "step %", "thickness": 12}}
        else:
            marker |= {"color": "#e2e8f0"}
        fig.add_scatter(
            x=_labels(part["stage"]), y=_labels(part[by], by), mode="markers+text", marker=marker, showlegend=False,
            text=[f"{r:,}" for r in part["reached"]] if not coloured else [_pct(v) for v in values],
            textfont={"size": 11, "color": contrast_text_colors(shades, "RdYlGn", low, high) if coloured else TEXT_DARK},
            customdata=list(zip(part[by].to_list(), part["step"].to_list(), part["reached"].to_list(), strict=True)),
            hovertemplate=f"{by} %{{y}}<br>%{{x}}: %{{customdata[2]:,}} deals<extra></extra>",
        )
    fig.update_layout(title=f"Step conversion by {by} (first column: deals)", dragmode="select",
                      **{**_LAYOUT, "height": max(260, 90 + 52 * len(groups)), "hovermode": "closest"},
                      yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array",
                             "categoryarray": groups},
                      xaxis={"type": "category", "side": "top", "categoryorder": "array",
                             "categoryarray": _labels(breakdown["stage"].unique(maintain_order=True))})
    return fig


@shared
def build_velocity_chart(velocity: pl.DataFrame) -> go.Figure:
    """Median and p75 days in each stage."""
    fig = go.Figure()
    stages = _labels(velocity["stage"])
    fig.add_bar(x=stages, y=velocity["median_days"].to_list(), name="Median",
                marker_color=PALETTE["primary"], hovertemplate="%{y:.1f} days<extra>median</extra>")
    fig.add_bar(x=stages, y=velocity["p75_days"].to_list(), name="p75",
                marker_color=PALETTE["muted"], hovertemplate="%{y:.1f} days<extra>p75</extra>")
    fig.update_layout(title="Time in stage (days)", barmode="group", yaxis={"title": "Days"}, **_LAYOUT)
    return fig


@shared
def build_win_cycle_trend(trend: pl.DataFrame) -> go.Figure:
    """Win rate (%) and median sales cycle (days) per month."""
    x = _months(trend)
    fig = go.Figure()
    _add_trend_line(fig, trend, x, [None if v is None else 100 * v for v in trend["win_rate"].to_list()], "Win rate",
                    PALETTE["good"], "%{y:.1f}%<extra>win rate</extra>")
    _add_trend_line(fig, trend, x, trend["sales_cycle_days"].to_list(), "Sales cycle (median days)", PALETTE["accent"],
                    "%{y:.1f} days<extra>sales cycle</extra>", yaxis="y2")
    fig.update_layout(title="Win rate and sales cycle by month", yaxis={"title": "Win rate %", "rangemode": "tozero"},
                      yaxis2={"title": "Days", "rangemode": "tozero", **_RIGHT_AXIS}, **_LAYOUT)
    return fig


@shared
def build_win_rate_chart(win_loss: pl.DataFrame, by: str) -> go.Figure:
    """Win rate per group (bars, worst first) with the previous period as markers; selectable bars."""
    fig = go.Figure()
    groups = _labels(win_loss[by], by)
    fig.add_bar(y=groups, x=[100 * v for v in win_loss["win_rate"].to_list()], orientation="h", name="This period",
                marker_color=PALETTE["primary"], customdata=win_loss[by].to_list(),
                text=[f"{100 * v:.1f}% of {w + lost_:,}" for v, w, lost_ in
                      zip(win_loss["win_rate"], win_loss["won"], win_loss["lost"], strict=True)],
                textposition="auto", hovertemplate="%{y}: %{x:.1f}%<extra></extra>")
    fig.add_scatter(y=groups, x=[None if v is None else 100 * v for v in win_loss["previous_win_rate"].to_list()],
                    mode="markers", name="Previous period", marker={"color": PALETTE["bad"], "symbol": "line-ns-open",
                                                                      "size": 18, "line": {"width": 3}},
                    hovertemplate="%{y}: %{x:.1f}%<extra>previous</extra>")
    fig.update_layout(title=f"Win rate by {by}", dragmode="select", xaxis={"title": "Win rate %", "rangemode": "tozero"},
                      yaxis={"type": "category"},
                      **{**_LAYOUT, "height": max(260, 80 + 32 * len(groups)), "hovermode": "closest"})
    return fig


@shared
def build_lost_reasons_chart(reasons: pl.DataFrame) -> go.Figure:
    """Lost reasons ranked by deals (bars) with the previous period's count (markers)."""
    fig = go.Figure()
    labels = _labels(reasons["lost_reason"], "reason given")
    fig.add_bar(y=labels, x=reasons["deals"].to_list(), orientation="h", name="This period",
                marker_color=PALETTE["bad"], customdata=reasons["amount"].to_list(),
                hovertemplate=f"%{{y}}: %{{x:,}} deals, {CURRENCY_SYMBOL}%{{customdata:,.0f}}<extra></extra>")
    fig.add_scatter(y=labels, x=reasons["previous_deals"].to_list(), mode="markers", name="Previous period",
                    marker={"color": PALETTE["muted"], "symbol": "diamond", "size": 10})
    fig.update_layout(title="Lost reasons", yaxis={"autorange": "reversed", "type": "category"},
                      xaxis={"title": "Deals lost"}, **{**_LAYOUT, "hovermode": "closest"})
    return fig


@shared
def build_forecast_chart(forecast: pl.DataFrame) -> go.Figure:
    """Open pipeline by expected close month: amount and weighted amount; overdue months in red."""
    x = [m.strftime("%b %Y") for m in forecast["month"]]
    overdue = forecast["overdue"].to_list()
    fig = go.Figure()
    fig.add_bar(x=x, y=forecast["amount"].to_list(), name="Open amount", marker_color="rgba(148,163,184,0.6)",
                hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}}<extra>open amount</extra>")
    fig.add_bar(x=x, y=forecast["weighted_amount"].to_list(), name="Weighted (× stage probability)",
                marker_color=[PALETTE["bad"] if o else PALETTE["primary"] for o in overdue],
                hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}}<extra>weighted</extra>")
    fig.update_layout(title="Forecast by expected close month (red: expected before this month)", barmode="overlay",
                      yaxis={"tickprefix": CURRENCY_SYMBOL, "tickformat": "~s"}, **_LAYOUT)
    return fig


def point_customdata(point: dict) -> list:
    """A selected point's customdata as a list (Streamlit hands it back as a list, a scalar or {"0": v})."""
    data = point.get("customdata")
    if data is None:
        return []
    if isinstance(data, dict):
        return [data[k] for k in sorted(data, key=lambda k: int(k) if str(k).isdigit() else 0)]
    if isinstance(data, list | tuple):
        return list(data)
    return [data]


BRUSH = "brush"
"""The name of the x-interval selection on time trends (the page turns it into the period filter)."""


def _score_scale(kind: str) -> tuple[float, str, list[float]]:
    """Factor to the shown unit, axis title and axis domain for NPS (−100…100) or CSAT (%)."""
    return (1.0, "NPS", [-100, 100]) if kind == "nps" else (100.0, "CSAT %", [0, 100])


@shared
def build_score_trend_chart(trend: pl.DataFrame, kind: str, grain: str, compared_label: str) -> alt.LayerChart:
    """NPS or CSAT per bucket: the score line with its 95% interval band, hollow points where n < 30,
    the comparison as a dashed line, and the responses per bucket as grey bars. A partial bucket
    (``complete`` false) is reached by a dotted line, its point hollow and faint, with no interval
    band, and says how many days it covers on hover. Dragging across the chart selects a time range
    (``BRUSH``)."""
    factor, title, domain = _score_scale(kind)
    data = trend.select(
        "bucket", "n", "low_confidence", "compared_n",
        score=pl.col("score") * factor, low=pl.col("low").clip(*domain_bounds(kind)) * factor,
        high=pl.col("high").clip(*domain_bounds(kind)) * factor, compared=pl.col("compared_score") * factor,
        confidence=pl.when(pl.col("low_confidence")).then(pl.lit("low (n < 30)")).otherwise(pl.lit("ok")),
        complete=pl.Series(_complete(trend), dtype=pl.Boolean),
        covers=pl.Series([f"partial: {n}, not comparable with whole {grain}s" if n else f"the whole {grain}"
                          for n in _coverage_texts(trend)], dtype=pl.String),
        note=pl.Series(_coverage_texts(trend), dtype=pl.String),
    )
    period = "Week of" if grain == "week" else "Month"
    # one tick per bucket (not Vega's default of several per month, which repeats the labels)
    ticks = {"interval": "week" if grain == "week" else "month", "step": 1}
    x = alt.X("bucket:T", title=None,
              axis=alt.Axis(format="%d %b" if grain == "week" else "%b %Y", tickCount=ticks, labelOverlap=True))
    tooltip = [alt.Tooltip("bucket:T", title=period, format="%d %b %Y"), alt.Tooltip("score:Q", title=title, format=".1f"),
               alt.Tooltip("low:Q", title="95% low", format=".1f"), alt.Tooltip("high:Q", title="95% high", format=".1f"),
               alt.Tooltip("n:Q", title="Responses"), alt.Tooltip("confidence:N", title="Confidence"),
               alt.Tooltip("compared:Q", title=compared_label, format=".1f"), alt.Tooltip("covers:N", title="Covers")]
    brush = alt.selection_interval(name=BRUSH, encodings=["x"])
    base = alt.Chart(data).encode(x=x)
    whole = base.transform_filter("datum.complete")
    # the interval of a partial bucket (a few days of responses) is not drawn: its width says little
    band = whole.mark_area(opacity=0.18, color=PALETTE["primary"]).encode(
        y=alt.Y("low:Q", title=title, scale=alt.Scale(domain=domain)), y2="high:Q")
    compared = base.mark_line(strokeDash=[5, 4], color=PALETTE["muted"]).encode(y="compared:Q")
    dotted = base.mark_line(color=PALETTE["primary"], strokeDash=[2, 3]).encode(y="score:Q")
    line = whole.mark_line(color=PALETTE["primary"]).encode(y="score:Q")
    points = base.mark_point(size=70, color=PALETTE["primary"], strokeWidth=2).encode(
        y="score:Q",
        fill=alt.condition("datum.low_confidence || !datum.complete", alt.value("white"), alt.value(PALETTE["primary"])),
        opacity=alt.condition("datum.complete", alt.value(1.0), alt.value(PARTIAL_OPACITY)),
        tooltip=tooltip,
    ).add_params(brush)
    bar_size = max(2, min(30, 260 // max(1, trend.height)))
    most = max(1, int(trend.get_column("n").cast(pl.Int64).max() or 1))  # type: ignore[arg-type]
    # responses as bars on their own right-hand axis, kept to the lower quarter of the plot
    counts = base.mark_bar(color=PALETTE["muted"], size=bar_size).encode(
        y=alt.Y("n:Q", title="Responses", scale=alt.Scale(domain=[0, 4 * most]),
                axis=alt.Axis(orient="right", tickCount=2, grid=False)),
        opacity=alt.condition("datum.complete", alt.value(0.45), alt.value(0.15)),
        tooltip=tooltip)
    notes = base.transform_filter("!datum.complete").mark_text(dy=-16, fontSize=11, color="#475569").encode(
        y="score:Q", text="note:N")
    scores = alt.layer(band, compared, dotted, line, points, notes)
    return (alt.layer(counts, scores).resolve_scale(y="independent")
            .properties(height=300, width="container", title=f"{title} by {grain}"))


def domain_bounds(kind: str) -> tuple[float, float]:
    """The range a score can take in code units: NPS −100…100, CSAT 0…1."""
    return (-100.0, 100.0) if kind == "nps" else (0.0, 1.0)


@shared
def build_nps_composition_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """Share of promoters, passives and detractors per bucket (stacked to 100%), n on hover."""
    x = _bucket_labels(trend, grain)
    n = trend["n"].to_list()
    fig = go.Figure()
    for part, color in (("detractors", PALETTE["bad"]), ("passives", PALETTE["muted"]), ("promoters", PALETTE["good"])):
        counts = trend[part].to_list()
        fig.add_bar(x=x, y=[100 * c / t if t else None for c, t in zip(counts, n, strict=True)], name=part.capitalize(),
                    marker={"color": color, **_partial_bars(trend)}, customdata=counts, hovertext=_hover_notes(trend),
                    hovertemplate="%{y:.1f}% (%{customdata} responses)%{hovertext}<extra>" + part + "</extra>")
    fig.update_layout(title="NPS composition", barmode="stack", yaxis={"title": "% of responses", "range": [0, 100]},
                      **_LAYOUT)
    return fig


@shared
def build_what_moved_chart(moved: pl.DataFrame, by: str, kind: str) -> go.Figure:
    """Each group's contribution to the change: the part from its own score (rate) and from its share of
    responses (mix), stacked; largest first, in score units (NPS points or CSAT percentage points)."""
    factor = 1.0 if kind == "nps" else 100.0
    groups = _labels(moved[by], by)[::-1]
    fig = go.Figure()
    for column, name, color in (("rate_effect", "Own score change", PALETTE["primary"]),
                                ("mix_effect", "Share of responses (mix)", PALETTE["accent"])):
        x = [None if v is None else factor * v for v in moved[column].to_list()[::-1]]  # None: undefined change
        fig.add_bar(y=groups, x=x, name=name, orientation="h",
                    marker_color=color, hovertemplate="%{x:+.2f}<extra>" + name + "</extra>")
    unit = "points" if kind == "nps" else "pp"
    fig.update_layout(title=f"What moved {kind.upper()} against the previous period ({unit})", barmode="relative",
                      xaxis={"zeroline": True, "zerolinecolor": "#334155"}, **{**_LAYOUT, "hovermode": "y unified"})
    return fig


def _bucket_labels(frame: pl.DataFrame, grain: str) -> list[str]:
    return _x_labels(frame, "bucket", "%d %b %Y" if grain == "week" else "%b %Y")


@shared
def build_percentile_trend(trend: pl.DataFrame, measure: str, grain: str, unit: str) -> go.Figure:
    """p50 and p90 of first response or resolution (``measure``) per bucket, in hours."""
    x = _bucket_labels(trend, grain)
    title = "First response" if measure == "first_response" else "Resolution"
    fig = go.Figure()
    for pct, color, dash in (("p50", PALETTE["primary"], None), ("p90", PALETTE["accent"], "dot")):
        _add_trend_line(fig, trend, x, trend[f"{measure}_{pct}"].to_list(), pct, color,
                        "%{y:.1f} h<extra>" + pct + "</extra>", dash=dash)
    fig.update_layout(title=f"{title} time by {grain} ({unit})", yaxis={"title": "Hours", "rangemode": "tozero"},
                      **_LAYOUT)
    return fig


@shared
def build_service_breakdown_chart(times: pl.DataFrame, by: str, unit: str) -> go.Figure:
    """First response p50 (bars) and p90 (markers) per group, slowest at the top."""
    groups = _labels(times[by], by)[::-1]
    fig = go.Figure()
    fig.add_bar(y=groups, x=times["first_response_p50"].to_list()[::-1], orientation="h", name="p50",
                marker_color=PALETTE["primary"], customdata=times["tickets"].to_list()[::-1],
                hovertemplate="%{y}: p50 %{x:.1f} h (%{customdata} tickets)<extra></extra>")
    fig.add_scatter(y=groups, x=times["first_response_p90"].to_list()[::-1], mode="markers", name="p90",
                    marker={"color": PALETTE["accent"], "size": 10, "symbol": "diamond"},
                    hovertemplate="%{y}: p90 %{x:.1f} h<extra></extra>")
    fig.update_layout(title=f"First response by {by} ({unit})", xaxis={"title": "Hours", "rangemode": "tozero"},
                      **{**_LAYOUT, "hovermode": "closest", "height": max(260, 60 + 26 * len(groups))})
    return fig


@shared
def build_distribution_chart(histogram: pl.DataFrame, unit: str) -> go.Figure:
    """Tickets per time band, first response and resolution side by side."""
    fig = go.Figure()
    for measure, color in (("first response", PALETTE["primary"]), ("resolution", PALETTE["muted"])):
        part = histogram.filter(pl.col("measure") == measure)
        fig.add_bar(x=part["band"].to_list(), y=part["tickets"].to_list(), name=measure.capitalize(),
                    marker_color=color, hovertemplate="%{x}: %{y:,} tickets<extra>" + measure + "</extra>")
    fig.update_layout(title=f"How long tickets took ({unit})", barmode="group", yaxis={"title": "Tickets"},
                      **{**_LAYOUT, "hovermode": "closest"})
    return fig


@shared
def build_backlog_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """Tickets created and resolved per bucket (bars) and the backlog at each bucket's end (line)."""
    x = _bucket_labels(trend, grain)
    fig = go.Figure()
    for column, name, color in (("created", "Created", PALETTE["muted"]), ("resolved", "Resolved", PALETTE["good"])):
        fig.add_bar(x=x, y=trend[column].to_list(), name=name, marker={"color": color, **_partial_bars(trend)},
                    hovertext=_hover_notes(trend), hovertemplate="%{y:,}%{hovertext}<extra>" + name.lower() + "</extra>")
    _add_trend_line(fig, trend, x, trend["backlog"].to_list(), "Open at the end", PALETTE["primary"],
                    "%{y:,}<extra>open at the end</extra>", yaxis="y2")
    fig.update_layout(title=f"Created vs resolved by {grain}, and the backlog", barmode="group",
                      yaxis={"title": "Tickets"}, yaxis2={"title": "Open tickets", "rangemode": "tozero", **_RIGHT_AXIS},
                      **_LAYOUT)
    return fig


@shared
def build_sla_trend_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """SLA breach rate (%) of the tickets created in each bucket, judged at the bucket's end."""
    x = _bucket_labels(trend, grain)
    rates = [None if v is None else 100 * v for v in trend["sla_breach_rate"].to_list()]
    fig = go.Figure()
    fig.add_bar(x=x, y=rates, name="Breach rate", marker={"color": PALETTE["bad"], **_partial_bars(trend)},
                customdata=trend["created"].to_list(), hovertext=_hover_notes(trend),
                hovertemplate="%{y:.1f}% of %{customdata} tickets%{hovertext}<extra></extra>")
    fig.update_layout(title=f"SLA breach rate by {grain}", yaxis={"title": "% of tickets", "rangemode": "tozero",
                                                                  "ticksuffix": "%"}, **_LAYOUT)
    return fig


@shared
def build_churn_trend_chart(trend: pl.DataFrame) -> go.Figure:
    """Monthly churn rate (%) as bars with active customers at each month's end as a line."""
    x = _months(trend)
    fig = go.Figure()
    fig.add_bar(x=x, y=[None if v is None else 100 * v for v in trend["churn_rate"].to_list()], name="Churn rate",
                marker={"color": PALETTE["bad"], **_partial_bars(trend)}, hovertext=_hover_notes(trend),
                customdata=list(zip(trend["churned"], trend["active_before"], strict=True)),
                hovertemplate="%{y:.1f}% (%{customdata[0]} of %{customdata[1]})%{hovertext}<extra>churn</extra>")
    _add_trend_line(fig, trend, x, trend["active_customers"].to_list(), "Active customers", PALETTE["primary"],
                    "%{y:,}<extra>active customers</extra>", yaxis="y2")
    fig.update_layout(title="Churn rate and active customers by month",
                      yaxis={"title": "Churn %", "rangemode": "tozero", "ticksuffix": "%"},
                      yaxis2={"title": "Active customers", "rangemode": "tozero", **_RIGHT_AXIS}, **_LAYOUT)
    return fig


@shared
def build_customer_flow_chart(trend: pl.DataFrame) -> go.Figure:
    """New, returning and reactivated customers per month stacked up, churned ones stacked down."""
    x = _months(trend)
    fig = go.Figure()
    for column, name, color in (("returning", "Returning", PALETTE["muted"]), ("reactivated", "Reactivated", PALETTE["accent"]),
                                ("new", "New", PALETTE["good"])):
        fig.add_bar(x=x, y=trend[column].to_list(), name=name, marker={"color": color, **_partial_bars(trend)},
                    hovertext=_hover_notes(trend), hovertemplate="%{y:,}%{hovertext}<extra>" + name.lower() + "</extra>")
    fig.add_bar(x=x, y=[-v for v in trend["churned"].to_list()], name="Churned",
                marker={"color": PALETTE["bad"], **_partial_bars(trend)}, hovertext=_hover_notes(trend),
                customdata=trend["churned"].to_list(), hovertemplate="%{customdata}%{hovertext}<extra>churned</extra>")
    fig.update_layout(title="Customers by month", barmode="relative",  # the legend names the four
                      yaxis={"title": "Customers"}, **_LAYOUT)
    return fig


@shared
def build_cohort_heatmap(cohorts: pl.DataFrame, measure: str) -> go.Figure:
    """Retention (%) by first-order month (rows, with the cohort size) and months since (columns).

    Cells whose month is not over at the data's last day (``complete`` false) are grey, their value in
    parentheses with the days covered on hover: a month of 1 day is not a collapse in retention."""
    column = "revenue_retention" if measure == "revenue" else "customer_retention"
    cells = cohorts.with_columns(note=pl.Series(_coverage_texts(cohorts), dtype=pl.String))
    wide = cells.pivot(on="months_since", index=["cohort", "cohort_size"], values=[column, "note"],
                       sort_columns=True).sort("cohort")
    ks = sorted(cells["months_since"].unique().to_list())
    rows = [f"{c:%b %Y} (n={n:,})" for c, n in zip(wide["cohort"], wide["cohort_size"], strict=True)]

    def grid(prefix: str) -> list[list]:
        """Rows (cohorts) × columns (months since) of one pivoted value."""
        columns = [wide[f"{prefix}_{k}"].to_list() for k in ks]
        return [list(r) for r in zip(*columns, strict=True)] if columns else []

    values = grid(column)
    notes = grid("note")
    pairs = [list(zip(vs, ns, strict=True)) for vs, ns in zip(values, notes, strict=True)]
    whole_z = [[None if v is None or n else 100 * v for v, n in row] for row in pairs]
    part_z = [[100 * v if v is not None and n else None for v, n in row] for row in pairs]
    x = [f"+{k}" for k in ks]
    fig = go.Figure(go.Heatmap(z=whole_z, x=x, y=rows, text=[["" if v is None else f"{v:.0f}%" for v in r] for r in whole_z],
                               texttemplate="%{text}", colorscale="Blues", zmin=0,
                               zmax=100 if measure != "revenue" else None, colorbar={"title": "%"},
                               hovertemplate="%{y}, month %{x}: %{z:.1f}%<extra></extra>"))
    if any(n for r in notes for n in r):
        fig.add_heatmap(z=part_z, x=x, y=rows, showscale=False, colorscale=[[0, "#e2e8f0"], [1, "#e2e8f0"]],
                        text=[["" if v is None else f"({v:.0f}%)" for v in r] for r in part_z], texttemplate="%{text}",
                        customdata=notes, name="partial",
                        hovertemplate="%{y}, month %{x}: %{z:.1f}% so far<br><i>partial: %{customdata}, "
                                      "the month is not over</i><extra></extra>")
    what = "Revenue" if measure == "revenue" else "Customer"
    fig.update_layout(title=f"{what} retention by first-order month (grey: month not over yet)",
                      xaxis={"title": "Months since the first order"},
                      yaxis={"autorange": "reversed"},
                      **{**_LAYOUT, "height": max(320, 90 + 28 * len(rows)), "hovermode": "closest"})
    return fig


@shared
def build_churn_by_chart(table: pl.DataFrame, by: str) -> go.Figure:
    """Churn rate per group now (bars) and in the previous period (markers), highest first."""
    groups = _labels(table[by], by)
    fig = go.Figure()
    fig.add_bar(x=groups, y=[None if v is None else 100 * v for v in table["churn_rate"].to_list()], name="This period",
                marker_color=PALETTE["bad"], customdata=list(zip(table["churned"], table["active_before"], strict=True)),
                hovertemplate="%{x}: %{y:.1f}% (%{customdata[0]} of %{customdata[1]})<extra></extra>")
    fig.add_scatter(x=groups, y=[None if v is None else 100 * v for v in table["churn_rate_previous"].to_list()],
                    name="Previous period", mode="markers", marker={"color": PALETTE["primary"], "size": 11, "symbol": "diamond"},
                    hovertemplate="%{x}: %{y:.1f}%<extra>previous period</extra>")
    fig.update_layout(title=f"Churn rate by {by}", yaxis={"title": "Churn %", "rangemode": "tozero", "ticksuffix": "%"},
                      **{**_LAYOUT, "hovermode": "closest"})
    return fig


SEGMENT_COLORS = {
    "Champions": "#15803d", "Loyal": "#22c55e", "Can't Lose Them": "#b91c1c", "New": "#0ea5e9",
    "Promising": "#38bdf8", "Potential Loyalist": "#6366f1", "Need Attention": "#f59e0b", "At Risk": "#ef4444",
    "About to Sleep": "#fb923c", "Lost": "#64748b", "Hibernating": "#94a3b8", "Others": "#cbd5e1",
    "Not scored": "#e2e8f0",
}


@shared
def build_segment_bars(summary: pl.DataFrame, by: str, selected: tuple[str, ...] = ()) -> go.Figure:
    """Customers per RFM segment (or tier), with the revenue share written on each bar; a box over
    bars selects their customers."""
    names = summary[by].to_list()
    fig = go.Figure()
    fig.add_bar(
        y=names, x=summary["customers"].to_list(), orientation="h", customdata=names,
        marker_color=[SEGMENT_COLORS.get(n, PALETTE["primary"]) for n in names],
        text=[f"{c:,} · {_pct(s)} of revenue" for c, s in zip(summary["customers"], summary["revenue_share"], strict=True)],
        textposition="auto", hovertemplate="%{y}: %{x:,} customers<extra></extra>", showlegend=False,
    )
    if selected:
        fig.update_traces(selectedpoints=[i for i, n in enumerate(names) if n in selected],
                          unselected={"marker": {"opacity": 0.3}})
    fig.update_layout(title=f"Customers per {'RFM segment' if by == 'segment' else 'tier'}", dragmode="select",
                      yaxis={"autorange": "reversed"}, xaxis={"title": "Customers"},
                      **{**_LAYOUT, "height": max(300, 80 + 30 * len(names)), "hovermode": "closest"})
    return fig


@shared
def build_transition_chart(moves: pl.DataFrame, order: tuple[str, ...]) -> go.Figure:
    """RFM segment at the previous period end (rows) → now (columns): customers per cell, coloured by
    the share of the row; a box over cells selects their customers."""
    present = [n for n in order if n in set(moves["from_segment"]) | set(moves["to_segment"])]
    shares = moves["share_of_from"].to_list()
    fig = go.Figure()
    fig.add_scatter(
        x=moves["to_segment"].to_list(), y=moves["from_segment"].to_list(), mode="markers+text",
        marker={"symbol": "square", "size": 40, "color": [100 * s for s in shares], "colorscale": "Blues",
                "cmin": 0, "cmax": 100, "showscale": True, "colorbar": {"title": "% of row", "thickness": 12}},
        text=[f"{c:,}" for c in moves["customers"]],
        textfont={"size": 10, "color": contrast_text_colors([100 * s for s in shares], "Blues", 0, 100)},
        customdata=list(zip(moves["from_segment"].to_list(), moves["to_segment"].to_list(), moves["customers"].to_list(),
                            [100 * s for s in shares], strict=True)),
        hovertemplate="%{customdata[0]} → %{customdata[1]}: %{customdata[2]:,} customers "
                      "(%{customdata[3]:.1f}% of the row)<extra></extra>",
        showlegend=False,
    )
    axis = {"type": "category", "categoryorder": "array", "categoryarray": present}
    fig.update_layout(title="Segment movement: previous period end (rows) → this period end (columns)", dragmode="select",
                      xaxis={**axis, "side": "top", "tickangle": -30}, yaxis={**axis, "autorange": "reversed"},
                      **{**_LAYOUT, "height": max(360, 140 + 44 * len(present)), "hovermode": "closest",
                         "margin": {"l": 10, "r": 10, "t": 150, "b": 10}})
    return fig


@shared
def build_rfm_scatter(points: pl.DataFrame, density: pl.DataFrame, x: str, y: str, titles: dict[str, str],
                      members: set[str] | None = None, total: int | None = None, log_axes: tuple[str, ...] = (),
                      shape: dict | None = None) -> go.Figure:
    """Customers on two RFM axes, one colour per segment, marker size by F score; with many customers
    a density layer (customers per cell) under a sample of points. Box or lasso selects (the page
    evaluates the drawn shape on every customer, not only on the drawn points). ``log_axes``: columns
    drawn on a log axis (no density layer then); ``shape``: the current selection's box or lasso
    (``{"box": [x0, x1, y0, y1]}`` or ``{"lasso": [(x, y), ...]}``, data values), outlined."""
    fig = go.Figure()
    if not density.is_empty() and total is not None and total > points.height and not log_axes:
        xs, ys = sorted(set(density["x_mid"].to_list())), sorted(set(density["y_mid"].to_list()))
        cell = {(a, b): c for a, b, c in density.iter_rows()}
        fig.add_heatmap(x=xs, y=ys, z=[[cell.get((a, b)) for a in xs] for b in ys], colorscale="Greys", opacity=0.45,
                        showscale=False, hovertemplate="%{z:,} customers here<extra></extra>", name="density")
    for name in SEGMENT_COLORS:
        part = points.filter(pl.col("segment") == name)
        if part.is_empty():
            continue
        ids = part["customer_id"].to_list()
        opacity = [0.9 if members is None or i in members else 0.12 for i in ids]
        fig.add_scattergl(
            x=part[x].to_list(), y=part[y].to_list(), mode="markers", name=name,
            marker={"color": SEGMENT_COLORS[name], "size": [3 + 1.6 * f for f in part["f"].to_list()],
                    "opacity": opacity, "line": {"width": 0}},
            customdata=list(zip(_labels(ids), part["r"].to_list(), part["f"].to_list(), part["m"].to_list(), strict=True)),
            hovertemplate=f"%{{customdata[0]}} · {name}<br>R%{{customdata[1]}} F%{{customdata[2]}} M%{{customdata[3]}}"
                          f"<br>{titles[x]}: %{{x:,}}<br>{titles[y]}: %{{y:,}}<extra></extra>",
        )
    if shape:
        _outline(fig, shape)
    sample = f"a sample of {points.height:,} of {total:,}" if total and total > points.height else ""
    shown = f" ({sample}{'' if log_axes or not sample else ' over their density'})" if sample else ""
    money = {"tickprefix": CURRENCY_SYMBOL, "tickformat": "~s"}

    def axis(column: str) -> dict:
        log = {"type": "log"} if column in log_axes else {}
        return {"title": titles[column] + (" (log scale)" if log else ""), **(money if column == "monetary" else {}), **log}

    fig.update_layout(title=f"Customers by {titles[x].lower()} and {titles[y].lower()}{shown}", dragmode="select",
                      xaxis=axis(x), yaxis=axis(y), **{**_LAYOUT, "height": 480, "hovermode": "closest"})
    return fig


def _outline(fig: go.Figure, shape: dict) -> None:
    """Draw the selection's box or lasso as a dashed outline (data values, also on a log axis)."""
    line = {"color": "#0f172a", "width": 1.5, "dash": "dash"}
    if shape.get("box"):
        x0, x1, y0, y1 = shape["box"]
        fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=line, layer="above")
    elif shape.get("lasso"):
        path = "M" + "L".join(f"{a},{b}" for a, b in shape["lasso"]) + "Z"
        fig.add_shape(type="path", path=path, line=line, layer="above")


@shared
def build_importance_chart(importance: pl.DataFrame) -> go.Figure:
    """How much each fact the churn tree splits on contributes to its decisions (``label``, ``importance``
    0–1 summing to 1; crm.churn_model.feature_importance), largest on top."""
    labels = _labels(importance["label"])
    shares = [100 * v for v in importance["importance"].to_list()]
    fig = go.Figure(go.Bar(y=labels, x=shares, orientation="h", marker_color=PALETTE["primary"],
                           text=[f"{v:.0f}%" for v in shares], textposition="auto",
                           hovertemplate="%{y}: %{x:.1f}% of the tree's decisions<extra></extra>"))
    fig.update_layout(title="What the tree decides on",
                      xaxis={"title": "share of the tree's impurity reduction", "rangemode": "tozero", "ticksuffix": "%"},
                      yaxis={"autorange": "reversed", "automargin": True},
                      **{**_LAYOUT, "height": max(240, 90 + 30 * len(labels)), "hovermode": "closest"})
    return fig


@shared
def build_product_matrix(rules: pl.DataFrame, measure: str, products: list[str]) -> go.Figure:
    """Rules between products as a matrix: antecedent (rows) → consequent (columns), coloured by ``measure``
    (``lift``: blue above 1, red below, white at 1; ``confidence``: 0–100%); a pair never bought together is
    blank. ``rules``: crm.cross_sell.association_rules rows; ``products``: the names in order."""
    value = {(a, c): v for a, c, v in rules.select("antecedent", "consequent", measure).iter_rows()}
    support = {(a, c): v for a, c, v in rules.select("antecedent", "consequent", "support").iter_rows()}
    z = [[None if a == c else value.get((a, c)) for c in products] for a in products]
    if measure == "confidence":
        z = [[None if v is None else 100 * v for v in row] for row in z]
        text = [["" if v is None else f"{v:.0f}%" for v in row] for row in z]
        scale: dict = {"colorscale": "Blues", "zmin": 0, "zmax": 100, "colorbar": {"title": "%"}}
        hover = "If %{y} then %{x}: %{z:.1f}% of the baskets with %{y}"
    else:
        text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
        spread = max([abs(v - 1) for row in z for v in row if v is not None] or [1.0])
        scale = {"colorscale": "RdBu", "zmid": 1, "zmin": 1 - spread, "zmax": 1 + spread, "colorbar": {"title": "lift"}}
        hover = "%{y} → %{x}: lift %{z:.2f}"
    shares = [["" if a == c or (a, c) not in support else f"{100 * support[(a, c)]:.1f}%" for c in products] for a in products]
    names = _labels(products, "product")
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", customdata=shares,
                               hovertemplate=hover + "<br>both in %{customdata} of baskets<extra></extra>",
                               xgap=2, ygap=2, **scale))
    what = "Lift" if measure == "lift" else "Confidence"
    fig.update_layout(title=f"{what}: if a basket holds the row's product, the column's product",
                      xaxis={"title": "then (consequent)", "side": "bottom", "type": "category"},
                      yaxis={"title": "if (antecedent)", "autorange": "reversed", "type": "category"},
                      **{**_LAYOUT, "height": max(320, 140 + 48 * len(products)), "hovermode": "closest"})
    return fig
