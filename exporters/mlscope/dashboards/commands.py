"""``mlscope dashboards build|check``: the Grafana JSON from the dashboards' Python sources, and its checks."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .build import Built


def add_dashboards(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--source", default="dashboards", help="dashboard sources (default: %(default)s)")
    p.add_argument("--output", default="provisioning/grafana/dashboards", help="JSON folder (default: %(default)s)")
    p.add_argument("--prometheus-url", help="check: also run every PromQL query on this Prometheus, failing on "
                                            "errors (e.g. http://127.0.0.1:9090)")
    p.add_argument("--allow", action="append", default=[], metavar="NAME|PREFIX*",
                   help="a metric outside mlscope's catalog that dashboards may use (your service's own); "
                        "repeatable; also read from SOURCE/allowed-metrics.txt, one per line")
    p.set_defaults(func=dashboards)


def dashboards(args: argparse.Namespace) -> int:
    from .build import build
    from .check import allowed_names

    source, output = Path(args.source), Path(args.output)
    if not source.is_dir() or not any(source.glob("*.py")):
        print(f"mlscope: no dashboard sources in {source.resolve()}: run in a stack folder (`mlscope init DIR` writes "
              "one) or the repository root, or pass --source",
              file=sys.stderr)
        return 2
    allowed = allowed_names(source, args.allow)
    if args.action == "build":
        built, written, removed = build(source, output)
        for path in written:
            print(f"wrote {path}")
        for path in removed:
            print(f"removed {path} (its source is gone)")
        print(f"mlscope: {len(built)} dashboards, {len(written)} changed, {len(removed)} removed")
        for line in _structure_problems(built, allowed):  # written all the same: the sources are the user's
            print(f"mlscope: warning: {line} (`mlscope dashboards check` fails on it)", file=sys.stderr)
        return 0
    return check(source, output, args.prometheus_url, allowed)


def _structure_problems(built: Sequence[Built], allowed: Sequence[str]) -> list[str]:
    from .check import problems

    return [f"{item.source or item.path.name}: {problem}" for item in built
            for problem in problems(json.loads(item.text), allowed)]


def check(source: Path, output: Path, prometheus_url: str | None = None, allowed: Sequence[str] = ()) -> int:
    """Fresh JSON; structure and metric names (catalog and ``allowed``); PromQL parsed by promtool; optionally
    run live."""
    from . import queries
    from .build import render, stale

    built = render(source, output)
    found = [f"stale: {path} (run `mlscope dashboards build`)" for path in stale(source, output)]
    found += _structure_problems(built, allowed)
    promql: list[queries.PromQuery] = []
    for item in built:
        promql += queries.prometheus_queries(str(item.source or item.path.name), json.loads(item.text))
    binary = queries.promtool()
    if binary:
        found += queries.parse_problems(promql, binary)
        parsed = f"parsed with promtool ({binary} check rules)"
    else:
        parsed = "not parsed (no promtool on PATH: only metric names were checked)"
    if prometheus_url:
        found += queries.live_problems(promql, prometheus_url)
    for line in found:
        print(f"mlscope: {line}", file=sys.stderr)
    live = f"; run on {prometheus_url}" if prometheus_url else ""
    print(f"mlscope: {'FAILED' if found else 'ok'}: {len(built)} dashboards, {len(promql)} PromQL queries: metric "
          f"names checked against the catalog, {parsed}{live}; {len(found)} problem(s)")
    return 1 if found else 0
