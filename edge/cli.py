"""``estate-edge``: run the daemon, check a config, write the config schema, run the demo.

Exit codes: 0 fine; 1 ``check`` found errors (or warnings, with ``--strict``); 2 ``run`` refused
the config; 3 ``run`` could not start (a store folder it cannot create, a panel port in use, a
file it cannot read): one line on stderr names the path or port, never a traceback.

``check`` prints errors and warnings apart, each as ``file:line: path: message``: errors are what
``run`` would refuse or die on; warnings are what runs but not as meant (timeouts that do not fit
a shared line's poll periods, a store folder this user cannot create).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from edge.config import json_schema
from edge.config.files_check import CheckReport, check_config
from edge.errors import ConfigError, EdgeError
from edge.logs import setup_logging
from edge.training.cli import add_parser as add_train_parser

log = logging.getLogger("edge.cli")

EXIT_PROBLEMS = 1
EXIT_REFUSED = 2
EXIT_START_FAILED = 3


def _secrets_path(args: argparse.Namespace) -> Path | None:
    if args.secrets:
        return Path(args.secrets)
    env = os.environ.get("EDGE_SECRETS_FILE")
    if env:
        return Path(env)
    beside = Path(args.config).resolve().parent / "secrets.yaml"
    return beside if beside.exists() else None


def _print_report(source: str, report: CheckReport, heading: str) -> None:
    if report.errors:
        print(f"{source}: {heading}{' ' if heading else ''}{len(report.errors)} problem(s):", file=sys.stderr)
        for problem in report.errors:
            print(f"  {problem}", file=sys.stderr)
    if report.warnings:
        print(f"{source}: {len(report.warnings)} warning(s):", file=sys.stderr)
        for warning in report.warnings:
            print(f"  warning: {warning}", file=sys.stderr)


def build_problems(report: CheckReport) -> list[str]:
    """Build every bus's source as ``run`` does (profiles, register maps, options), without opening anything.

    What only the drivers know (an unknown profile, an option a protocol does not take) is found by
    ``check`` too, not first by ``run``.
    """
    from drivers.registry import build_sources

    if report.config is None:
        return []
    try:
        build_sources(report.config)
    except ConfigError as exc:
        return [f"{report.source}: {problem}" for problem in (exc.problems or [str(exc)])]
    return []


def cmd_check(args: argparse.Namespace) -> int:
    report = check_config(Path(args.config), _secrets_path(args))
    if report.ok:
        report.errors.extend(build_problems(report))
    if report.config is not None:  # serial buses sharing a port (and their parities)
        from edge.config.buses import shared_line_report

        line_problems, line_warnings = shared_line_report(list(report.config.buses))
        report.errors.extend(f"{report.source}: {problem}" for problem in line_problems)
        report.warnings.extend(line_warnings)
    _print_report(args.config, report, "")
    config = report.config
    if not report.ok or config is None:
        return EXIT_PROBLEMS
    print(f"{args.config}: OK — estate {config.estate.id} ({config.estate.name}), {len(config.buses)} bus(es), "
          f"{len(config.devices)} device(s), {len(config.cameras)} camera(s)"
          + (f", {len(report.warnings)} warning(s)" if report.warnings else ""))
    return EXIT_PROBLEMS if args.strict and report.warnings else 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge.app import Gateway

    setup_logging(args.log_level)
    report = check_config(Path(args.config), _secrets_path(args))
    if report.config is not None:  # buses sharing a serial port without the installer's shared_line: as `check`
        from edge.config.buses import shared_line_report

        line_problems, line_warnings = shared_line_report(list(report.config.buses))
        report.errors.extend(f"{report.source}: {problem}" for problem in line_problems)
        report.warnings.extend(line_warnings)
    if not report.ok:
        _print_report(args.config, report, "refusing to start:")
        return EXIT_REFUSED
    for warning in report.warnings:
        log.warning("config: %s", warning)
    gateway = Gateway(Path(args.config), _secrets_path(args))
    try:
        asyncio.run(gateway.run())
    except ConfigError as exc:
        print(f"{args.config}: refusing to start:", file=sys.stderr)
        for problem in exc.problems or [str(exc)]:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except (EdgeError, OSError) as exc:
        print(f"estate-edge: cannot start: {start_error(exc)}", file=sys.stderr)
        return EXIT_START_FAILED
    except ExceptionGroup as group:  # a component's task group failed while starting
        leaf = _first_leaf(group)
        if not isinstance(leaf, EdgeError | OSError):
            raise
        print(f"estate-edge: cannot start: {start_error(leaf)}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def start_error(exc: BaseException) -> str:
    """One line for an error that stopped the daemon starting, naming the file, folder or port."""
    if isinstance(exc, OSError) and not isinstance(exc, EdgeError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo import run_demo

    setup_logging(args.log_level)
    return run_demo(Path(args.workdir) if args.workdir else None, duration_s=args.duration)


def installed_version() -> str:
    """The version pip or the Debian package installed (what ``--version`` prints), or ``unknown`` from a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("estate-edge")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="estate-edge", description="Edge gateway for residential estates.")
    parser.add_argument("--log-level", default=os.environ.get("EDGE_LOG_LEVEL", "INFO"))
    parser.add_argument("--version", action="version", version=f"estate-edge {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the gateway daemon on an estate config")
    p.add_argument("config")
    p.add_argument("--secrets", help="secrets file (mode 0600); default $EDGE_SECRETS_FILE or secrets.yaml beside the config")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="validate an estate config and the files it names; print every problem "
                                     "with file:line (exit 1 on errors; warnings too with --strict)")
    p.add_argument("config")
    p.add_argument("--secrets")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings as well")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("schema", help="write the JSON Schema of the estate config")
    p.add_argument("--output", "-o", default="-", help="file to write ('-' for stdout)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("demo", help="run the daemon with every simulator and the platform simulator")
    p.add_argument("--workdir", default=None, help="where the demo keeps its databases, certificates and pty links "
                   "(default: a new var/demo/run-<time>-<pid>, so demos on one host never collide; give an "
                   "earlier run's folder to keep its panel account and data)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    p.set_defaults(func=cmd_demo)
    add_train_parser(sub)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
