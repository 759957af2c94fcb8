"""``mlscope logs level``: prediction-log settings read by running services (no restart)."""
from __future__ import annotations

import argparse
import json
import sys


def add_logs(p: argparse.ArgumentParser) -> None:
    logs_sub = p.add_subparsers(dest="logs_command", required=True)
    level = logs_sub.add_parser("level", help="set one model version's prediction-log level in a LogLevels file")
    level.add_argument("--file", required=True, help="the JSON file given to LogLevels(path=...)")
    level.add_argument("model")
    level.add_argument("model_version", help='a version, or "*" for every version')
    level.add_argument("level", nargs="?", help="debug (every prediction), info (sample), warning, error")
    level.add_argument("--reset", action="store_true", help="remove the entry (back to the default level)")
    level.set_defaults(func=logs)


def logs(args: argparse.Namespace) -> int:
    from .sampling import write_level

    if (args.level is None) == (not args.reset):
        print("mlscope: give a LEVEL or --reset", file=sys.stderr)
        return 2
    try:
        data = write_level(args.file, args.model, args.model_version, None if args.reset else args.level)
    except (ValueError, OSError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    print(f"mlscope: {args.file} now holds {json.dumps(data, sort_keys=True)}")
    return 0
