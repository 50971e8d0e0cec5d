"""Saved segments have an owner and can be shared: who sees which, who may change which (crm.segments)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm import segments
from crm.auth import read_audit
from crm.roles import NotPermitted
from crm.segment_rules import SegmentRule
from crm.store import Store
from tests.unit.importing import sqlite_store

RULE = SegmentRule.create(tiers=["Potential"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """ann (analyst) owns "Mine"; bob (manager) owns "Team", shared; "Old" was saved before segments had owners."""
    with sqlite_store(tmp_path) as made:
        segments.save_segment(made, "Mine", RULE, user="ann", role="analyst")
        segments.save_segment(made, "Team", RULE, user="bob", role="manager", shared=True)
        segments.save_segment(made, "Old", RULE)
        yield made


def seen(store: Store, user: str, role: str) -> dict[str, tuple[str | None, bool, bool]]:
    """name -> (owner, shared, may change) as ``user`` lists them."""
    listed = segments.list_saved(store, user=user, role=role)
    return {r["name"]: (r["created_by"], r["shared"], r["may_change"]) for r in listed.iter_rows(named=True)}


def test_a_person_sees_their_own_the_shared_and_the_ownerless_segments(store):
    assert seen(store, "ann", "analyst") == {"Mine": ("ann", False, True), "Old": (None, False, False),
                                             "Team": ("bob", True, False)}
    assert seen(store, "bob", "manager") == {"Old": (None, False, False), "Team": ("bob", True, True)}
    assert seen(store, "rita", "rep") == {"Old": (None, False, False), "Team": ("bob", True, False)}  # reps save none
    assert seen(store, "root", "admin") == {"Mine": ("ann", False, True), "Old": (None, False, True),
                                            "Team": ("bob", True, True)}
    assert segments.list_saved(store)["name"].to_list() == ["Mine", "Old", "Team"]  # the CLI: every one


def test_another_persons_private_segment_cannot_be_opened_or_found(store):
    assert segments.load_saved(store, "Mine", user="ann", role="analyst") == RULE
    assert segments.load_saved(store, "Team", user="ann", role="analyst") == RULE
    for act in (lambda: segments.load_saved(store, "Mine", user="bob", role="manager"),
                lambda: segments.rename_segment(store, "Mine", "Ours", user="bob", role="manager"),
                lambda: segments.share_segment(store, "Mine", user="bob", role="manager"),
                lambda: segments.delete_segment(store, "Mine", user="bob", role="manager")):
        with pytest.raises(segments.SavedSegmentError, match="no saved segment named 'Mine'"):
            act()


def test_only_the_owner_or_an_admin_changes_a_segment(store):
    log = read_audit(store).height
    with pytest.raises(NotPermitted, match=r"only its owner \(bob\) or an admin may change the saved segment 'Team'"):
        segments.rename_segment(store, "Team", "Ours", user="ann", role="analyst")
    with pytest.raises(NotPermitted, match=r"only its owner \(bob\)"):
        segments.share_segment(store, "Team", False, user="ann", role="analyst")
    with pytest.raises(NotPermitted, match=r"only its owner \(bob\)"):
        segments.delete_segment(store, "Team", user="ann", role="analyst")
    with pytest.raises(NotPermitted, match=r"only its owner \(bob\)"):
        segments.save_segment(store, "Team", SegmentRule.create(tiers=["Newcomers"]), user="ann", role="analyst",
                              replace=True)
    with pytest.raises(NotPermitted, match=r"only an admin \(it has no owner\) may change the saved segment 'Old'"):
        segments.delete_segment(store, "Old", user="ann", role="analyst")
    with pytest.raises(NotPermitted, match="the rep role may not save segments"):
        segments.share_segment(store, "Team", False, user="bob", role="rep")  # bob, since made a rep
    assert read_audit(store).height == log
    assert segments.load_saved(store, "Team") == RULE and seen(store, "bob", "manager")["Team"] == ("bob", True, True)

    segments.rename_segment(store, "Team", "Europe team", user="bob", role="manager")
    segments.delete_segment(store, "Mine", user="root", role="admin")
    segments.delete_segment(store, "Old", user="root", role="admin")
    assert segments.list_saved(store)["name"].to_list() == ["Europe team"]
    assert read_audit(store).select("actor", "action").rows()[-3:] == [
        ("bob", "segment.renamed"), ("root", "segment.deleted"), ("root", "segment.deleted")]


def test_sharing_shows_a_segment_to_everyone_and_unsharing_takes_it_back(store):
    segments.share_segment(store, "Mine", user="ann", role="analyst")
    assert seen(store, "bob", "manager")["Mine"] == ("ann", True, False)
    segments.share_segment(store, "Mine", False, user="ann", role="analyst")
    assert "Mine" not in seen(store, "bob", "manager")
    assert seen(store, "ann", "analyst")["Mine"] == ("ann", False, True)


def test_replacing_keeps_the_owner_and_the_sharing(store):
    segments.save_segment(store, "Team", SegmentRule.create(tiers=["Newcomers"]), user="bob", role="manager",
                          replace=True, shared=False)
    assert seen(store, "ann", "analyst")["Team"] == ("bob", True, False)
    assert segments.load_saved(store, "Team").tiers == ("Newcomers",)


def test_an_older_store_gets_the_shared_column(tmp_path):
    with sqlite_store(tmp_path) as store:
        store.ensure_schema()
        with store.transaction() as conn:
            conn.execute(sa.text("ALTER TABLE saved_segments DROP COLUMN shared"))
            conn.execute(sa.text("INSERT INTO saved_segments (name, rule, created_by) VALUES ('Kept', '{\"tiers\": "
                                 "[\"Potential\"]}', 'ann')"))
        assert seen(store, "ann", "analyst") == {"Kept": ("ann", False, True)}
        assert "Kept" not in seen(store, "bob", "manager")
