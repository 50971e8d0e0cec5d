"""The audit log as people read it (crm.audit_log), and the CLI's exports and changes in it."""

from __future__ import annotations

import ast
import getpass
import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from crm import audit_log, segments
from crm.auth import audit, read_audit
from crm.cli import main
from crm.export import read_manifest
from crm.roles import ACTIONS as ROLE_ACTIONS
from crm.store import Store
from tests.conftest import ROOT
from tests.unit.importing import sqlite_store

CLI = f"cli:{getpass.getuser()}"


def test_actions_read_as_words_and_unknown_ones_as_their_code():
    assert audit_log.action_words("data.exported") == "Exported data"
    assert audit_log.action_words("segment.unshared") == "Stopped sharing a segment"
    assert audit_log.action_words("session.expired_idle") == "Session expired idle"


def written_actions() -> set[str]:
    """Every action name the code hands to crm.auth.audit (third argument) or to auth's _end_session (fifth)."""
    found: set[str] = set()
    for path in (ROOT / "crm").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = {"audit": 2, "_end_session": 4}.get(name)
            if position is not None and len(node.args) > position:
                found |= _names(node.args[position])
    return found


def _names(node: ast.expr) -> set[str]:
    """The texts an argument can be: a literal, or either branch of ``a if condition else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _names(node.body) | _names(node.orelse)
    return set()


def test_every_audited_action_has_words_and_is_documented():
    assert written_actions() == set(audit_log.ACTIONS)
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    for action in (*audit_log.ACTIONS, *ROLE_ACTIONS):
        assert f"`{action}`" in doc, action


def test_a_detail_reads_as_one_line_of_words():
    detail = json.dumps({"via": "app", "grid": "customers", "rows": 1204, "masking": None, "shared": True,
                         "tables": {"customers": 3, "orders": 0}, "merged": ["B", "C"], "ratio": 0.25,
                         "sla_targets_to": {"urgent": 2.0}})
    assert audit_log.detail_text(detail) == (
        "from: app · table: customers · rows: 1,204 · shared: yes · tables: customers 3, orders 0 · merged: B, C · "
        "ratio: 0.25 · SLA targets after: urgent 2")
    assert audit_log.detail_text(None) == "" and audit_log.detail_text("{}") == ""
    assert audit_log.detail_text("not json") == "not json"


@pytest.fixture
def store(tmp_path: Path):
    with sqlite_store(tmp_path) as made:
        audit(made, "ann", "data.exported", {"rows": 3}, at=datetime(2026, 11, 2, 9, 0))
        audit(made, "bob", "segment.saved", {"segment": "Lapsing"}, at=datetime(2026, 11, 20, 9, 0))
        audit(made, None, "login.failure", {"user": "eve", "reason": "unknown user"}, at=datetime(2026, 12, 1, 8, 0))
        audit(made, "ann", "segment.deleted", {"segment": "Lapsing"}, at=datetime(2026, 12, 5, 17, 30))
        yield made


def test_entries_are_newest_first_and_filtered_by_day_person_and_action(store):
    assert audit_log.read_entries(store)["action"].to_list() == [
        "segment.deleted", "login.failure", "segment.saved", "data.exported"]
    assert audit_log.read_entries(store, date(2026, 11, 20))["actor"].to_list() == ["ann", None, "bob"]
    assert audit_log.read_entries(store, actors=["ann"])["action"].to_list() == ["segment.deleted", "data.exported"]
    picked = audit_log.read_entries(store, date(2026, 11, 3), ["ann", "bob"], ["segment.saved", "data.exported"])
    assert picked["actor"].to_list() == ["bob"]


def test_the_table_has_words_not_column_names(store):
    table = audit_log.audit_table(audit_log.read_entries(store, date(2026, 12, 1)))
    assert table.columns == ["When", "Who", "What", "Details"]
    assert table.rows() == [
        (datetime(2026, 12, 5, 17, 30), "ann", "Deleted a segment", "segment: Lapsing"),
        (datetime(2026, 12, 1, 8, 0), "—", "Sign-in refused", "user: eve · reason: unknown user"),
    ]
    assert audit_log.describe_choice(date(2026, 12, 1), ["ann"], ["segment.deleted"]) == (
        "since 2026-12-01; who ann; what Deleted a segment")
    assert audit_log.describe_choice(None, [], []) == "every entry"


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('audit')}/crm.db"
    assert main(["--db", url, "init-demo", "--seed", "3", "--scale", "0.05", "--as-of", "2026-06-30"]) == 0
    return url


def last_entry(url: str) -> dict:
    with Store(url) as store:
        log = read_audit(store)
    return log.row(log.height - 1, named=True)


@pytest.mark.parametrize(("user", "masked"), [("analyst", True), ("exec", True), ("manager", False), (None, False)])
def test_a_cli_export_is_masked_for_the_as_role_and_audited(demo_url, tmp_path, user, masked):
    out = tmp_path / "lapsing.parquet"
    args = ["--db", demo_url, *(["--as", user] if user else []), "export", "segment", "--rule",
            '{"tiers": ["High value", "Potential"]}', "--format", "parquet", "--out", str(out)]
    assert main(args) == 0
    exported = pl.read_parquet(out)
    assert exported.height > 0
    emails = exported["email"].drop_nulls()
    assert emails.len() > 0 and emails.str.contains(r"^.\*\*\*@").all() == masked
    assert exported["phone"].drop_nulls().str.starts_with("••••••••").all() == masked
    manifest = read_manifest(out.read_bytes(), "parquet")
    role = {"analyst": "analyst", "exec": "executive"}.get(user or "")
    assert manifest["masking"] == (f"email and phone masked for the {role} role" if masked else "")
    entry = last_entry(demo_url)
    detail = json.loads(entry["detail"])
    assert (entry["actor"], entry["action"]) == (user or CLI, "data.exported")
    assert {k: detail[k] for k in ("via", "grid", "format", "rows", "file", "masking")} == {
        "via": "cli", "grid": "segment", "format": "parquet", "rows": exported.height, "file": str(out),
        "masking": manifest["masking"] or None}
    assert detail["filters"].startswith("2026-04-02 – 2026-06-30")  # and the --as user's scope, if any
    assert detail["selection"].startswith("RFM as of 2026-06-30")


def test_cli_changes_are_audited_as_the_as_user_or_the_system_user(demo_url, capsys):
    assert main(["--db", demo_url, "--as", "admin", "settings", "set", "churn_basis", "subscription"]) == 0
    assert (last_entry(demo_url)["actor"], last_entry(demo_url)["action"]) == ("admin", "settings.churn_basis_changed")
    assert main(["--db", demo_url, "settings", "set", "churn_basis", "activity"]) == 0
    entry = last_entry(demo_url)
    assert (entry["actor"], json.loads(entry["detail"])["to"]) == (CLI, "activity")
    assert main(["--db", demo_url, "--as", "manager", "settings", "set", "churn_basis", "subscription"]) == 1
    assert "the manager role may not change what counts as churn" in capsys.readouterr().err
    assert last_entry(demo_url)["id"] == entry["id"]  # refused: nothing written, not even an audit row


def test_cli_audit_json_prints_one_object_per_entry(demo_url, capsys):
    capsys.readouterr()
    assert main(["--db", demo_url, "audit", "--since", "2026-01-01", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    with Store(demo_url) as store:
        assert len(entries) == read_audit(store, since=date(2026, 1, 1)).height > 0
    assert all({"actor", "action", "at", "detail"} <= set(e) and isinstance(e["detail"], dict) for e in entries)
    added = [e for e in entries if e["action"] == "user.added"]  # the demo users
    assert [(e["actor"], e["detail"]["user"]) for e in added] == [
        ("demo", "exec"), ("demo", "manager"), ("demo", "analyst"), ("demo", "rep"), ("demo", "admin")]
    assert all(datetime.fromisoformat(e["at"]) for e in entries)


def test_a_cli_export_by_name_opens_only_a_segment_the_as_user_may_see(demo_url, tmp_path, capsys):
    with Store(demo_url) as store:
        segments.save_segment(store, "Managers only", segments.SegmentRule.create(tiers=["Potential"]), user="manager",
                              role="manager")
    out = tmp_path / "mine.csv"
    base = ["--db", demo_url, "export", "segment", "--name", "Managers only", "--out", str(out)]
    assert main(base[:2] + ["--as", "analyst"] + base[2:]) == 2
    assert "error: no saved segment named 'Managers only'" in capsys.readouterr().err and not out.exists()
    assert main(base[:2] + ["--as", "manager"] + base[2:]) == 0 and out.exists()
    assert main(base) == 0  # whoever holds the store's URL sees every segment
