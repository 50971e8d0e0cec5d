"""Number formats shared by tiles, charts, grids and exports: one place, consistent units."""

from __future__ import annotations

import html
import re
from functools import partial

import polars as pl

from crm.metrics.registry import Direction, MetricDefinition, Unit

CURRENCY_SYMBOL = "$"
EMPTY = "—"


def format_value(value: float | int | None, unit: Unit) -> str:
    """A value for display: ``$1.23M``, ``1,234``, ``18.3%``, ``27``, ``3.6 h``, ``48.7 d``; None -> em dash."""
    if value is None:
        return EMPTY
    if unit is Unit.CURRENCY:
        return format_money(float(value))
    if unit is Unit.COUNT:
        return f"{round(value):,}"
    if unit is Unit.RATIO:
        return f"{100 * value:.1f}%"
    if unit is Unit.SCORE:
        return f"{value:.1f}"
    if unit is Unit.HOURS:
        return f"{value:.1f} h"
    return f"{value:.1f} d"


def format_money(amount: float) -> str:
    """``$980``, ``$45.6k``, ``$1.23M``, ``$2.05B`` (sign kept)."""
    sign = "-" if amount < 0 else ""
    a = abs(amount)
    if a >= 1e9:
        return f"{sign}{CURRENCY_SYMBOL}{a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}{CURRENCY_SYMBOL}{a / 1e6:.2f}M"
    if a >= 1e4:
        return f"{sign}{CURRENCY_SYMBOL}{a / 1e3:.1f}k"
    return f"{sign}{CURRENCY_SYMBOL}{a:,.0f}"


NO_VALUE = "(none)"
"""The code metrics give a breakdown row whose value is empty (crm.metrics.funnel, satisfaction, service)."""


def missing_label(dimension: str) -> str:
    """How an empty breakdown value reads: ``— no team``."""
    return f"— no {dimension}"


def value_label(dimension: str, value: str) -> str:
    """A breakdown value for people: the metrics' empty-value code becomes ``— no owner``."""
    return missing_label(dimension) if value == NO_VALUE else value


