"""AppTest: the active selections are shown in words at the top of every page, each removable there;
a link's selection that matches nothing is reported like other bad parameters."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from crm.dataset import load_frames
from crm.filters import Period
from crm.scope import Scope
from crm.segments import SegmentRule, member_ids
from tests.app.conftest import APP, open_page, shown

Q2 = {"from": "2026-04-01", "to": "2026-06-30"}
PAGES = ("pages/cockpit.py", "pages/funnel.py", "pages/satisfaction.py", "pages/service.py", "pages/customers.py",
         "pages/segments.py")


def banner(at) -> list[str]:
    """The words of each active selection, in order."""
    return [shown(m.value) for m in at.markdown if m.key is None and shown(m.value).startswith(("Customers:", "Funnel",
                                                                                                  "Deal "))]


def rule_json(store) -> tuple[str, int]:
    rule = SegmentRule.create(segments=["At Risk"], scope={"region": ["Europe"]}).dated(Period(date(2026, 6, 30),
                                                                                              date(2026, 6, 30)))
    return rule.to_json(), len(member_ids(load_frames(store), rule.to_json(), scope=Scope()))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_names_the_customer_segment_and_the_chart_selection(app_store, page):
    seg, count = rule_json(app_store)
    assert count > 0
    at = open_page(page, {**Q2, "seg": seg, "select": ["step:3", "owner:Ava Thompson"]})
    assert not at.exception, at.exception
    assert banner(at) == [f"Customers: At Risk in Europe · {count:,} customers", "Funnel stage: proposal",
                          "Deal owner: Ava Thompson"]


def test_the_cross_removes_one_selection_and_the_link_follows(app_store):
    seg, _ = rule_json(app_store)
    at = open_page("pages/funnel.py", {**Q2, "seg": seg, "select": ["step:3", "owner:Ava Thompson"]})
    at.button(key="remove_sel_step").click().run()
    assert not at.exception
    assert at.query_params["select"] == "owner:Ava Thompson"
    assert [t.split(":")[0] for t in banner(at)] == ["Customers", "Deal owner"]
    at.button(key="remove_sel_customers").click().run()
    assert "seg" not in at.query_params
    assert [t.split(":")[0] for t in banner(at)] == ["Deal owner"]


def test_customer_tiles_say_they_count_only_the_selection(app_store):
    seg, _ = rule_json(app_store)
    at = open_page("pages/cockpit.py", {**Q2, "seg": seg})
    notes = [shown(c.value) for c in at.caption if "Counts only the selected customers" in shown(c.value)]
    assert len(notes) == 2  # active customers and churn rate
    assert "At Risk in Europe, as of 2026-06-30" in notes[0]
    plain = open_page("pages/cockpit.py", Q2)
    assert not [c for c in plain.caption if "Counts only" in shown(c.value)]
    assert banner(plain) == []


def test_a_selection_matching_nothing_is_reported_and_dropped(app_store):
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update({**Q2, "select": ["step:99", "owner:Nobody Known"]})
    at.run()
    assert not at.exception
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "Ignored the selection step:99 from the link: the funnel has no such stage (steps: 1 lead, " in warnings
    assert "Ignored the selection owner:Nobody Known from the link: no deal has that deal owner." in warnings
    assert "select" not in at.query_params
    assert banner(at) == []
