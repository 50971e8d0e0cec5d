"""``python -m crm users ...`` and ``audit``: passwords from stdin or a prompt, no hashes out, plain errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from argon2 import PasswordHasher

from crm import auth
from crm.cli import main
from crm.store import Store
from tests.conftest import ROOT

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch):
    monkeypatch.setattr(auth, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"


def run(capsys, monkeypatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal: the password is its first line
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_add_reads_the_password_from_stdin_and_list_shows_no_hashes(url, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "--db", url, "users", "add", "Boss", "--role", "admin", stdin=PASSWORD + "\r\n")
    assert (code, err) == (0, "added user boss (admin, scope all)\n")
    code, _, err = run(capsys, monkeypatch, "--db", url, "users", "add", "rep1", "--role", "rep", "--scope", "owner=Ann Lee",
                       "--scope", "region=Europe", "--display-name", "Rep One", stdin=PASSWORD + "\n")
    assert code == 0, err
    with Store(url) as store:
        assert auth.authenticate(store, "boss", PASSWORD).role == "admin"  # the line ending is not part of it
        assert auth.authenticate(store, "rep1", PASSWORD).scope == auth.Scope(regions=("Europe",), owners=("Ann Lee",))
    code, out, _ = run(capsys, monkeypatch, "--db", url, "users", "list")
    lines = out.splitlines()
    assert lines[0] == "name,display_name,role,scope,disabled,locked,locked_until,failed_attempts,last_login_at"
    assert lines[1].startswith("boss,boss,admin,all,false,false,,0,20")
    assert lines[2].startswith("rep1,Rep One,rep,region=Europe; owner=Ann Lee,false,false,,0,20")
    code, out, _ = run(capsys, monkeypatch, "--db", url, "users", "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["boss", "rep1"] and "password_hash" not in rows[0]
    assert "argon2" not in out


def test_add_through_a_real_pipe(url):
    done = subprocess.run([sys.executable, "-m", "crm", "--db", url, "users", "add", "ann", "--role", "analyst"],
                          cwd=ROOT, input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    with Store(url) as store:
        assert auth.authenticate(store, "ann", PASSWORD).name == "ann"


def test_on_a_terminal_the_password_is_asked_twice(url, capsys, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x", PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    assert main(["--db", url, "users", "add", "ann", "--role", "analyst"]) == 1
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    assert main(["--db", url, "users", "add", "ann", "--role", "analyst"]) == 0
    with Store(url) as store:
        assert auth.authenticate(store, "ann", PASSWORD).name == "ann"


@pytest.mark.parametrize("argv, stdin, code, message", [
    (["users", "add", "ann", "--role", "boss"], PASSWORD, 2, "invalid choice: 'boss'"),
    (["users", "add", "ann"], PASSWORD, 2, "the following arguments are required: --role"),
    (["users", "add", "ann", "--role", "analyst"], "short pw\n", 1, "error: a password needs at least 10 characters"),
    (["users", "add", "ann", "--role", "analyst"], "", 1, "error: no password on standard input"),
    (["users", "add", "ann", "--role", "rep"], PASSWORD, 1, "error: a rep needs a scope with an owner"),
    (["users", "add", "ann", "--role", "analyst", "--scope", "country=FR"], PASSWORD, 2, "error: a scope is region=NAME"),
    (["users", "add", "ann smith", "--role", "analyst"], PASSWORD, 1, "error: bad user name 'ann smith'"),
    (["users", "disable", "ghost"], "", 1, "error: no user named 'ghost'"),
    (["users", "reset-password", "ghost"], PASSWORD, 1, "error: no user named 'ghost'"),
    (["users", "set-role", "ghost", "boss"], "", 2, "invalid choice: 'boss'"),
    (["audit", "--limit", "0"], "", 2, "a number from 1 up"),
], ids=["bad-role", "no-role", "short-password", "no-password", "rep-without-owner", "bad-scope", "bad-name",
        "disable-unknown", "reset-unknown", "set-bad-role", "bad-limit"])
def test_refusals_are_one_line_with_the_contract_exit_codes(url, capsys, monkeypatch, argv, stdin, code, message):
    got, _, err = run(capsys, monkeypatch, "--db", url, *argv, stdin=stdin)
    assert got == code and message in err and "Traceback" not in err
    with Store(url) as store:
        assert auth.list_users(store).height == 0 and auth.read_audit(store).height == 0


def test_each_change_is_audited_and_audit_lists_it(url, capsys, monkeypatch):
    steps = [
        (["users", "add", "boss", "--role", "admin"], PASSWORD),
        (["users", "add", "ann", "--role", "analyst"], PASSWORD),
        (["users", "set-role", "ann", "manager", "--scope", "team=East"], ""),
        (["users", "set-scope", "ann", "--scope", "region=Europe"], ""),
        (["users", "reset-password", "ann"], PASSWORD + "2"),
        (["users", "disable", "ann"], ""),
        (["users", "enable", "ann"], ""),
    ]
    for argv, stdin in steps:
        code, _, err = run(capsys, monkeypatch, "--db", url, *argv, stdin=stdin)
        assert code == 0, err
    code, _, err = run(capsys, monkeypatch, "--db", url, "users", "disable", "boss")
    assert code == 1 and "last enabled admin" in err
    with Store(url) as store:
        assert auth.authenticate(store, "ann", PASSWORD + "2").scope == auth.Scope(regions=("Europe",))
    code, out, _ = run(capsys, monkeypatch, "--db", url, "audit", "--json")
    entries = json.loads(out)
    assert [e["action"] for e in entries] == ["user.added", "user.added", "user.role_changed", "user.scope_changed",
                                              "user.password_reset", "user.disabled", "user.enabled", "login.success"]
    assert entries[0]["actor"].startswith("cli") and all(e["actor"] == entries[0]["actor"] for e in entries[:-1])
    assert entries[-1]["actor"] == "ann"
    assert entries[2]["detail"] == {"user": "ann", "from": "analyst", "to": "manager", "scope": "team=East"}
    assert set(entries[0]) == {"id", "at", "actor", "action", "detail"}
    code, out, _ = run(capsys, monkeypatch, "--db", url, "audit", "--limit", "2")
    lines = out.splitlines()
    assert lines[0] == "id,at,actor,action,detail" and len(lines) == 3
    assert ",user.enabled," in lines[1] and ",login.success," in lines[2]
    code, out, _ = run(capsys, monkeypatch, "--db", url, "audit", "--since", "2100-01-01", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_a_new_store_lists_nothing_and_writes_nothing(url, tmp_path, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "--db", url, "users", "list")
    assert (code, out) == (0, "") and "no users yet" in err
    code, out, err = run(capsys, monkeypatch, "--db", url, "audit")
    assert (code, out) == (0, "") and "no audit entries yet" in err


def test_init_demo_adds_the_demo_users_unless_told_not_to(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, _, err = run(capsys, monkeypatch, "--db", url, "init-demo", "--scale", "0.02", "--as-of", "2026-06-30",
                       "--no-demo-users")
    assert code == 0, err
    with Store(url) as store:
        assert auth.list_users(store).height == 0
    code, _, err = run(capsys, monkeypatch, "--db", url, "init-demo", "--scale", "0.02", "--as-of", "2026-06-30")
    assert code == 0 and "demo users exec, manager, analyst, rep, admin added" in err
    with Store(url) as store:
        assert auth.authenticate(store, "rep", auth.DEMO_PASSWORD).scope.owners == (auth.DEMO_OWNER,)
