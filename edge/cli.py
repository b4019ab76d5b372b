"""``estate-edge``: run the daemon, check a config, write the config schema, run the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from edge.config import json_schema, load_config
from edge.errors import ConfigError
from edge.logs import setup_logging


def _secrets_path(args: argparse.Namespace) -> Path | None:
    if args.secrets:
        return Path(args.secrets)
    env = os.environ.get("EDGE_SECRETS_FILE")
    if env:
        return Path(env)
    beside = Path(args.config).resolve().parent / "secrets.yaml"
    return beside if beside.exists() else None


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config), _secrets_path(args))
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{args.config}: OK — estate {config.estate.id} ({config.estate.name}), {len(config.buses)} bus(es), "
          f"{len(config.devices)} device(s), {len(config.cameras)} camera(s)")
    return 0


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
    gateway = Gateway(Path(args.config), _secrets_path(args))
    try:
        asyncio.run(gateway.run())
    except ConfigError as exc:
        print(f"{args.config}: refusing to start:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo import run_demo

    setup_logging(args.log_level)
    return run_demo(Path(args.workdir), duration_s=args.duration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="estate-edge", description="Edge gateway for residential estates.")
    parser.add_argument("--log-level", default=os.environ.get("EDGE_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the gateway daemon on an estate config")
    p.add_argument("config")
    p.add_argument("--secrets", help="secrets file (mode 0600); default $EDGE_SECRETS_FILE or secrets.yaml beside the config")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="validate an estate config; print every problem with file:line")
    p.add_argument("config")
    p.add_argument("--secrets")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("schema", help="write the JSON Schema of the estate config")
    p.add_argument("--output", "-o", default="-", help="file to write ('-' for stdout)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("demo", help="run the daemon with every simulator and the platform simulator")
    p.add_argument("--workdir", default="var/demo", help="where the demo keeps its databases and certificates")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
