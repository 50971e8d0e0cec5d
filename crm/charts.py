"""Figure builders: a small frame in, a plotly or altair figure out (plotly graph_objects: ~10x faster
to build than express; altair where a time brush is needed)."""

from __future__ import annotations

import altair as alt
import plotly.graph_objects as go
import polars as pl

from crm.format import CURRENCY_SYMBOL

PALETTE = {"primary": "#2563eb", "muted": "#94a3b8", "good": "#16a34a", "bad": "#dc2626", "accent": "#f59e0b"}
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 80, "b": 10},
    "height": 340,
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    "title_y": 0.96,
    "hovermode": "x unified",
    "template": "plotly_white",
}
_RIGHT_AXIS = {"overlaying": "y", "side": "right", "showgrid": False, "tickmode": "auto"}
"""A second y axis; tickmode auto, else Plotly syncs its ticks to the left grid (ticks like 12.5, 24.9)."""


def _months(frame: pl.DataFrame) -> list[str]:
    return [m.strftime("%b %Y") for m in frame["month"]]


def build_revenue_chart(frame: pl.DataFrame) -> go.Figure:
    """Revenue won per month (bars) with the same month a year earlier (line)."""
    x = _months(frame)
    fig = go.Figure()
    fig.add_bar(x=x, y=frame["revenue_won"].to_list(), name="Revenue won", marker_color=PALETTE["primary"],
                customdata=frame["won_deals"].to_list(),
                hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}} from %{{customdata}} deals<extra></extra>")
    fig.add_scatter(x=x, y=frame["revenue_won_previous_year"].to_list(), name="Same month last year",
                    mode="lines+markers", line={"color": PALETTE["muted"], "dash": "dot"},
                    hovertemplate=f"{CURRENCY_SYMBOL}%{{y:,.0f}}<extra>last year</extra>")
    fig.update_layout(title="Revenue won by month", yaxis={"tickprefix": CURRENCY_SYMBOL, "tickformat": "~s"},
                      **_LAYOUT)
    return fig


def build_satisfaction_chart(frame: pl.DataFrame) -> go.Figure:
    """NPS (left axis, −100…100) and CSAT (right axis, %) per month, response counts on hover."""
    x = _months(frame)
    fig = go.Figure()
    fig.add_scatter(x=x, y=frame["nps"].to_list(), name="NPS", mode="lines+markers",
                    line={"color": PALETTE["primary"]}, customdata=frame["nps_responses"].to_list(),
                    hovertemplate="NPS %{y:.1f} (n=%{customdata})<extra></extra>")
    fig.add_scatter(x=x, y=[None if v is None else 100 * v for v in frame["csat"].to_list()], name="CSAT",
                    mode="lines+markers", yaxis="y2", line={"color": PALETTE["accent"]},
                    customdata=frame["csat_responses"].to_list(),
                    hovertemplate="CSAT %{y:.1f}% (n=%{customdata})<extra></extra>")
    fig.update_layout(
        title="NPS and CSAT by month",
        yaxis={"title": "NPS", "range": [-100, 100], "zeroline": True},
        yaxis2={"title": "CSAT %", "range": [0, 100], **_RIGHT_AXIS},
        **_LAYOUT,
    )
    return fig


def build_service_chart(frame: pl.DataFrame) -> go.Figure:
    """Tickets created per month (bars), backlog at month end and SLA breach rate (lines)."""
    x = _months(frame)
    fig = go.Figure()
    fig.add_bar(x=x, y=frame["tickets_created"].to_list(), name="Tickets created", marker_color=PALETTE["muted"])
    fig.add_scatter(x=x, y=frame["backlog"].to_list(), name="Backlog at month end", mode="lines+markers",
                    line={"color": PALETTE["primary"]})
    fig.add_scatter(x=x, y=[None if v is None else 100 * v for v in frame["sla_breach_rate"].to_list()],
                    name="SLA breach rate", mode="lines+markers", yaxis="y2", line={"color": PALETTE["bad"]},
                    hovertemplate="%{y:.1f}%<extra>SLA breaches</extra>")
    fig.update_layout(
        title="Tickets, backlog and SLA breaches by month",
        yaxis={"title": "Tickets"},
        yaxis2={"title": "SLA breach rate", "rangemode": "tozero", "ticksuffix": "%", **_RIGHT_AXIS},
        **_LAYOUT,
    )
    return fig


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def build_funnel_chart(funnel: pl.DataFrame, mode: str, selected_steps: tuple[int, ...] = ()) -> go.Figure:
    """Horizontal funnel: reached per step with step and cumulative conversion written on the bars,
    and the drop-off from the previous step as a red segment. A box selection returns the steps under it."""
    stages = funnel["stage"].to_list()
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


