"""Every audited change writes its row (actor, action, detail) in the change's transaction, and a role that
may not make a change is refused with nothing written: neither the change nor an audit row."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, time
from pathlib import Path

import polars as pl
import pytest

from crm import segments
from crm.audit_log import ACTIONS
from crm.auth import read_audit
from crm.business_hours import BusinessCalendar
from crm.duplicates import merge_customers, undo_merge
from crm.ingest import import_file, run_import, undo_import
from crm.roles import NotPermitted
from crm.segment_rules import SegmentRule
from crm.settings import ChurnBasis, ServiceSettings, save_churn_basis, save_settings
from crm.store import Store
from tests.unit.importing import mapping, sqlite_store, write

T = datetime(2026, 5, 4, 10, 0)
FRAMES = {
    "customers": pl.DataFrame({"customer_id": ["A", "B"], "name": ["Acme", "Acme Ltd"],
                               "email": ["ops@acme.io", "ops@acme.io"], "created_at": [T, T]}),
    "orders": pl.DataFrame({"order_id": ["R1", "R2"], "customer_id": ["A", "B"], "ordered_at": [T, T],
                            "amount": [10.0, 20.0]}),
}
NEW_CUSTOMER = """
[[import]]
table = "customers"
file = "new.csv"
[import.columns]
customer_id = "id"
name = "name"
"""
LOADED = {"import": 1, "tables": {"customers": 1}, "rows": 1, "rejected": 0, "files": ["new.csv"], "data_version": 2}
TIERS = SegmentRule.create(tiers=["Churn risk"])
CALENDAR = BusinessCalendar(workdays=(1, 2, 3, 4), start=time(8), end=time(16), timezone="Europe/Berlin")
TARGETS = {"urgent": 2.0, "high": 4.0, "normal": 8.0, "low": 48.0}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store with customers A and B (one email: a duplicate pair), data version 1."""
    with sqlite_store(tmp_path) as made:
        made.replace_business_data(FRAMES)
        write(tmp_path, "new.csv", "id,name\nN1,Newco\n")
        write(tmp_path, "customers.csv", "customer_id,name\nN1,Newco\n")  # canonical names: import TABLE FILE
        yield made


def _import(store: Store, folder: Path, role: str | None = None) -> None:
    run_import(store, mapping(folder, NEW_CUSTOMER), actor="ann", role=role)


def _settings() -> ServiceSettings:
    return ServiceSettings(calendar=CALENDAR, sla_targets=tuple(TARGETS.items()))


Action = Callable[[Store, Path], object]
CASES: list[tuple[str, Action, str, dict]] = [
    ("import", lambda s, f: _import(s, f), "import.loaded", LOADED),
    ("import one file", lambda s, f: import_file(s, "customers", f / "customers.csv", actor="ann"), "import.loaded",
     {**LOADED, "files": ["customers.csv"]}),
    ("undo an import", lambda s, f: (_import(s, f), undo_import(s, 1, actor="ann")), "import.undone",
     {"import": 1, "removed": {"customers": 1}, "restored": {}, "data_version": 3}),
    ("merge", lambda s, f: merge_customers(s, "A", ["B"], actor="ann"), "customers.merged",
     {"merge": 1, "kept": "A", "merged": ["B"], "repointed": {"orders": 1}, "data_version": 2}),
    ("unmerge", lambda s, f: (merge_customers(s, "A", ["B"], actor="bob"), undo_merge(s, 1, actor="ann")),
     "customers.unmerged", {"merge": 1, "kept": "A", "restored": ["B"], "repointed": {"orders": 1}, "data_version": 3}),
    ("churn basis", lambda s, f: save_churn_basis(s, ChurnBasis.SUBSCRIPTION, actor="ann"),
     "settings.churn_basis_changed", {"from": "activity", "to": "subscription", "data_version": 2}),
    ("calendar and targets", lambda s, f: save_settings(s, _settings(), actor="ann"), "settings.service_changed", {
        "calendar_from": json.loads(BusinessCalendar().to_json()), "calendar_to": json.loads(CALENDAR.to_json()),
        "sla_targets_from": {"urgent": 1.0, "high": 4.0, "normal": 8.0, "low": 24.0}, "sla_targets_to": TARGETS,
        "data_version": 2}),
    ("save a segment", lambda s, f: segments.save_segment(s, " Lapsing ", TIERS, user="ann", shared=True),
     "segment.saved", {"segment": "Lapsing", "rule": '{"tiers":["Churn risk"]}', "replaced": False, "shared": True}),
    ("replace a segment", lambda s, f: (segments.save_segment(s, "Lapsing", TIERS, user="ann"),
                                        segments.save_segment(s, "Lapsing", TIERS, user="ann", replace=True)),
     "segment.saved", {"segment": "Lapsing", "rule": '{"tiers":["Churn risk"]}', "replaced": True, "shared": None}),
    ("rename a segment", lambda s, f: (segments.save_segment(s, "Lapsing", TIERS, user="ann"),
                                       segments.rename_segment(s, "Lapsing", "Slipping", user="ann")),
     "segment.renamed", {"from": "Lapsing", "to": "Slipping"}),
    ("share a segment", lambda s, f: (segments.save_segment(s, "Lapsing", TIERS, user="ann"),
                                      segments.share_segment(s, "Lapsing", user="ann")),
     "segment.shared", {"segment": "Lapsing"}),
    ("unshare a segment", lambda s, f: (segments.save_segment(s, "Lapsing", TIERS, user="ann", shared=True),
                                        segments.share_segment(s, "Lapsing", False, user="ann")),
     "segment.unshared", {"segment": "Lapsing"}),
    ("delete a segment", lambda s, f: (segments.save_segment(s, "Lapsing", TIERS, user="ann"),
                                       segments.delete_segment(s, "Lapsing", user="ann")),
     "segment.deleted", {"segment": "Lapsing", "owner": "ann", "rule": '{"tiers":["Churn risk"]}'}),
]


