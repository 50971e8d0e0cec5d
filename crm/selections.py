"""The active selections in words a manager reads, and the checks a link's selection goes through.

Two things narrow a view beyond the sidebar's dimensions: a customer set (a segment
rule from the Segments page, ``seg=``, or picked customer ids) and a chart selection
(``select=step:3``, ``select=owner:Ann``: funnel bars and breakdown cells). The page
frame shows each as one removable line at the top of every page; the words come
from here so a unit test can read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crm.dataset import Frames
from crm.filters import Filters
from crm.format import NO_VALUE, value_label
from crm.metrics.funnel import BREAKDOWNS, stage_set
from crm.narrowing import member_ids, narrowing_scope
from crm.segment_rules import AXES, SegmentRule

SELECTION_LABELS: dict[str, str] = {
    "step": "Funnel stage",
    "owner": "Deal owner",
    "team": "Sales team",
    "region": "Deal region",
    "product": "Product",
    "source": "Deal source",
}
"""How each chart-selection key reads on screen."""

CUSTOMER_TILES: frozenset[str] = frozenset({"active_customers", "churn_rate"})
"""Tiles whose meaning changes under a customer selection: they count within the chosen set, which was
chosen by how its customers bought (a set picked for lapsing customers churns by construction)."""


@dataclass(frozen=True)
class ActiveSelection:
    """One thing narrowing the view, as shown above every page: ``kind`` is ``customers`` (a segment
    rule or picked ids) or ``chart`` (one chart-selection key, ``key``); ``text`` the words,
    ``detail`` a longer explanation (a tooltip)."""

    kind: str
    key: str
    text: str
    detail: str


def rule_words(rule: SegmentRule) -> str:
    """Who a segment rule selects, short: ``At Risk in Europe``, ``tier Churn risk``, ``Loyal who were
    Champions on 2026-03-31``; every part of the rule must hold."""
    parts: list[str] = []
    if rule.segments:
        parts.append(" or ".join(rule.segments))
    if rule.tiers:
        parts.append("tier " + " or ".join(rule.tiers))
    if rule.moved_from:
        since = rule.since.isoformat() if rule.since else "the previous period end"
        parts.append(f"who were {' or '.join(rule.moved_from)} on {since}")
    if rule.box is not None:
        parts.append(f"in a box on {AXES[rule.x].lower()} × {AXES[rule.y].lower()}")
    if rule.lasso:
        parts.append(f"in a lasso on {AXES[rule.x].lower()} × {AXES[rule.y].lower()}")
    scope = dict(rule.scope)
    where = [" or ".join(scope.pop("region"))] if "region" in scope else []
    where += [f"{dim} {' or '.join(values)}" for dim, values in scope.items()]
    text = " ".join(parts) if parts else "every customer with an order in the last 365 days"
    return f"{text} in {', '.join(where)}" if where else text


def step_names(frames: Frames) -> tuple[str, ...]:
    """The funnel's steps in order (step 1 first): the open stages, then won (``stage_set`` reads the stage
    configuration once per data version)."""
    return stage_set(frames.pipeline_stages).steps


def step_label(step: str, names: Sequence[str]) -> str:
    """A selected funnel step as its stage name (``3`` -> ``proposal``); a step outside the funnel as
    ``step 99``."""
    position = int(step) if step.isdigit() else 0
    return names[position - 1] if 0 < position <= len(names) else f"step {step}"


def describe_selections(filters: Filters, frames: Frames) -> list[ActiveSelection]:
    """The active customer set and chart selections of ``filters`` in words, customers first, then one
    entry per chart-selection key (funnel stage before breakdowns). Empty when nothing is selected."""
    out: list[ActiveSelection] = []
    if filters.segment_rule:
        rule = SegmentRule.from_json(filters.segment_rule)
        count = len(member_ids(frames, filters.segment_rule, narrowing_scope(filters)))
        out.append(ActiveSelection(
            "customers", "customers", f"Customers: {rule_words(rule)} · {count:,} {_customers(count)}",
            f"Chosen on the Segments page: {rule.describe()}. Every page counts only these customers' "
            "deals, orders, tickets and surveys."))
    elif filters.customers:
        count = len(filters.customers)
        out.append(ActiveSelection(
            "customers", "customers", f"Customers: {count:,} picked {_customers(count)}",
            "Picked in a grid. Every page counts only these customers' deals, orders, tickets and surveys."))
    keys = sorted({k for k, _ in filters.selection}, key=lambda k: (k != "step", k))
    names = step_names(frames) if "step" in keys else ()
    for key in keys:
        values = filters.selected(key)
        if key == "step":
            shown = [step_label(v, names) for v in sorted(values, key=lambda v: (len(v), v))]
        else:
            shown = [value_label(key, v) for v in values]
        label = SELECTION_LABELS.get(key, key.capitalize())
        out.append(ActiveSelection(
            "chart", key, f"{label}: {' or '.join(shown)}",
            "Selected on a Funnel chart: it narrows the funnel's list of deals (and its export)."))
    return out


def _customers(count: int) -> str:
    return "customer" if count == 1 else "customers"


def tile_notes(filters: Filters) -> dict[str, str]:
    """A line under each tile whose meaning changes under the active customer selection, by metric key."""
    if filters.segment_rule:
        rule = SegmentRule.from_json(filters.segment_rule)
        chosen = f"the selected customers ({rule_words(rule)}, as of {rule.as_of})" if rule.as_of else \
            f"the selected customers ({rule_words(rule)})"
    elif filters.customers:
        chosen = "the picked customers"
    else:
        return {}
    note = f"Counts only {chosen}: it shows how that set was chosen, not the whole business."
    return dict.fromkeys(sorted(CUSTOMER_TILES), note)


def selectable_values(frames: Frames) -> dict[str, list[str]]:
    """What a link's ``select=key:value`` may hold: funnel steps ``1``…``n`` and the deals' own
    breakdown values (with the empty-value code, for deals that have none). Kept per data version: a run
    whose URL leads asks, and the deals' columns are read whole."""
    def compute() -> dict[str, list[str]]:
        deals = frames.opportunities
        values = {"step": [str(i) for i in range(1, len(step_names(frames)) + 1)]}
        for key in BREAKDOWNS:
            column = deals[key].cast(str)
            values[key] = sorted(column.drop_nulls().unique().to_list()) + ([NO_VALUE] if column.null_count() else [])
        return values

    return frames.memo("selectable_values", compute)


def check_selection(selection: Sequence[tuple[str, str]], allowed: Mapping[str, Sequence[str]],
                    names: Sequence[str]) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """Keep the selection pairs that can match something; say why each other one is dropped.

    ``allowed`` is ``selectable_values``; ``names`` the funnel's stage names (for the notice).
    """
    kept: list[tuple[str, str]] = []
    notices: list[str] = []
    for key, value in selection:
        if key not in allowed:
            notices.append(f"Ignored the selection {key}:{value} from the link: {key!r} cannot be selected; "
                           f"one of {', '.join(allowed)}.")
        elif value not in set(allowed[key]):
            if key == "step":
                stages = ", ".join(f"{i} {n}" for i, n in enumerate(names, start=1))
                notices.append(f"Ignored the selection step:{value} from the link: the funnel has no such "
                               f"stage (steps: {stages}).")
            else:
                notices.append(f"Ignored the selection {key}:{value} from the link: no deal has that "
                               f"{SELECTION_LABELS[key].lower()}.")
        else:
            kept.append((key, value))
    return tuple(kept), notices
