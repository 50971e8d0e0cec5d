"""crm.views: which URL parameters each page owns, their defaults, and how a link's values are checked."""

from __future__ import annotations

import pytest

from crm.views import VIEWS, default_view, page_view, param_names, view_param
from tests.conftest import ROOT


def test_every_page_script_has_an_entry():
    assert sorted(VIEWS) == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("page", sorted(VIEWS))
def test_defaults_are_options_and_a_default_view_is_read_back_as_it_is(page):
    for param in VIEWS[page]:
        assert param.default is None or param.default in param.options
    assert page_view(page, default_view(page)) == (default_view(page), [])


def test_a_link_is_read_with_defaults_filled_in_bad_values_replaced_and_other_pages_settings_left_out():
    view, notices = page_view("pages/funnel.py", {"mode": ["sideways"], "grain": ["week"], "period": ["last_30"]})
    assert view == {"mode": ["cohort"], "by": ["owner"]}
    assert notices == ["Ignored mode='sideways' from the link; one of cohort, strict, snapshot."]


def test_free_parameters_are_kept_as_they_are_and_absent_by_default():
    drill = ["product:Support", "team:North"]
    assert page_view("pages/satisfaction.py", {"drill": drill})[0]["drill"] == drill
    assert "drill" not in default_view("pages/satisfaction.py")


def test_lookups():
    assert param_names("pages/segments.py") == ("by", "x", "y")
    assert view_param("pages/segments.py", "x").default == "recency_days"
    assert param_names("pages/cockpit.py") == ()
    with pytest.raises(KeyError):
        view_param("pages/cockpit.py", "mode")