def build_breakdown_heatmap(breakdown: pl.DataFrame, by: str) -> go.Figure:
    """Step conversion per ``by`` group (rows) and funnel step (columns) as coloured squares, worst red.

    The first step (grey) shows its deal count: it has no conversion. Cells are selected by dragging a box over them.
    """
    groups = breakdown[by].unique(maintain_order=True).to_list()
    first, rest = breakdown.filter(pl.col("step") == 1), breakdown.filter(pl.col("step") > 1)
    fig = go.Figure()
    for part, coloured in ((first, False), (rest, True)):
        values = part["step_conversion"].to_list()
        marker: dict = {"symbol": "square", "size": 46}
        if coloured:
            marker |= {"color": [0.0 if v is None else 100 * v for v in values], "colorscale": "RdYlGn",
                       "showscale": True, "colorbar": {"title": "step %", "thickness": 12}}
        else:
            marker |= {"color": "#e2e8f0"}
        fig.add_scatter(
            x=part["stage"].to_list(), y=part[by].to_list(), mode="markers+text", marker=marker, showlegend=False,
            text=[f"{r:,}" for r in part["reached"]] if not coloured else [_pct(v) for v in values],
            textfont={"size": 11, "color": "#0f172a"},
            customdata=list(zip(part[by].to_list(), part["step"].to_list(), part["reached"].to_list(), strict=True)),
            hovertemplate=f"{by} %{{customdata[0]}}<br>%{{x}}: %{{customdata[2]:,}} deals<extra></extra>",
        )
    fig.update_layout(title=f"Step conversion by {by} (first column: deals)", dragmode="select",
                      **{**_LAYOUT, "height": max(260, 90 + 52 * len(groups)), "hovermode": "closest"},
                      yaxis={"autorange": "reversed", "type": "category", "categoryorder": "array",
                             "categoryarray": groups},
                      xaxis={"type": "category", "side": "top", "categoryorder": "array",
                             "categoryarray": breakdown["stage"].unique(maintain_order=True).to_list()})
    return fig


def build_velocity_chart(velocity: pl.DataFrame) -> go.Figure:
    """Median and p75 days in each stage."""
    fig = go.Figure()
    fig.add_bar(x=velocity["stage"].to_list(), y=velocity["median_days"].to_list(), name="Median",
                marker_color=PALETTE["primary"], hovertemplate="%{y:.1f} days<extra>median</extra>")
    fig.add_bar(x=velocity["stage"].to_list(), y=velocity["p75_days"].to_list(), name="p75",
                marker_color=PALETTE["muted"], hovertemplate="%{y:.1f} days<extra>p75</extra>")
    fig.update_layout(title="Time in stage (days)", barmode="group", yaxis={"title": "Days"}, **_LAYOUT)
    return fig


def build_win_cycle_trend(trend: pl.DataFrame) -> go.Figure:
    """Win rate (%) and median sales cycle (days) per month."""
    x = _months(trend)
    fig = go.Figure()
    fig.add_scatter(x=x, y=[None if v is None else 100 * v for v in trend["win_rate"].to_list()], name="Win rate",
                    mode="lines+markers", line={"color": PALETTE["good"]}, hovertemplate="%{y:.1f}%<extra>win rate</extra>")
    fig.add_scatter(x=x, y=trend["sales_cycle_days"].to_list(), name="Sales cycle (median days)", yaxis="y2",
                    mode="lines+markers", line={"color": PALETTE["accent"]},
                    hovertemplate="%{y:.1f} days<extra>sales cycle</extra>")
    fig.update_layout(title="Win rate and sales cycle by month", yaxis={"title": "Win rate %", "rangemode": "tozero"},
                      yaxis2={"title": "Days", "rangemode": "tozero", **_RIGHT_AXIS}, **_LAYOUT)
    return fig


