"""``python -m crm [--db URL] COMMAND``: the command-line contract of DESIGN.md.

Commands: init-demo, import, mapping, imports, metrics, report, export. Errors a user can cause end in a
one-paragraph message on stderr and exit code 2 (usage) or 1 (rejected input,
unreachable store); never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from crm import demo, schema, segments
from crm.config import ConfigError, resolve_database_url
from crm.dataset import Frames, load_frames
from crm.export import FORMATS, build_manifest, write_export
from crm.filters import DEFAULT_PRESET, FIRST_DAY, LAST_DAY, Filters, Period, resolve_preset
from crm.ingest import ImportRejected, import_file, import_history, load_mapping, run_import, undo_import
from crm.mapping import MappingError, load_mapping_file, to_toml
from crm.metrics import METRICS, churn, compute_with_previous, funnel, rfm, satisfaction, service
from crm.reports import REPORTS, ReportOptionError, ReportOptions, build_report
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init-demo", help="create the schema and fill it with seeded demo data")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the default size (1 ≈ 10k deals)")
    p.add_argument("--as-of", type=_date, default=None, help="last day of data (default: yesterday)")

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

    p = sub.add_parser("export", help="write the customers of a segment to a file, with a manifest")
    p.add_argument("what", choices=("segment",), help="what to export (segment)")
    p.add_argument("--name", help="a saved segment (see the Segments page)")
    p.add_argument("--rule", help='a segment rule as JSON, e.g. \'{"tiers": ["at risk"], "scope": {"region": ["Europe"]}}\'')
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--out", type=Path, required=True, help="the file to write (CSV/Parquet: a .manifest.json beside it)")
    _add_filters(p)
    return parser


def _cmd_export(store: Store, args: argparse.Namespace) -> int:
    if args.out.is_dir():
        raise UsageError(f"--out names a folder ({args.out}); give a file name, e.g. {args.out / ('segment.' + args.format)}")
    if (args.name is None) == (args.rule is None):
        raise UsageError("export segment takes exactly one of --name NAME (a saved segment) or --rule JSON")
    try:
        rule = segments.load_saved(store, args.name) if args.name else segments.SegmentRule.from_json(args.rule)
    except (segments.SavedSegmentError, segments.SegmentRuleError) as exc:
        raise UsageError(str(exc)) from None
    started = time.perf_counter()
    frames = load_frames(store)
    filters = _filters(args, frames)
    if not rule.scope:  # a rule without its own scope is scored over the dimension filters given here
        rule = dataclasses.replace(rule, scope=segments.SegmentRule.for_filters(filters).scope)
    dated = rule.dated(filters.period)
    assert dated.as_of is not None
    table = segments.customer_table(frames, segments.evaluate(frames, rule, filters.period), dated.as_of)
    title = f"Customers of segment {args.name}" if args.name else "Customers of a segment rule"
    manifest = build_manifest(title, filters, table.height, frames.version,
                              selection_rule=f"{dated.describe()} (rule {dated.to_json()})", definitions=rfm.DEFINITIONS)
    written = write_export(table, args.format, manifest, args.out)
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
                          teams=args.team, owners=args.owner, customers=customers, selection=selection)


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
    return 0


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
    result = import_file(store, args.table, args.file, mapping=mapping, quarantine=args.quarantine)
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
                              mapping_text=text, progress=_progress)
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
        done = undo_import(store, args.id)
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


def _cmd_metrics(store: Store, args: argparse.Namespace) -> int:
    frames = load_frames(store)
    filters = _filters(args, frames)
    current, previous = compute_with_previous(frames.narrow(filters), filters.period)
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
                            level=args.level, within=tuple(within), basis=args.basis, window=args.window)
    try:
        table = build_report(args.name, frames, _filters(args, frames), options)
    except ReportOptionError as exc:
        raise UsageError(f"report {args.name}: {exc}") from None
    if args.format == "json":
        print(json.dumps(table.to_dicts(), default=_json_default))
    else:
        buffer = io.StringIO()
        table.write_csv(buffer, datetime_format="%Y-%m-%d %H:%M:%S")
        sys.stdout.write(buffer.getvalue())
    return 0


COMMANDS = {"init-demo": _cmd_init_demo, "import": _cmd_import, "metrics": _cmd_metrics, "report": _cmd_report,
            "export": _cmd_export, "mapping": _cmd_mapping, "imports": _cmd_imports}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with Store(resolve_database_url(args.db)) as store:
            return COMMANDS[args.command](store, args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (StoreError, ConfigError, ImportRejected, MappingError, SourceError) as exc:
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
