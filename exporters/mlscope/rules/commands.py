"""``mlscope rules build|check`` (the rules from the rule configuration) and ``mlscope docs build|check``
(the metrics reference and the runbooks' thresholds blocks, from the catalog, the rules and the dashboards)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Links


def add_rules(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"])
    p.add_argument("--dir", default="alerting/rules", help="rules folder (default: %(default)s)")
    p.add_argument("--config", help="your settings over the built-in rule configuration (default: "
                   "rules-config.yml beside --dir, e.g. alerting/rules-config.yml, when it exists)")
    add_link_arguments(p)
    p.set_defaults(func=rules)


def add_link_arguments(p: argparse.ArgumentParser) -> None:
    """``--runbook-base-url`` and ``--grafana-url``: where notifications link (the rule configuration's Links)."""
    from .config import Links

    p.add_argument("--runbook-base-url", help="base of the alerts' runbook_url, e.g. your team's wiki "
                   f"(default: {Links.runbook_base_url}, the alert receiver's /runbooks/)")
    p.add_argument("--grafana-url", help=f"base of the dashboard and logs links (default: {Links.grafana_base_url})")


def links_from(args: argparse.Namespace, **defaults: str) -> Links | None:
    """The Links the command line asks for (over ``defaults``), None when it asks for none."""
    from .config import Links

    chosen = {**defaults, **{key: value for key, value in (("runbook_base_url", args.runbook_base_url),
                                                          ("grafana_base_url", args.grafana_url)) if value}}
    return Links(**{k: v.rstrip("/") for k, v in chosen.items()}) if chosen else None


def rules(args: argparse.Namespace) -> int:
    from . import build_all, stale_files
    from .overrides import RulesConfigError, beside, load, named

    rules_dir = Path(args.dir)
    links = links_from(args)
    config = Path(args.config) if args.config else beside(rules_dir)
    try:
        overrides = load(config)
        if args.action == "build":
            for path in build_all(rules_dir, links, overrides):
                print(f"wrote {path}" if path.exists() else f"removed {path}")
            return 0
        stale = stale_files(rules_dir, links, overrides)
    except RulesConfigError as exc:
        print(f"mlscope: {named(exc, config)}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"stale: {path} (run `mlscope rules build`)", file=sys.stderr)
    if not stale:
        print(f"mlscope: ok: the rules in {rules_dir} are what the rule configuration generates")
        tests = rules_dir.parent / "tests" / "anomaly.yml"
        if tests.is_file():  # generated from the configuration in force; the other test files assume the defaults
            print(f"mlscope: the promtool tests generated from it: promtool test rules {tests}")
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