@pytest.mark.parametrize(("do", "action", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_audited_change_writes_its_row(store, tmp_path, do, action, detail):
    before = read_audit(store).height
    do(store, tmp_path)
    log = read_audit(store)
    last = log.row(log.height - 1, named=True)
    assert log.height > before
    assert (last["actor"], last["action"]) == ("ann", action)
    assert json.loads(last["detail"]) == detail
    assert isinstance(last["at"], datetime)
    assert action in ACTIONS  # the admin page says it in words


REFUSED: list[tuple[str, str, Action]] = [
    ("rep saves the calendar", "rep", lambda s, f: save_settings(s, _settings(), actor="x", role="rep")),
    ("analyst saves the calendar", "analyst", lambda s, f: save_settings(s, _settings(), actor="x", role="analyst")),
    ("manager sets the churn basis", "manager",
     lambda s, f: save_churn_basis(s, ChurnBasis.SUBSCRIPTION, actor="x", role="manager")),
    ("manager imports", "manager", lambda s, f: _import(s, f, role="manager")),
    ("analyst imports one file", "analyst",
     lambda s, f: import_file(s, "customers", f / "customers.csv", actor="x", role="analyst")),
    ("executive merges", "executive", lambda s, f: merge_customers(s, "A", ["B"], actor="x", role="executive")),
    ("rep saves a segment", "rep", lambda s, f: segments.save_segment(s, "Mine", TIERS, user="x", role="rep")),
    ("executive saves a segment", "executive",
     lambda s, f: segments.save_segment(s, "Mine", TIERS, user="x", role="executive")),
]


@pytest.mark.parametrize(("role", "do"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_role_that_may_not_write_is_refused_and_nothing_is_written(store, tmp_path, role, do):
    version, log = store.data_version(), read_audit(store).height
    with pytest.raises(NotPermitted, match=f"the {role} role may not .* \\(only .*admins may\\)"):
        do(store, tmp_path)
    assert (store.data_version(), read_audit(store).height) == (version, log)
    assert segments.list_saved(store).is_empty()


def test_undoing_needs_the_same_right_as_doing(store, tmp_path):
    _import(store, tmp_path, role="admin")
    merge_customers(store, "A", ["B"], actor="ann", role="admin")
    version, log = store.data_version(), read_audit(store).height
    with pytest.raises(NotPermitted, match="the manager role may not import data"):
        undo_import(store, 1, actor="x", role="manager")
    with pytest.raises(NotPermitted, match="the analyst role may not merge customers"):
        undo_merge(store, 1, actor="x", role="analyst")
    assert (store.data_version(), read_audit(store).height) == (version, log)
    undo_merge(store, 1, actor="ann", role="admin")
    undo_import(store, 1, actor="ann", role="admin")
    assert read_audit(store)["action"].to_list()[-2:] == ["customers.unmerged", "import.undone"]


def test_managers_change_the_calendar_and_only_admins_the_churn_basis(store):
    save_settings(store, _settings(), actor="mia", role="manager")
    save_churn_basis(store, ChurnBasis.SUBSCRIPTION, actor="root", role="admin")
    log = read_audit(store)
    assert log.select("actor", "action").rows()[-2:] == [("mia", "settings.service_changed"),
                                                         ("root", "settings.churn_basis_changed")]


def test_an_audit_row_rolls_back_with_a_refused_change(store, tmp_path):
    before = read_audit(store).height
    with pytest.raises(segments.SavedSegmentError, match="nothing is selected"):
        segments.save_segment(store, "Empty", SegmentRule(), user="ann")
    merge_customers(store, "A", ["B"], actor="ann")
    with pytest.raises(Exception, match="no customer B"):
        merge_customers(store, "A", ["B"], actor="ann")
    assert read_audit(store)["action"].to_list()[before:] == ["customers.merged"]
