"""``mlscope rules build|check``: the alert and recording rules from the rule configuration."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_rules(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--dir", default="alerting/rules", help="rules folder (default: %(default)s)")
    p.set_defaults(func=rules)


def rules(args: argparse.Namespace) -> int:
    from . import build_all, stale_files

    rules_dir = Path(args.dir)
    if args.action == "build":
        for path in build_all(rules_dir):
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        return 0
    stale = stale_files(rules_dir)
    for path in stale:
        print(f"stale: {path} (run `mlscope rules build`)", file=sys.stderr)
    return 1 if stale else 0