def missing_last(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` with the rows whose ``column`` holds no value (``NO_VALUE``) moved to the end, the others in
    their order: a ranking (worst first) is a ranking of the values there are."""
    return frame.sort(pl.col(column) == NO_VALUE, maintain_order=True)


def labelled_missing(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` with ``NO_VALUE`` in ``column`` written as ``— no COLUMN`` (for tables people read)."""
    return frame.with_columns(pl.col(column).replace(NO_VALUE, missing_label(column)))


def tickets(count: int, noun: str = "ticket") -> str:
    """``1 ticket``, ``1,234 tickets`` (``noun`` in the singular, made plural with an s)."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


WAIT_DAYS_FROM_HOURS = 48
"""Waits this long or longer read in days (``3.2 d``), shorter ones in hours (``7.5 h``)."""


def format_wait(hours: float | None) -> str:
    """A waiting time for people: ``7.5 h`` below 48 hours, ``3.2 d`` from there; None -> em dash."""
    if hours is None:
        return EMPTY
    if abs(hours) >= WAIT_DAYS_FROM_HOURS:
        return f"{hours / 24:.1f} d"
    return f"{hours:.1f} h"


def wait_text(column: str | pl.Expr) -> pl.Expr:
    """``format_wait`` over a column (or expression) of hours, as text (for grids)."""
    hours = pl.col(column) if isinstance(column, str) else column
    days = (hours / 24).round(1).cast(pl.String) + " d"
    return pl.when(hours.abs() >= WAIT_DAYS_FROM_HOURS).then(days).otherwise(hours.round(1).cast(pl.String) + " h")


def watchlist_table(watch: pl.DataFrame) -> pl.DataFrame:
    """The SLA watchlist (crm.metrics.service.sla_watchlist) as a person reads it: waits and targets as
    text (``format_wait``), ``vs_target`` ``6.0 h over`` or ``1.0 h left``, the ticket's details after them."""
    over = pl.col("over_by_hours")
    return watch.select(
        "ticket_id", "priority", "sla", waited=wait_text("waited_hours"),
        vs_target=pl.when(over > 0).then(wait_text(over) + " over").otherwise(wait_text(-over) + " left"),
        target=wait_text("target_hours"), customer_name="customer_name", team="team", agent="agent",
        channel="channel", product="product", customer_id="customer_id", created_at="created_at",
    )


def as_text(frame: pl.DataFrame, units: dict[str, Unit]) -> pl.DataFrame:
    """``frame`` with the columns named in ``units`` written as ``format_value`` writes them (``66.7%``,
    ``-24.3``, ``1,234``), an empty value as an em dash: a table cell never reads "None"."""
    return frame.with_columns(
        pl.col(column).map_elements(partial(_value_text, unit=unit), return_dtype=pl.String, skip_nulls=False)
        for column, unit in units.items() if column in frame.columns
    )


def _value_text(value: float | int | None, unit: Unit) -> str:
    return format_value(value, unit)


COLUMN_LABELS: dict[str, str] = {
    "sla": "SLA",
    "sla_breach_rate": "SLA breach rate",
    "ticket_id": "Ticket",
    "customer_id": "Customer ID",
    "customer_name": "Customer",
    "opportunity_id": "Deal ID",
    "order_id": "Order ID",
    "response_id": "Response ID",
    "waited_days": "Waited (days)",
    "waited_hours": "Waited (h)",
    "target_hours": "Target (h)",
    "over_by_hours": "Over by (h)",
    "vs_target": "Against target",
    "nps": "NPS",
    "csat": "CSAT",
    "rfm": "RFM",
    "r": "R",
    "f": "F",
    "m": "M",
    "recency_days": "Days since last order",
    "sla_breaches_90d": "SLA breaches, 90 days",
    "order_value_change_share": "Order value vs 90 days before",
}
"""Column headers that are not the column name in words (abbreviations, units)."""


def column_label(name: str) -> str:
    """A column's header for people: ``COLUMN_LABELS``, else the name in words (``created_at`` -> ``Created at``)."""
    return COLUMN_LABELS.get(name, name.replace("_", " ").capitalize())


def format_delta(value: float | int | None, previous: float | int | None, unit: Unit) -> str | None:
    """The change against the previous period; None when either side is undefined.

    Rates change in percentage points (``+1.2 pp``), NPS in points (``+3.0 pts``),
    everything else relative to the previous value (``+12.5%``; the absolute change,
    e.g. ``+5``, when the previous value was zero); no change is ``"0"``.
    """
    if value is None or previous is None:
        return None
    diff = float(value) - float(previous)
    if diff == 0:
        return "0"  # Streamlit greys out a zero delta only when it is exactly "0"
    if unit is Unit.RATIO:
        return f"{100 * diff:+.1f} pp"
    if unit is Unit.SCORE:
        return f"{diff:+.1f} pts"
    if previous == 0:
        return f"+{format_value(diff, unit)}" if diff > 0 else f"-{format_value(-diff, unit)}"
    return f"{100 * diff / abs(float(previous)):+.1f}%"


def delta_color(metric: MetricDefinition) -> str:
    """Streamlit's delta colouring: green when the change is good news."""
    return {Direction.UP: "normal", Direction.DOWN: "inverse", Direction.NEUTRAL: "off"}[metric.direction]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=\"'^/@%])")


def plain(text: object) -> str:
    """A value from a link, a file or the store, safe inside Markdown (alerts, captions, toasts).

    Every character Markdown, HTML, LaTeX, autolinks or Streamlit's directives (``:red[...]``,
    ``:material/x:``) could act on is backslash-escaped; a colon is also followed by a zero-width space,
    because Streamlit finds icons and emoji codes after Markdown has removed the escapes. Line breaks
    stay line breaks. The text reads as it is: no link, no image, no HTML, no icon.
    """
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace(":", ":\u200b")
    return "  \n".join(escaped.splitlines())


def chart_text(text: object) -> str:
    """A value from a link, a file or the store, safe inside a Plotly label (ticks, hover, legend, titles).

    Plotly reads a subset of HTML in every label (``<a href>`` becomes a live link, ``<b>``, ``<br>``,
    ``<span style>``…): ``&``, ``<`` and ``>`` are written as entities, which Plotly shows as the
    characters themselves. Quotes stay: Plotly decodes no ``&quot;``, and outside a tag they are text.
    """
    return html.escape(str(text), quote=False)
