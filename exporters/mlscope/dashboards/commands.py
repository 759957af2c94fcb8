"""``mlscope dashboards build|check``: the Grafana JSON from the dashboards' Python sources, and its checks."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_dashboards(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--source", default="dashboards", help="dashboard sources (default: %(default)s)")
    p.add_argument("--output", default="provisioning/grafana/dashboards", help="JSON folder (default: %(default)s)")
    p.add_argument("--prometheus-url", help="check: also run every PromQL query on this Prometheus, failing on "
                                            "errors (e.g. http://127.0.0.1:9090)")
    p.set_defaults(func=dashboards)


def dashboards(args: argparse.Namespace) -> int:
    from .build import build

    source, output = Path(args.source), Path(args.output)
    if not source.is_dir() or not any(source.glob("*.py")):
        print(f"mlscope: no dashboard sources in {source.resolve()}: run in a stack folder (`mlscope init DIR` writes "
              "one) or the repository root, or pass --source",
              file=sys.stderr)
        return 2
    if args.action == "build":
        written, removed = build(source, output)
        for path in written:
            print(f"wrote {path}")
        for path in removed:
            print(f"removed {path} (its source is gone)")
        return 0
    return check(source, output, args.prometheus_url)


def check(source: Path, output: Path, prometheus_url: str | None = None) -> int:
    """Fresh JSON; structure and metric names (catalog); PromQL parsed by promtool; optionally run live."""
    from . import queries
    from .build import render, stale
    from .check import problems

    built = render(source, output)
    found = [f"stale: {path} (run `mlscope dashboards build`)" for path in stale(source, output)]
    promql: list[queries.PromQuery] = []
    for item in built:
        data = json.loads(item.text)
        name = str(item.source or item.path.name)
        found += [f"{name}: {problem}" for problem in problems(data)]
        promql += queries.prometheus_queries(name, data)
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
