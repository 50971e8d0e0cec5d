"""Number formats shared by tiles, charts, grids and exports: one place, consistent units."""

from __future__ import annotations

import re

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
