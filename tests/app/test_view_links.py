"""AppTest: a link to a page (the filters and crm.views' default settings) is the URL the page keeps, so a page
change writes nothing more (one browser history entry); a page's own settings from a link are used and kept."""

from __future__ import annotations

import pytest

from crm.views import VIEWS, default_view
from tests.app.conftest import open_page, shown

PAGES_WITH_SETTINGS = sorted(page for page, params in VIEWS.items() if params)


def flat(at) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in at.query_params.items()}


@pytest.mark.parametrize("page", PAGES_WITH_SETTINGS)
def test_a_link_with_the_default_settings_is_the_url_the_page_keeps(app_store, page):
    link = {"period": ["last_90"], **default_view(page)}
    at = open_page(page, link)
    assert not at.exception
    assert flat(at) == link
    assert not [w.value for w in at.warning if "link" in w.value]


def test_the_segments_axes_from_a_link_are_used_and_not_reported_as_unknown(app_store):
    link = {"period": ["last_90"], "by": ["tier"], "x": ["frequency"], "y": ["recency_days"]}
    at = open_page("pages/segments.py", link)
    assert not at.exception
    assert not [w.value for w in at.warning if "link" in w.value]
    assert (at.session_state["seg_by"], at.session_state["seg_x"], at.session_state["seg_y"]) == (
        "tier", "frequency", "recency_days")
    assert flat(at) == link


def test_another_pages_settings_are_reported_and_dropped(app_store):
    at = open_page("pages/service.py", {"period": ["last_90"], "mode": ["strict"], "grain": ["month"]})
    assert any("unknown link parameter(s): mode" in shown(w.value) for w in at.warning)
    assert flat(at) == {"period": ["last_90"], "grain": ["month"], "basis": ["calendar"], "split": ["team"]}
