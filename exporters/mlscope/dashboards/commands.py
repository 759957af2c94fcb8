"""``mlscope dashboards build|check``: the Grafana JSON from the dashboards' Python sources."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_dashboards(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--source", default="dashboards", help="dashboard sources (default: %(default)s)")
    p.add_argument("--output", default="provisioning/grafana/dashboards", help="JSON folder (default: %(default)s)")
    p.set_defaults(func=dashboards)


def dashboards(args: argparse.Namespace) -> int:
    from .build import build, stale

    source, output = Path(args.source), Path(args.output)
    if not source.is_dir() or not any(source.glob("*.py")):
        print(f"mlscope: no dashboard sources in {source.resolve()}: run from the repository root or pass --source",
              file=sys.stderr)
        return 2
    if args.action == "build":
        written, removed = build(source, output)
        for path in written:
            print(f"wrote {path}")
        for path in removed:
            print(f"removed {path} (its source is gone)")
        return 0
    out = stale(source, output)
    for path in out:
        print(f"stale: {path} (run `mlscope dashboards build`)", file=sys.stderr)
    return 1 if out else 0
