"""AppTest: what pages say is in words: no "(none)" rows, no column names or file paths in captions."""

from __future__ import annotations

import re

import pytest

from tests.app.conftest import open_page, shown

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PAGES = ("pages/cockpit.py", "pages/funnel.py", "pages/satisfaction.py", "pages/service.py", "pages/customers.py",
         "pages/segments.py", "pages/churn_risk.py", "pages/cross_sell.py")
INTERNALS = re.compile(r"\b\w+_at\b|\b\w+_date\b|\.py\b|DESIGN\.md|\(none\)|\bNone\b")


def texts(at) -> list[str]:
    """Every Markdown, caption and alert body and every help text on the page."""
    out = [shown(e.value) for kind in ("markdown", "caption", "info", "warning", "success") for e in at.get(kind)]
    out += [shown(m.help or "") for m in at.metric]
    return out


@pytest.mark.parametrize("page", PAGES)
def test_no_column_names_file_paths_or_none_in_what_a_page_says(app_store, page):
    at = open_page(page, Q2)
    assert not at.exception, at.exception
    found = {t: INTERNALS.findall(t) for t in texts(at) if INTERNALS.search(t)}
    assert found == {}


def test_the_satisfaction_drill_names_a_missing_team_and_leaves_it_out_of_the_ranking(app_store):
    # NPS surveys in the demo are not tied to a ticket, so they name no team: within Data Connect the
    # team level has one row without a team, holding every NPS response (and no CSAT)
    at = open_page("pages/satisfaction.py", {**Q2, "kind": "nps", "drill": "product:Data Connect"})
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "team" in d.value.columns)
    teams = list(table["team"])
    assert teams[-1] == "— no team" and "(none)" not in teams and None not in teams
    assert any("— no team: responses that name no team" in shown(c.value) for c in at.caption)
