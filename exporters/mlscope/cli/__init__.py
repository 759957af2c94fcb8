"""The ``mlscope`` command: parses and dispatches to the domains' command modules, no logic of its own.

Each command names the module that defines its arguments (``add_<command>(parser)``, which sets
``func``) and the extra it needs. A command's module is imported only when that command runs, after its
extra is checked, so ``mlscope --help`` and the core's commands work with the light core alone, and a
command whose extra is missing says in one line which one to install.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .. import __version__
from .._runtime import MissingExtra, missing_modules

# What each extra brings that its commands import (top-level module names).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "stack": ("yaml", "requests", "grafanalib", "psutil"),
    "demo": ("sklearn", "yaml", "requests", "psutil", "pynvml"),
    "resources": ("psutil", "pynvml"),
    "reports": ("jinja2", "matplotlib"),
}


@dataclass(frozen=True)
class Command:
    """One ``mlscope`` subcommand: where its arguments are defined and which extra it needs."""

    name: str
    help: str
    module: str
    extra: str | None = None

    @property
    def adder(self) -> str:
        return "add_" + self.name.replace("-", "_")

    def missing(self) -> list[str]:
        return missing_modules(*EXTRA_MODULES[self.extra]) if self.extra else []


COMMANDS: tuple[Command, ...] = (
    Command("up", "run the stack natively (Prometheus from PATH, mlscope exporters)", "mlscope.stack.commands",
            "stack"),
    Command("down", "stop a running `mlscope up`", "mlscope.stack.commands", "stack"),
    Command("init", "write the stack's files (compose, provisioning, alerting) into DIR", "mlscope.stack.commands",
            "stack"),
    Command("targets", "add, remove or list your services' scrape targets (native or compose stack)",
            "mlscope.stack.targets", "stack"),
    Command("alert-receiver", "Alertmanager webhook receiver: JSON logs, per-alert commands",
            "mlscope.stack.commands", "stack"),
    Command("rules", "generate or check alerting/rules/ from the rule configuration", "mlscope.rules.commands",
            "stack"),
    Command("dashboards", "generate or check the Grafana JSON from dashboards/*.py", "mlscope.dashboards.commands",
            "stack"),
    Command("docs", "generate or check docs/metrics.md and runbook thresholds", "mlscope.rules.commands", "stack"),
    Command("remote-write", "Prometheus overlays that remote-write to Mimir, Thanos or VictoriaMetrics",
            "mlscope.stack.commands", "stack"),
    Command("k8s", "render PrometheusRule, ServiceMonitor and dashboard ConfigMap manifests",
            "mlscope.stack.commands", "stack"),
    Command("reference", "build or inspect a drift reference profile", "mlscope.drift.commands"),
    Command("quality-exporter", "join late ground truth with stored predictions; serve quality metrics",
            "mlscope.quality.commands"),
    Command("quality-register", "register a model version (task, classes, baseline) with a quality exporter",
            "mlscope.quality.commands"),
    Command("quality-import", "import outcomes from CSV or JSONL (request_id, y_true[, time])",
            "mlscope.quality.commands"),
    Command("logs", "prediction-log settings read by running services (no restart)", "mlscope.logs.commands"),
    Command("lineage", "a model version's (or a prediction's) training run, data batches, pipeline runs and the "
            "alert behind a retraining", "mlscope.lineage.commands"),
    Command("report", "a model health report for a period (self-contained HTML and its JSON twin), or "
            "--verify a folder of snapshots against its manifest", "mlscope.reports.commands"),
    Command("resource-exporter", "serve host, process and GPU metrics (psutil, NVML)", "mlscope.resources.exporter",
            "resources"),
    Command("rollback", "send a candidate version's traffic back to its baseline (an alert command)",
            "mlscope.versions.commands"),
    Command("demo", "run the demo model service, or inject an incident into a running one", "mlscope.demo.commands",
            "demo"),
    Command("workload", "serve a synthetic scikit-learn model with traffic and /metrics", "mlscope.demo.commands",
            "demo"),
)
BY_NAME = {c.name: c for c in COMMANDS}


def _define(command: Command, p: argparse.ArgumentParser) -> None:
    """Let the command's own module define its arguments (imports that module)."""
    getattr(importlib.import_module(command.module), command.adder)(p)


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``mlscope`` parser: every command fully defined, or only ``only`` (the others by name and help)."""
    p = argparse.ArgumentParser(prog="mlscope", description="Observability for machine-learning models.")
    p.add_argument("--version", action="version", version=f"mlscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        if only is None or only == command.name:
            _define(command, child)
    return p


def _chosen(argv: Sequence[str]) -> Command | None:
    """The command named on the line (the first argument that is not an option), if it is one."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return BY_NAME.get(first) if first else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen(argv)
    if command is not None:
        missing = command.missing()
        if missing:
            print(f"mlscope: {MissingExtra(f'`mlscope {command.name}`', command.extra or '', missing)}",
                  file=sys.stderr)
            return 2
    args = parser(only=command.name if command else "").parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
