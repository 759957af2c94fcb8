"""``mlscope rules build|check`` (the rules from the rule configuration) and ``mlscope docs build|check``
(the metrics reference and the runbooks' thresholds blocks, from the catalog, the rules and the dashboards)."""
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


def add_docs(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--root", default=".", help="repository root (default: the current folder)")
    p.set_defaults(func=docs)


def docs(args: argparse.Namespace) -> int:
    from .reference import DASHBOARDS, RUNBOOKS, build, stale

    root = Path(args.root)
    if not (root / DASHBOARDS).is_dir() or not (root / RUNBOOKS).is_dir():
        print(f"mlscope: no {DASHBOARDS} or {RUNBOOKS} in {root.resolve()}: run from the repository root "
              "or pass --root", file=sys.stderr)
        return 2
    if args.action == "build":
        for path in build(root):
            print(f"wrote {path}")
        return 0
    out = stale(root)
    for path in out:
        print(f"stale: {path.relative_to(root) if path.is_relative_to(root) else path} "
              "(run `mlscope docs build`)", file=sys.stderr)
    return 1 if out else 0