def build_win_rate_chart(win_loss: pl.DataFrame, by: str) -> go.Figure:
    """Win rate per group (bars, worst first) with the previous period as markers; selectable bars."""
    fig = go.Figure()
    groups = win_loss[by].to_list()
    fig.add_bar(y=groups, x=[100 * v for v in win_loss["win_rate"].to_list()], orientation="h", name="This period",
                marker_color=PALETTE["primary"], customdata=groups,
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


def build_lost_reasons_chart(reasons: pl.DataFrame) -> go.Figure:
    """Lost reasons ranked by deals (bars) with the previous period's count (markers)."""
    fig = go.Figure()
    labels = reasons["lost_reason"].to_list()
    fig.add_bar(y=labels, x=reasons["deals"].to_list(), orientation="h", name="This period",
                marker_color=PALETTE["bad"], customdata=reasons["amount"].to_list(),
                hovertemplate=f"%{{y}}: %{{x:,}} deals, {CURRENCY_SYMBOL}%{{customdata:,.0f}}<extra></extra>")
    fig.add_scatter(y=labels, x=reasons["previous_deals"].to_list(), mode="markers", name="Previous period",
                    marker={"color": PALETTE["muted"], "symbol": "diamond", "size": 10})
    fig.update_layout(title="Lost reasons", yaxis={"autorange": "reversed", "type": "category"},
                      xaxis={"title": "Deals lost"}, **{**_LAYOUT, "hovermode": "closest"})
    return fig


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


def build_score_trend_chart(trend: pl.DataFrame, kind: str, grain: str, compared_label: str) -> alt.LayerChart:
    """NPS or CSAT per bucket: the score line with its 95% interval band, hollow points where n < 30,
    the comparison as a dashed line, and the responses per bucket as grey bars. Dragging across
    the chart selects a time range (``BRUSH``)."""
    factor, title, domain = _score_scale(kind)
    data = trend.select(
        "bucket", "n", "low_confidence", "compared_n",
        score=pl.col("score") * factor, low=pl.col("low").clip(*domain_bounds(kind)) * factor,
        high=pl.col("high").clip(*domain_bounds(kind)) * factor, compared=pl.col("compared_score") * factor,
        confidence=pl.when(pl.col("low_confidence")).then(pl.lit("low (n < 30)")).otherwise(pl.lit("ok")),
    )
    period = "Week of" if grain == "week" else "Month"
    # one tick per bucket (not Vega's default of several per month, which repeats the labels)
    ticks = {"interval": "week" if grain == "week" else "month", "step": 1}
    x = alt.X("bucket:T", title=None,
              axis=alt.Axis(format="%d %b" if grain == "week" else "%b %Y", tickCount=ticks, labelOverlap=True))
    tooltip = [alt.Tooltip("bucket:T", title=period, format="%d %b %Y"), alt.Tooltip("score:Q", title=title, format=".1f"),
               alt.Tooltip("low:Q", title="95% low", format=".1f"), alt.Tooltip("high:Q", title="95% high", format=".1f"),
               alt.Tooltip("n:Q", title="Responses"), alt.Tooltip("confidence:N", title="Confidence"),
               alt.Tooltip("compared:Q", title=compared_label, format=".1f")]
    brush = alt.selection_interval(name=BRUSH, encodings=["x"])
    base = alt.Chart(data).encode(x=x)
    band = base.mark_area(opacity=0.18, color=PALETTE["primary"]).encode(
        y=alt.Y("low:Q", title=title, scale=alt.Scale(domain=domain)), y2="high:Q")
    compared = base.mark_line(strokeDash=[5, 4], color=PALETTE["muted"]).encode(y="compared:Q")
    line = base.mark_line(color=PALETTE["primary"]).encode(y="score:Q")
    points = base.mark_point(size=70, color=PALETTE["primary"], strokeWidth=2).encode(
        y="score:Q",
        fill=alt.condition("datum.low_confidence", alt.value("white"), alt.value(PALETTE["primary"])),
        tooltip=tooltip,
    ).add_params(brush)
    bar_size = max(2, min(30, 260 // max(1, trend.height)))
    most = max(1, int(trend.get_column("n").cast(pl.Int64).max() or 1))  # type: ignore[arg-type]
    # responses as bars on their own right-hand axis, kept to the lower quarter of the plot
    counts = base.mark_bar(color=PALETTE["muted"], opacity=0.45, size=bar_size).encode(
        y=alt.Y("n:Q", title="Responses", scale=alt.Scale(domain=[0, 4 * most]),
                axis=alt.Axis(orient="right", tickCount=2, grid=False)),
        tooltip=tooltip)
    scores = alt.layer(band, compared, line, points)
    return (alt.layer(counts, scores).resolve_scale(y="independent")
            .properties(height=300, width="container", title=f"{title} by {grain}"))


def domain_bounds(kind: str) -> tuple[float, float]:
    """The range a score can take in code units: NPS −100…100, CSAT 0…1."""
    return (-100.0, 100.0) if kind == "nps" else (0.0, 1.0)


def build_nps_composition_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """Share of promoters, passives and detractors per bucket (stacked to 100%), n on hover."""
    x = [b.strftime("%d %b %Y" if grain == "week" else "%b %Y") for b in trend["bucket"]]
    n = trend["n"].to_list()
    fig = go.Figure()
    for part, color in (("detractors", PALETTE["bad"]), ("passives", PALETTE["muted"]), ("promoters", PALETTE["good"])):
        counts = trend[part].to_list()
        fig.add_bar(x=x, y=[100 * c / t if t else None for c, t in zip(counts, n, strict=True)], name=part.capitalize(),
                    marker_color=color, customdata=counts,
                    hovertemplate="%{y:.1f}% (%{customdata} responses)<extra>" + part + "</extra>")
    fig.update_layout(title="NPS composition", barmode="stack", yaxis={"title": "% of responses", "range": [0, 100]},
                      **_LAYOUT)
    return fig


def build_what_moved_chart(moved: pl.DataFrame, by: str, kind: str) -> go.Figure:
    """Each group's contribution to the change: the part from its own score (rate) and from its share of
    responses (mix), stacked; largest first, in score units (NPS points or CSAT percentage points)."""
    factor = 1.0 if kind == "nps" else 100.0
    groups = moved[by].to_list()[::-1]
    fig = go.Figure()
    for column, name, color in (("rate_effect", "Own score change", PALETTE["primary"]),
                                ("mix_effect", "Share of responses (mix)", PALETTE["accent"])):
        fig.add_bar(y=groups, x=[factor * v for v in moved[column].to_list()[::-1]], name=name, orientation="h",
                    marker_color=color, hovertemplate="%{x:+.2f}<extra>" + name + "</extra>")
    unit = "points" if kind == "nps" else "pp"
    fig.update_layout(title=f"What moved {kind.upper()} against the previous period ({unit})", barmode="relative",
                      xaxis={"zeroline": True, "zerolinecolor": "#334155"}, **{**_LAYOUT, "hovermode": "y unified"})
    return fig


def _bucket_labels(frame: pl.DataFrame, grain: str) -> list[str]:
    return [b.strftime("%d %b %Y" if grain == "week" else "%b %Y") for b in frame["bucket"]]


def build_percentile_trend(trend: pl.DataFrame, measure: str, grain: str, unit: str) -> go.Figure:
    """p50 and p90 of first response or resolution (``measure``) per bucket, in hours."""
    x = _bucket_labels(trend, grain)
    title = "First response" if measure == "first_response" else "Resolution"
    fig = go.Figure()
    for pct, color, dash in (("p50", PALETTE["primary"], None), ("p90", PALETTE["accent"], "dot")):
        fig.add_scatter(x=x, y=trend[f"{measure}_{pct}"].to_list(), name=pct, mode="lines+markers",
                        line={"color": color, "dash": dash}, hovertemplate="%{y:.1f} h<extra>" + pct + "</extra>")
    fig.update_layout(title=f"{title} time by {grain} ({unit})", yaxis={"title": "Hours", "rangemode": "tozero"},
                      **_LAYOUT)
    return fig


def build_service_breakdown_chart(times: pl.DataFrame, by: str, unit: str) -> go.Figure:
    """First response p50 (bars) and p90 (markers) per group, slowest at the top."""
    groups = times[by].to_list()[::-1]
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


def build_backlog_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """Tickets created and resolved per bucket (bars) and the backlog at each bucket's end (line)."""
    x = _bucket_labels(trend, grain)
    fig = go.Figure()
    fig.add_bar(x=x, y=trend["created"].to_list(), name="Created", marker_color=PALETTE["muted"])
    fig.add_bar(x=x, y=trend["resolved"].to_list(), name="Resolved", marker_color=PALETTE["good"])
    fig.add_scatter(x=x, y=trend["backlog"].to_list(), name="Open at the end", mode="lines+markers", yaxis="y2",
                    line={"color": PALETTE["primary"]})
    fig.update_layout(title=f"Created vs resolved by {grain}, and the backlog", barmode="group",
                      yaxis={"title": "Tickets"}, yaxis2={"title": "Open tickets", "rangemode": "tozero", **_RIGHT_AXIS},
                      **_LAYOUT)
    return fig


def build_sla_trend_chart(trend: pl.DataFrame, grain: str) -> go.Figure:
    """SLA breach rate (%) of the tickets created in each bucket, judged at the bucket's end."""
    x = _bucket_labels(trend, grain)
    rates = [None if v is None else 100 * v for v in trend["sla_breach_rate"].to_list()]
    fig = go.Figure()
    fig.add_bar(x=x, y=rates, name="Breach rate", marker_color=PALETTE["bad"], customdata=trend["created"].to_list(),
                hovertemplate="%{y:.1f}% of %{customdata} tickets<extra></extra>")
    fig.update_layout(title=f"SLA breach rate by {grain}", yaxis={"title": "% of tickets", "rangemode": "tozero",
                                                                  "ticksuffix": "%"}, **_LAYOUT)
    return fig


def build_churn_trend_chart(trend: pl.DataFrame) -> go.Figure:
    """Monthly churn rate (%) as bars with active customers at each month's end as a line."""
    x = _months(trend)
    fig = go.Figure()
    fig.add_bar(x=x, y=[None if v is None else 100 * v for v in trend["churn_rate"].to_list()], name="Churn rate",
                marker_color=PALETTE["bad"], customdata=list(zip(trend["churned"], trend["active_before"], strict=True)),
                hovertemplate="%{y:.1f}% (%{customdata[0]} of %{customdata[1]})<extra>churn</extra>")
    fig.add_scatter(x=x, y=trend["active_customers"].to_list(), name="Active customers", mode="lines+markers",
                    yaxis="y2", line={"color": PALETTE["primary"]})
    fig.update_layout(title="Churn rate and active customers by month",
                      yaxis={"title": "Churn %", "rangemode": "tozero", "ticksuffix": "%"},
                      yaxis2={"title": "Active customers", "rangemode": "tozero", **_RIGHT_AXIS}, **_LAYOUT)
    return fig


def build_customer_flow_chart(trend: pl.DataFrame) -> go.Figure:
    """New, returning and reactivated customers per month stacked up, churned ones stacked down."""
    x = _months(trend)
    fig = go.Figure()
    for column, name, color in (("returning", "Returning", PALETTE["muted"]), ("reactivated", "Reactivated", PALETTE["accent"]),
                                ("new", "New", PALETTE["good"])):
        fig.add_bar(x=x, y=trend[column].to_list(), name=name, marker_color=color)
    fig.add_bar(x=x, y=[-v for v in trend["churned"].to_list()], name="Churned", marker_color=PALETTE["bad"],
                customdata=trend["churned"].to_list(), hovertemplate="%{customdata}<extra>churned</extra>")
    fig.update_layout(title="Customers by month: new, returning, reactivated and churned", barmode="relative",
                      yaxis={"title": "Customers"}, **_LAYOUT)
    return fig


def build_cohort_heatmap(cohorts: pl.DataFrame, measure: str) -> go.Figure:
    """Retention (%) by first-order month (rows, with the cohort size) and months since (columns)."""
    column = "revenue_retention" if measure == "revenue" else "customer_retention"
    wide = cohorts.pivot(on="months_since", index=["cohort", "cohort_size"], values=column, sort_columns=True).sort("cohort")
    ks = [c for c in wide.columns if c not in ("cohort", "cohort_size")]
    rows = [f"{c:%b %Y} (n={n:,})" for c, n in zip(wide["cohort"], wide["cohort_size"], strict=True)]
    z = [[None if v is None else 100 * v for v in wide[k].to_list()] for k in ks]
    z_rows = [list(r) for r in zip(*z, strict=True)] if z else []
    text = [["" if v is None else f"{v:.0f}%" for v in row] for row in z_rows]
    fig = go.Figure(go.Heatmap(z=z_rows, x=[f"+{k}" for k in ks], y=rows, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=100 if measure != "revenue" else None,
                               colorbar={"title": "%"}, hovertemplate="%{y}, month %{x}: %{z:.1f}%<extra></extra>"))
    what = "Revenue" if measure == "revenue" else "Customer"
    fig.update_layout(title=f"{what} retention by first-order month", xaxis={"title": "Months since the first order"},
                      yaxis={"autorange": "reversed"},
                      **{**_LAYOUT, "height": max(320, 90 + 28 * len(rows)), "hovermode": "closest"})
    return fig


def build_churn_by_chart(table: pl.DataFrame, by: str) -> go.Figure:
    """Churn rate per group now (bars) and in the previous period (markers), highest first."""
    groups = table[by].to_list()
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
        text=[f"{c:,}" for c in moves["customers"]], textfont={"size": 10, "color": "#0f172a"},
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
            customdata=list(zip(ids, part["r"].to_list(), part["f"].to_list(), part["m"].to_list(), strict=True)),
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
