"""``python -m crm [--db URL] COMMAND``: the command-line contract of DESIGN.md.

Commands: init-demo, import, mapping, imports, customers, metrics, report, export, settings, users, audit.
Errors a user can cause end in a one-paragraph message on stderr and exit code 2 (usage) or 1 (rejected input,
unreachable store); never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from crm import auth, cross_sell, demo, roles, schema, segments
from crm.config import ConfigError, resolve_database_url
from crm.customer_view import CustomerNotFound
from crm.dataset import Frames, load_frames
from crm.duplicates import (
    DEFAULT_THRESHOLD,
    MergeError,
    duplicate_candidates,
    merge_customers,
    merge_history,
    undo_merge,
)
from crm.export import FORMATS, build_manifest, write_export
from crm.filters import DEFAULT_PRESET, FIRST_DAY, LAST_DAY, Filters, Period, resolve_preset
from crm.ingest import ImportRejected, import_file, import_history, load_mapping, run_import, undo_import
from crm.mapping import MappingError, load_mapping_file, to_toml
from crm.masking import mask_contacts, masking_note
from crm.metrics import METRICS, churn, compute_with_previous, funnel, rfm, satisfaction, service
from crm.metrics.registry import CHURN_BASIS_TEXT
from crm.narrowing import narrow
from crm.reports import REPORTS, ReportOptionError, ReportOptions, build_report
from crm.scope import Scope
from crm.settings import (
    CHURN_BASIS,
    ChurnBasis,
    SettingsError,
    load_churn_basis,
    load_settings,
    parse_churn_basis,
    save_churn_basis,
)
from crm.sources import ReadOptions, SourceError
from crm.store import Store, StoreError
from crm.suggest import suggest_mapping


class UsageError(Exception):
    """Bad arguments (exit 2)."""


def _date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{text} is outside {FIRST_DAY}..{LAST_DAY}")
    return day


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--from", dest="date_from", type=_date, help="first day, YYYY-MM-DD")
    group.add_argument("--to", dest="date_to", type=_date, help="last day, YYYY-MM-DD (default: last day with data)")
    for dim in ("region", "segment", "product", "team", "owner"):
        group.add_argument(f"--{dim}", action="append", default=[], metavar=dim.upper(),
                           help=f"keep only this {dim} (repeatable)")
    group.add_argument("--customers", default="", help="comma-separated customer ids (a selected set)")
    group.add_argument("--select", action="append", default=[], metavar="KEY:VALUE",
                       help="a chart selection, e.g. step:3 or owner:NAME (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every command."""
    parser = argparse.ArgumentParser(prog="python -m crm", description="CRM Cockpit command line")
    parser.add_argument("--db", help="SQLAlchemy URL (default: CRM_DATABASE_URL, secrets.toml, data/crm.db)")
    parser.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as this user: their row scope narrows every report, metric and export, their "
                             "role decides what may be changed and which fields are masked (default: whoever "
                             "holds the store's URL: every row)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init-demo", help="create the schema and fill it with seeded demo data")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the default size (1 ≈ 10k deals)")
    p.add_argument("--as-of", type=_date, default=None, help="last day of data (default: yesterday)")
    p.add_argument("--no-demo-users", action="store_true",
                   help=f"do not add the demo users ({', '.join(u[0] for u in auth.DEMO_USERS)}; demo-only password)")

    p = sub.add_parser("import", help="run a mapping file (--mapping FILE.toml), or load one file into one table",
                       description="import --mapping FILE.toml [--quarantine DIR] [--dry-run]  |  import TABLE FILE "
                                   "[--mapping FILE.json] [--quarantine FILE]: all or nothing, in one transaction")
    p.add_argument("table", nargs="?", metavar="TABLE", help=f"one of: {', '.join(schema.BUSINESS_TABLES)}")
    p.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a CSV or XLSX file with canonical column names")
    p.add_argument("--mapping", type=Path, help="a TOML mapping file (see DESIGN.md), or with TABLE FILE a JSON "
                                                '{"columns": {"Source": "canonical"}}')
    p.add_argument("--quarantine", type=Path, help="load the valid rows and write the bad ones here "
                                                   "(a folder for a mapping, a file for TABLE FILE)")
    p.add_argument("--dry-run", action="store_true", help="validate and say what would be written; write nothing")

    p = sub.add_parser("mapping", help="draft a mapping file for a source file")
    p.add_argument("action", choices=("suggest",))
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--table", choices=schema.BUSINESS_TABLES, help="the target table (default: guessed from the headers)")
    p.add_argument("--sheet", help="the workbook sheet (default: the first)")

    p = sub.add_parser("imports", help="list the imports, or undo one")
    p.add_argument("action", choices=("list", "undo"))
    p.add_argument("id", nargs="?", type=int, help="the import to undo (see imports list)")

    p = sub.add_parser("customers", help="duplicate customers: candidates, merge, merge history, unmerge")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("duplicates", help="pairs that may be one customer entered twice, best first (CSV)")
    a.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD,
                   help=f"name similarity 0-100 from which customers of one place pair up (default {DEFAULT_THRESHOLD:g})")
    a.add_argument("--json", action="store_true", help="a JSON list of row objects instead of CSV")
    a = actions.add_parser("merge", help="keep KEEP_ID, repoint the others' rows to it and delete them (undoable)")
    a.add_argument("keep", metavar="KEEP_ID")
    a.add_argument("others", nargs="+", metavar="OTHER_ID")
    actions.add_parser("merges", help="the merge history (CSV)")
    a = actions.add_parser("unmerge", help="undo a merge exactly (see customers merges)")
    a.add_argument("merge_id", type=int, metavar="MERGE_ID")

    p = sub.add_parser("metrics", help="every registered metric for a period")
    _add_filters(p)
    p.add_argument("--json", action="store_true", help="one flat JSON object (default: a table)")
    p.add_argument("--with-previous", action="store_true", help="add the previous period under 'previous'")

    p = sub.add_parser("report", help="the table behind a panel")
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(REPORTS)}")
    _add_filters(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--mode", choices=funnel.MODES, default="cohort", help="funnel mode (funnel, deals)")
    p.add_argument("--by", choices=sorted({*funnel.BREAKDOWNS, *service.SERVICE_BREAKDOWNS, *churn.CHURN_DIMENSIONS, "tier"}),
                   help="breakdown: owner|team|region|product|source (funnel, win_loss, deals), "
                        "team|agent|priority|channel (service_times), region|segment|industry|source (churn_by), "
                        "segment|tier (rfm_segments)")
    p.add_argument("--window", type=int, default=churn.ACTIVE_WINDOW_DAYS,
                   help="days an order keeps a customer active (churn_trend, churn_by)")
    p.add_argument("--basis", choices=("calendar", "business"), default="calendar",
                   help="service times in calendar or business hours (service_*, sla*)")
    p.add_argument("--days", type=int, default=funnel.DEFAULT_AGEING_DAYS, help="ageing threshold in days")
    p.add_argument("--grain", choices=("month", "week"), default="month", help="trend buckets (nps_trend, csat_trend)")
    p.add_argument("--vs", choices=("previous", "year"), default="previous",
                   help="trend comparison: the previous period or the previous year")
    p.add_argument("--kind", choices=("csat", "nps"), default="csat", help="survey (satisfaction_drill, responses, what_moved)")
    p.add_argument("--level", choices=satisfaction.DRILL_LEVELS, default="product",
                   help="drill level (satisfaction_drill, what_moved)")
    p.add_argument("--within", action="append", default=[], metavar="LEVEL:VALUE",
                   help="the drill path above --level, e.g. product:NAME (repeatable, in order)")
    p.add_argument("--customer", metavar="ID", help="the customer (customer_timeline)")
    p.add_argument("--rule", type=_rule, metavar="'A -> B'",
                   help="cross_sell_targets: the rule, its two products joined by -> (or →)")
    p.add_argument("--min-support", type=_share, default=cross_sell.MIN_SUPPORT, metavar="S",
                   help=f"cross_sell: least share of baskets holding both products, 0-1 (default {cross_sell.MIN_SUPPORT:g})")
    p.add_argument("--min-confidence", type=_share, default=cross_sell.MIN_CONFIDENCE, metavar="C",
                   help="cross_sell: least share of the antecedent's baskets holding the consequent, 0-1 "
                        f"(default {cross_sell.MIN_CONFIDENCE:g})")

    p = sub.add_parser("churn-model", help="the churn model: its held-back evaluation, a fit, or the risk list",
                       description="churn-model evaluate|train|score [--as-of DATE] [--json]: evaluate reports the "
                                   "held-back ROC AUC, precision and recall at the top 10%% and the naive rule beside "
                                   "them; train fits the kept model and lists its rules; score ranks the active "
                                   "customers (within --as USER's scope) by revenue at risk")
    p.add_argument("action", choices=("evaluate", "train", "score"))
    p.add_argument("--as-of", type=_date, default=None, help="the day the data is known through (default: the last "
                                                             "day with data)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table (score: CSV by default)")

    p = sub.add_parser("settings", help="show the store's settings, or set one (churn_basis)",
                       description="settings show  |  settings set churn_basis activity|subscription")
    p.add_argument("action", choices=("show", "set"))
    p.add_argument("key", nargs="?", metavar="KEY", help=f"the setting to change: {CHURN_BASIS}")
    p.add_argument("value", nargs="?", metavar="VALUE", help=" or ".join(b.value for b in ChurnBasis))

    p = sub.add_parser("export", help="write the customers of a segment to a file, with a manifest")
    p.add_argument("what", choices=("segment",), help="what to export (segment)")
    p.add_argument("--name", help="a saved segment (see the Segments page)")
    p.add_argument("--rule", help='a segment rule as JSON, e.g. \'{"tiers": ["Churn risk"], "scope": {"region": ["Europe"]}}\'')
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--out", type=Path, required=True, help="the file to write (CSV/Parquet: a .manifest.json beside it)")
    _add_filters(p)

    _add_users_parser(sub)
    p = sub.add_parser("audit", help="the audit log (logins, user changes, ...), oldest first")
    p.add_argument("--limit", type=_positive, help="only the newest N entries")
    p.add_argument("--since", type=_date, help="only entries from this day on, YYYY-MM-DD")
    p.add_argument("--json", action="store_true", help="a JSON list of {id, at, actor, action, detail} (default: CSV)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a number from 1 up, not {text}")
    return value


def _add_users_parser(sub: Any) -> None:
    p = sub.add_parser("users", help="local users: list, add, disable, enable, reset-password, set-role, set-scope",
                       description="Passwords are read from standard input when it is not a terminal (the first line), "
                                   "else prompted twice; they are stored only as argon2id hashes.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    scope_help = "region=NAME, team=NAME or owner=NAME: the rows the user may see (repeatable; none: every row)"
    a = actions.add_parser("list", help="name, role, scope, disabled, locked, last login (CSV, no hashes)")
    a.add_argument("--json", action="store_true", help="a JSON list of row objects instead of CSV")
    a = actions.add_parser("add", help="add a user; the password comes from stdin or a prompt")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--role", required=True, choices=auth.ROLES)
    a.add_argument("--scope", action="append", default=[], metavar="KIND=VALUE", help=scope_help)
    a.add_argument("--display-name", help="the name shown in the app (default: NAME)")
    for action, text in (("disable", "refuse the user's logins (kept for the audit log)"),
                         ("enable", "allow logins again; also lifts a lockout"),
                         ("reset-password", "set a new password (stdin or prompt); lifts a lockout")):
        actions.add_parser(action, help=text).add_argument("name", metavar="NAME")
    a = actions.add_parser("set-role", help="change a user's role (with --scope: the scope too)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("role", choices=auth.ROLES, metavar="ROLE", help=" | ".join(auth.ROLES))
    a.add_argument("--scope", action="append", default=None, metavar="KIND=VALUE", help=scope_help)
    a = actions.add_parser("set-scope", help="replace a user's scope (no --scope: every row)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--scope", action="append", default=[], metavar="KIND=VALUE", help=scope_help)


def _cmd_export(store: Store, args: argparse.Namespace) -> int:
    if args.out.is_dir():
        raise UsageError(f"--out names a folder ({args.out}); give a file name, e.g. {args.out / ('segment.' + args.format)}")
    if (args.name is None) == (args.rule is None):
        raise UsageError("export segment takes exactly one of --name NAME (a saved segment) or --rule JSON")
    try:
        acting = _acting(args)
        rule = (segments.load_saved(store, args.name, user=acting.name if acting else None, role=_acting_role(args))
                if args.name else segments.SegmentRule.from_json(args.rule))
    except (segments.SavedSegmentError, segments.SegmentRuleError) as exc:
        raise UsageError(str(exc)) from None
    started = time.perf_counter()
    frames = load_frames(store)
    filters = _filters(args, frames)
    if not rule.scope:  # a rule without its own scope is scored over the dimension filters given here
        rule = dataclasses.replace(rule, scope=segments.SegmentRule.for_filters(filters).scope)
    dated = rule.dated(filters.period)
    assert dated.as_of is not None
    table = segments.customer_table(frames, segments.evaluate(frames, rule, filters.period, _acting_scope(args)),
                                    dated.as_of)
    table = mask_contacts(table, _acting_role(args))  # for an --as role that may not see contacts
    note = masking_note(table.columns, _acting_role(args))
    title = f"Customers of segment {args.name}" if args.name else "Customers of a segment rule"
    manifest = build_manifest(title, filters, table.height, frames.version,
                              selection_rule=f"{dated.describe()} (rule {dated.to_json()})", definitions=rfm.DEFINITIONS,
                              masking=note)
    written = write_export(table, args.format, manifest, args.out)
    auth.audit(store, _cli_actor(args), "data.exported", {
        "via": "cli", "grid": "segment", "title": title, "format": args.format, "file": str(args.out),
        "rows": table.height, "filters": filters.describe(), "selection": dated.describe(), "masking": note or None,
        "data_version": frames.version})
    print(f"exported {table.height:,} customer(s) to {', '.join(map(str, written))} in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def _filters(args: argparse.Namespace, frames: Frames) -> Filters:
    anchor = frames.last_event_date() or date.today()
    end = args.date_to or anchor
    if args.date_from is None:
        period = resolve_preset(DEFAULT_PRESET, end)
    else:
        if args.date_from > end:
            raise UsageError(f"--from {args.date_from} is after --to {end}")
        period = Period(args.date_from, end)
    customers = [c for c in args.customers.split(",") if c.strip()]
    selection = []
    for raw in getattr(args, "select", []):
        key, sep, value = raw.partition(":")
        if not (sep and key and value):
            raise UsageError(f"--select takes KEY:VALUE, got {raw!r}")
        selection.append((key, value))
    return Filters.create(period, regions=args.region, segments=args.segment, products=args.product,
                          teams=args.team, owners=args.owner, customers=customers, selection=selection,
                          scope=_acting_scope(args))


def _acting_user(store: Store, args: argparse.Namespace) -> auth.User | None:
    """The user named by ``--as`` (None without it); an unknown, disabled or unreadable user is an error."""
    if not args.as_user:
        return None
    user = auth.get_user(store, args.as_user)
    if user is None:
        raise auth.UserError(f"--as: no user named {auth.normal_name(args.as_user)!r}")
    if user.disabled:
        raise auth.UserError(f"--as: the user {user.name!r} is disabled")
    return user


def _acting_scope(args: argparse.Namespace) -> Scope:
    """The rows this command may read: the ``--as`` user's scope, or every row for the holder of the URL."""
    user: auth.User | None = getattr(args, "acting", None)
    return Scope() if user is None else user.scope


def _allow(args: argparse.Namespace) -> None:
    """Refuse the command when ``--as`` names a role that may not do it (crm.roles); reads need no right
    beyond the scope, which narrows them."""
    user: auth.User | None = getattr(args, "acting", None)
    action = _NEEDS.get((args.command, getattr(args, "action", None))) or _NEEDS.get((args.command, "*"))
    if user is not None and action is not None:
        roles.require(user.role, action)


_NEEDS: dict[tuple[str, str | None], str] = {
    ("init-demo", "*"): "import", ("import", "*"): "import", ("imports", "*"): "import",
    ("customers", "*"): "merge", ("settings", "set"): "churn_basis", ("users", "*"): "users", ("audit", "*"): "audit",
}
"""The crm.roles action a command needs from an ``--as`` user: (command, sub-action), ``*`` for every
sub-action. Not named (metrics, report, export, mapping suggest, settings show): reads, narrowed by the scope."""


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _print_table(values: dict[str, Any]) -> None:
    width = max(len(m.label) for m in METRICS)
    for m in METRICS:
        v = values[m.key]
        shown = "—" if v is None else (f"{v:,.4f}" if isinstance(v, float) else f"{v:,}")
        print(f"{m.label:<{width}}  {shown:>16}  {m.key}")


def _cmd_init_demo(store: Store, args: argparse.Namespace) -> int:
    spec = demo.DemoSpec(seed=args.seed, scale=args.scale, as_of=args.as_of)
    started = time.perf_counter()
    frames = demo.generate(spec)
    version = store.replace_business_data(frames)
    rows = sum(f.height for f in frames.values())
    print(f"demo data (seed {spec.seed}, scale {spec.scale:g}, through {spec.end_date()}) loaded into "
          f"{store.describe()}: {rows:,} rows in {time.perf_counter() - started:.1f} s; data version {version}",
          file=sys.stderr)
    if not args.no_demo_users:
        added = auth.add_demo_users(store)
        if added:
            print(f"demo users {', '.join(added)} added with the demo-only password {auth.DEMO_PASSWORD!r} "
                  "(not for real data: disable them with `users disable NAME`)", file=sys.stderr)
    return 0


def _acting(args: argparse.Namespace) -> auth.User | None:
    """The ``--as`` user (None: whoever holds the store's URL)."""
    user: auth.User | None = getattr(args, "acting", None)
    return user


def _acting_role(args: argparse.Namespace) -> str | None:
    """The ``--as`` user's role, for the permission checks and masking of crm functions; None without
    ``--as`` (the holder of the store's URL may do everything and sees every field)."""
    user = _acting(args)
    return None if user is None else user.role


def _cli_actor(args: argparse.Namespace | None = None) -> str:
    """Who a CLI change is audited as: the ``--as`` user, else ``cli:<operating-system user>``."""
    user: auth.User | None = getattr(args, "acting", None)
    if user is not None:
        return user.name
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def _read_password(name: str) -> str:
    """The first line of standard input when it is not a terminal, else a prompt, twice."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise auth.UserError("no password on standard input (give it as the first line); nothing was changed")
        return password
    first = getpass.getpass(f"Password for {name} (at least {auth.MIN_PASSWORD_LENGTH} characters): ")
    auth.check_password(first)
    if getpass.getpass("Repeat it: ") != first:
        raise auth.UserError("the two passwords differ; nothing was changed")
    return first


def _scope_arg(items: Sequence[str]) -> auth.Scope:
    try:
        return auth.Scope.parse(items)
    except auth.ScopeError as exc:  # a UserError, or a scope that cannot be read
        raise UsageError(str(exc)) from None


def _cmd_users(store: Store, args: argparse.Namespace) -> int:
    actor = _cli_actor(args)
    if args.action == "list":
        table = auth.list_users(store).select("name", "display_name", "role", "scope", "disabled", "locked",
                                              "locked_until", "failed_attempts", "last_login_at")
        _print_rows(table, table.to_dicts(), args.json, "no users yet: add the first admin with `users add NAME --role admin`")
        return 0
    if args.action == "add":
        scope = _scope_arg(args.scope)
        auth.check_name(args.name)
        auth.check_role_scope(args.role, scope)  # refuse before asking for a password
        if auth.get_user(store, args.name) is not None:
            raise auth.UserError(f"a user named {auth.normal_name(args.name)!r} exists; nothing was changed")
        user = auth.add_user(store, args.name, args.role, _read_password(args.name), scope=scope,
                             display_name=args.display_name, actor=actor)
        print(f"added user {user.name} ({user.role}, scope {user.scope.describe()})", file=sys.stderr)
    elif args.action == "disable":
        user = auth.disable_user(store, args.name, actor=actor)
        print(f"disabled user {user.name}", file=sys.stderr)
    elif args.action == "enable":
        user = auth.enable_user(store, args.name, actor=actor)
        print(f"enabled user {user.name}", file=sys.stderr)
    elif args.action == "reset-password":
        if auth.get_user(store, args.name) is None:
            raise auth.UserError(f"no user named {auth.normal_name(args.name)!r}")
        user = auth.reset_password(store, args.name, _read_password(args.name), actor=actor)
        print(f"new password set for {user.name}", file=sys.stderr)
    elif args.action == "set-role":
        user = auth.set_role(store, args.name, args.role, actor=actor,
                             scope=None if args.scope is None else _scope_arg(args.scope))
        print(f"user {user.name} is now {user.role} (scope {user.scope.describe()})", file=sys.stderr)
    else:
        user = auth.set_scope(store, args.name, _scope_arg(args.scope), actor=actor)
        print(f"user {user.name} ({user.role}) now has scope {user.scope.describe()}", file=sys.stderr)
    return 0


def _cmd_audit(store: Store, args: argparse.Namespace) -> int:
    entries = auth.read_audit(store, limit=args.limit, since=args.since)
    rows = [{**row, "detail": json.loads(row["detail"]) if row["detail"] else {}} for row in entries.to_dicts()]
    _print_rows(entries, rows, args.json, "no audit entries yet")
    return 0


def _print_rows(table: pl.DataFrame, rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    """``rows`` as a JSON list, or ``table`` as CSV; with no rows (CSV), ``empty`` on standard error."""
    if as_json:
        print(json.dumps(rows, default=_json_default))
    elif table.height == 0:
        print(empty, file=sys.stderr)
    else:
        buffer = io.StringIO()
        table.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
        sys.stdout.write(buffer.getvalue())


def _cmd_import(store: Store, args: argparse.Namespace) -> int:
    mapping_file = args.mapping
    if args.table is None and args.file is None:
        if mapping_file is None:
            raise UsageError("import takes --mapping FILE.toml, or TABLE FILE")
        if mapping_file.suffix.lower() == ".json":
            raise UsageError("a JSON mapping renames columns for import TABLE FILE; a mapping file on its own is TOML")
        return _run_mapping(store, args)
    if args.table is None or args.file is None:
        raise UsageError("import TABLE FILE takes both a table and a file")
    if args.table not in schema.BUSINESS_TABLES:
        raise UsageError(f"unknown table {args.table!r}; tables: {', '.join(schema.BUSINESS_TABLES)}")
    if args.dry_run:
        raise UsageError("--dry-run works with a mapping file: write one with `mapping suggest FILE`")
    if mapping_file is not None and mapping_file.suffix.lower() == ".toml":
        raise UsageError("a TOML mapping names its own tables and files: run `import --mapping FILE.toml` alone")
    mapping = load_mapping(mapping_file) if mapping_file else None
    result = import_file(store, args.table, args.file, mapping=mapping, quarantine=args.quarantine,
                         actor=_cli_actor(args), role=_acting_role(args))
    note = f"; {result.quarantined} bad row(s) written to {args.quarantine}" if result.quarantined else ""
    print(f"imported {result.loaded:,} row(s) into {result.table}{note}; data version {result.data_version}",
          file=sys.stderr)
    _print_warnings(result.warnings)
    return 0


def _print_warnings(warnings: Sequence[str]) -> None:
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)


def _progress(fraction: float, text: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{fraction:4.0%}  {text[:70]:<70}", end="", file=sys.stderr, flush=True)


def _run_mapping(store: Store, args: argparse.Namespace) -> int:
    mapping = load_mapping_file(args.mapping)
    text = args.mapping.read_text(encoding="utf-8")
    plan, result = run_import(store, mapping, quarantine=args.quarantine, dry_run=args.dry_run,
                              mapping_text=text, progress=_progress, actor=_cli_actor(args), role=_acting_role(args))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    read = {p.origin: p.source.describe() for p in plan.blocks if p.source is not None}
    for origin, how in read.items():
        print(f"{origin}: {how}", file=sys.stderr)
    if result is None:
        counts = plan.counts(quarantine=args.quarantine is not None)
        print("dry run: would write " + ", ".join(f"{n:,} row(s) to {t}" for t, n in counts.items()), file=sys.stderr)
        for p in plan.blocks:
            if p.skipped:
                print(f"  {p.skipped:,} derived row(s) of {p.block.table} skipped (a required cell was empty)", file=sys.stderr)
        by_rule = plan.problems_by_rule()
        if by_rule:
            print(f"{plan.problem_count():,} problem(s), by rule:", file=sys.stderr)
            for table, rule, n in by_rule:
                print(f"  {n:>8,}  {table}: {rule}", file=sys.stderr)
            print("first problems:", file=sys.stderr)
            for problem in plan.problems():
                print(f"  {problem}", file=sys.stderr)
        _print_warnings(plan.warnings)
        print("nothing was written (dry run)", file=sys.stderr)
        return 1 if by_rule and args.quarantine is None else 0
    note = f"; {result.quarantined:,} bad row(s) written to {args.quarantine}" if result.quarantined else ""
    tables = ", ".join(f"{n:,} into {t}" for t, n in result.per_table.items())
    print(f"import {result.batch}: {tables}{note}; data version {result.data_version}", file=sys.stderr)
    _print_warnings(result.warnings)
    return 0


def _cmd_mapping(store: Store, args: argparse.Namespace) -> int:
    suggestion = suggest_mapping(args.file, args.table, ReadOptions(sheet=args.sheet))
    print(f"# Draft mapping of {args.file.name} onto {suggestion.table} ({suggestion.source.describe()}).")
    print("# Check every line, then: python -m crm import --mapping THIS_FILE --dry-run")
    for note in suggestion.notes:
        print(f"# {note}")
    print(to_toml(suggestion.mapping), end="")
    return 0


def _cmd_imports(store: Store, args: argparse.Namespace) -> int:
    if args.action == "undo":
        if args.id is None:
            raise UsageError("imports undo takes the id of an import (see imports list)")
        done = undo_import(store, args.id, actor=_cli_actor(args), role=_acting_role(args))
        removed = ", ".join(f"{n:,} from {t}" for t, n in done.removed.items()) or "no rows"
        restored = ", ".join(f"{n:,} into {t}" for t, n in done.restored.items())
        print(f"import {done.batch} undone: removed {removed}" + (f"; restored {restored}" if restored else "")
              + f"; data version {done.data_version}", file=sys.stderr)
        return 0
    history = import_history(store)
    if history.height == 0:
        print("no imports yet", file=sys.stderr)
        return 0
    buffer = io.StringIO()
    history.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
    sys.stdout.write(buffer.getvalue())
    return 0


def _number_between(low: float, high: float, what: str) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` to ``high``; ``what`` names it in the error."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what}, not {text}")
        return value
    return parse


_threshold = _number_between(0, 100, "a similarity from 0 to 100")


def _rule(text: str) -> tuple[str, str]:
    """An argparse type: ``'A -> B'`` (or ``A → B``) as the two product names, spaces around them dropped."""
    for arrow in ("->", "→"):
        antecedent, sep, consequent = text.partition(arrow)
        if sep and antecedent.strip() and consequent.strip():
            return antecedent.strip(), consequent.strip()
    raise argparse.ArgumentTypeError(f"a rule is two products joined by ->, e.g. 'CRM Suite -> Data Connect'; got {text!r}")


def _cmd_customers(store: Store, args: argparse.Namespace) -> int:
    if args.action == "merge":
        merged = merge_customers(store, args.keep, args.others, actor=_cli_actor(args), role=_acting_role(args))
        moved = ", ".join(f"{n:,} {t}" for t, n in merged.repointed.items()) or "no rows"
        print(f"merge {merged.merge_id}: kept {merged.kept_id}, merged {', '.join(merged.merged_ids)}; repointed {moved}; "
              f"data version {merged.data_version}", file=sys.stderr)
        return 0
    if args.action == "unmerge":
        undone = undo_merge(store, args.merge_id, actor=_cli_actor(args), role=_acting_role(args))
        moved = ", ".join(f"{n:,} {t}" for t, n in undone.repointed.items()) or "no rows"
        print(f"merge {undone.merge_id} undone: restored {', '.join(undone.restored_ids)}; pointed back {moved}; "
              f"data version {undone.data_version}", file=sys.stderr)
        return 0
    if args.action == "merges":
        table = merge_history(store)
        if table.height == 0:
            print("no merges yet", file=sys.stderr)
            return 0
    else:
        columns = ["customer_id", "name", "email", "phone", "country", "city"]
        empty = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
        customers = store.read("customers", columns) if store.has_schema() else empty
        table = duplicate_candidates(customers, args.threshold)
        print(f"{table.height:,} candidate pair(s) among {customers.height:,} customer(s) "
              f"(names alike from {args.threshold:g})", file=sys.stderr)
        if args.json:
            print(json.dumps(table.to_dicts()))
            return 0
    buffer = io.StringIO()
    table.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
    sys.stdout.write(buffer.getvalue())
    return 0


def _cmd_metrics(store: Store, args: argparse.Namespace) -> int:
    frames = load_frames(store)
    filters = _filters(args, frames)
    current, previous = compute_with_previous(narrow(frames, filters), filters.period)
    if args.json:
        out: dict[str, Any] = dict(current)
        if args.with_previous:
            out["previous"] = previous
        print(json.dumps(out, default=_json_default))
    else:
        print(f"{filters.describe()}")
        _print_table(current)
        if args.with_previous:
            print(f"\nprevious period {filters.period.previous().label()}")
            _print_table(previous)
    return 0


def _cmd_report(store: Store, args: argparse.Namespace) -> int:
    if args.name not in REPORTS:
        raise UsageError(f"unknown report {args.name!r}; known: {', '.join(REPORTS)}")
    frames = load_frames(store)
    within = []
    for raw in args.within:
        level, sep, value = raw.partition(":")
        if not (sep and level in satisfaction.DRILL_LEVELS and value):
            raise UsageError(f"--within takes LEVEL:VALUE with LEVEL one of {', '.join(satisfaction.DRILL_LEVELS)}, got {raw!r}")
        within.append((level, value))
    options = ReportOptions(mode=args.mode, by=args.by, days=args.days, grain=args.grain, vs=args.vs, kind=args.kind,
                            level=args.level, within=tuple(within), basis=args.basis, window=args.window,
                            customer=args.customer, min_support=args.min_support, min_confidence=args.min_confidence,
                            rule=args.rule)
    try:
        table = build_report(args.name, frames, _filters(args, frames), options)
    except ReportOptionError as exc:
        raise UsageError(f"report {args.name}: {exc}") from None
    except CustomerNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(table.to_dicts(), default=_json_default))
    else:
        buffer = io.StringIO()
        table.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
        sys.stdout.write(buffer.getvalue())
    return 0


_share = _number_between(0, 1, "a share from 0 to 1 (0.05 = 5%)")


def _cmd_churn_model(store: Store, args: argparse.Namespace) -> int:
    from crm import churn_risk  # scikit-learn is imported only for this command

    frames = load_frames(store)
    scope = _acting_scope(args)
    if args.action in ("evaluate", "train") and not scope.unrestricted:
        raise roles.NotPermitted(f"churn-model {args.action} describes every customer of the store, and your scope is "
                                 f"{scope.in_words()}: churn-model score gives the risk list of your customers")
    models = churn_risk.churn_models(frames, args.as_of)
    try:
        model = churn_risk.require_model(models)
    except churn_risk.ChurnModelUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.action == "score":
        assert models.as_of is not None
        filters = Filters.create(Period(models.as_of, models.as_of), scope=scope)
        table = churn_risk.risk_table(frames, filters, models)
        _print_rows(table, table.to_dicts(), args.json, "no active customer to score")
        return 0
    evaluation = models.evaluation
    assert evaluation is not None
    if args.action == "evaluate":
        summary = {**evaluation.summary(), "data_version": frames.version}
        if args.json:
            print(json.dumps(summary, default=_json_default))
            return 0
        print(f"held back: customers active on {evaluation.evaluation_date} ({evaluation.evaluation_rows:,}, "
              f"{evaluation.evaluation_churn_rate:.1%} churned within {evaluation.horizon_days} days); trained on "
              f"{evaluation.training_rows:,} customer-dates from {evaluation.training_dates[0]} to "
              f"{evaluation.training_dates[-1]}; kept: {evaluation.kept}")
        for row in evaluation.metrics.iter_rows(named=True):
            shown = {k: "—" if row[k] is None else f"{row[k]:.3f}" for k in ("auc", "precision_top10", "recall_top10")}
            print(f"{row['model']:<11} auc {shown['auc']:>6}  precision_top10 {shown['precision_top10']:>6}  "
                  f"recall_top10 {shown['recall_top10']:>6}")
        return 0
    rules = churn_risk.rules_table(models)
    fitted = {"as_of": model.as_of.isoformat(), "data_version": frames.version, "model": model.kind,
              "trained_on": [d.isoformat() for d in model.trained_on], "training_rows": model.training_rows,
              "training_churn_rate": model.training_churn_rate, "seconds": round(models.seconds, 2),
              "rules": rules.to_dicts()}
    if args.json:
        print(json.dumps(fitted, default=_json_default))
    else:
        print(f"{model.kind} model as of {model.as_of} (data version {frames.version}), trained on "
              f"{model.training_rows:,} customer-dates from {model.trained_on[0]} to {model.trained_on[-1]} in "
              f"{models.seconds:.1f} s; the tree's rules, riskiest first:")
        for row in rules.iter_rows(named=True):
            print(f"{row['churn_rate']:6.1%} of {row['customers']:>7,}  {row['rule']}")
    return 0


def _cmd_settings(store: Store, args: argparse.Namespace) -> int:
    if args.action == "show":
        if args.key is not None:
            raise UsageError("settings show takes no KEY; it prints every setting")
        basis = load_churn_basis(store)
        service = load_settings(store)
        print(f"{CHURN_BASIS} = {basis.value}  # {CHURN_BASIS_TEXT[basis]}")
        print(f"sla_targets = {json.dumps(service.targets)}  # first-response targets in hours (Service page)")
        print(f"business_calendar = {service.calendar.to_json()}  # (Service page)")
        return 0
    if args.key is None or args.value is None:
        raise UsageError(f"settings set takes KEY VALUE, e.g. settings set {CHURN_BASIS} subscription")
    if args.key != CHURN_BASIS:
        raise UsageError(f"unknown setting {args.key!r}; settings set changes {CHURN_BASIS} "
                         "(the business calendar and SLA targets are edited on the Service page)")
    try:
        basis = parse_churn_basis(args.value)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    before = load_churn_basis(store)
    version = save_churn_basis(store, basis, actor=_cli_actor(args), role=_acting_role(args))
    change = f"was {before.value}" if before is not basis else "unchanged"
    print(f"{CHURN_BASIS} = {basis.value} ({change}): {CHURN_BASIS_TEXT[basis]}; data version {version}",
          file=sys.stderr)
    return 0


COMMANDS = {"init-demo": _cmd_init_demo, "import": _cmd_import, "metrics": _cmd_metrics, "report": _cmd_report,
            "churn-model": _cmd_churn_model,
            "export": _cmd_export, "mapping": _cmd_mapping, "imports": _cmd_imports,
            "customers": _cmd_customers, "settings": _cmd_settings, "users": _cmd_users, "audit": _cmd_audit}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with Store(resolve_database_url(args.db)) as store:
            args.acting = _acting_user(store, args)
            _allow(args)
            return COMMANDS[args.command](store, args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (StoreError, ConfigError, ImportRejected, MappingError, SourceError, MergeError, auth.ScopeError,
            roles.NotPermitted) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except pl.exceptions.PolarsError as exc:
        print(f"error: could not compute: {_first_line(exc)}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"error: the database refused: {_first_line(reason)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except Exception as exc:  # the last guard: a person gets one line, CRM_DEBUG=1 gets the traceback
        if os.environ.get("CRM_DEBUG") == "1":
            raise
        print(f"error: unexpected {type(exc).__name__}: {_first_line(exc)} (run with CRM_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["build_parser", "main"]
