"""Remote write to a horizontally scalable backend: the overlays in ``provisioning/remote-write/``.

Prometheus (2.x) has no include for its configuration file, so each overlay is
the compose stack's ``provisioning/prometheus/prometheus.yml`` plus one
``remote_write`` block, generated here and committed (``mlscope remote-write
build``; ``check`` fails when they are stale). ``docker-compose.remote-write.yml``
mounts the overlay of ``MLSCOPE_REMOTE_WRITE_BACKEND`` in place of the base file.

The recording rules stay in ``rule_files``: Prometheus evaluates them locally and
ships the recorded series along with the raw ones (see the README's "Scaling").
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import catalog
from ..rules.promql import metric_names


@dataclass(frozen=True)
class Backend:
    """Where and how one kind of backend receives remote write."""

    name: str
    title: str
    url: str  # as reached from the compose network; `mlscope remote-write render --url` for yours
    tenant_header: str | None  # the header that names the tenant, if the tenant is not in the URL
    send_exemplars: bool
    note: str


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("mimir", "Grafana Mimir (distributor)", "http://mimir:8080/api/v1/push", "X-Scope-OrgID", True,
            "Tenant in X-Scope-OrgID (required unless Mimir runs with -auth.multitenancy-enabled=false)."),
    Backend("thanos", "Thanos Receive", "http://thanos-receive:19291/api/v1/receive", "THANOS-TENANT", True,
            "Tenant in THANOS-TENANT (--receive.tenant-header); exemplars kept only with --tsdb.max-exemplars > 0."),
    Backend("victoriametrics", "VictoriaMetrics cluster (vminsert)",
            "http://vminsert:8480/insert/0/prometheus/api/v1/write", None, False,
            "Tenant (accountID) is the number after /insert/ in the URL; VictoriaMetrics does not store exemplars."),
)}
DEFAULT_TENANT = "mlscope"

# Prometheus's remote write tuning guide: many samples per request, shards scale up with the backlog,
# a bounded in-memory queue per shard (capacity >= max_samples_per_send), quick retries with back-off.
QUEUE_CONFIG: dict[str, Any] = {"capacity": 10000, "max_shards": 50, "min_shards": 1, "max_samples_per_send": 2000,
                                "batch_send_deadline": "5s", "min_backoff": "30ms", "max_backoff": "5s"}

# Series every counter and histogram child of prometheus-client also exposes (the creation time); no rule or
# dashboard reads them, and they are one extra series per child.
CREATED_SERIES = ".+_created"
RECORDED_SERIES = "[a-z_]+:mlscope_[a-z0-9_]+:[a-z0-9_]+"


def foreign_names(rule_groups: Iterable[Mapping[str, Any]], dashboards: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names outside mlscope's prefix that the rules and dashboards read (``up``, ``ALERTS``, ``prometheus_*``...)."""
    from ..dashboards.check import queries, variable_selector

    exprs = [str(rule["expr"]) for group in rule_groups for rule in group["rules"]]
    for board in dashboards:
        for query in queries(dict(board)):
            if query.datasource == "prometheus":
                selector = variable_selector(query.expr) if query.variable else None
                exprs.append(selector[0] if selector else query.expr)
    names = {name for expr in exprs for name in metric_names(expr)}
    return sorted(n for n in names if not n.startswith(catalog.PREFIX) and ":" not in n)


def keep_regex(foreign: Iterable[str]) -> str:
    """The series remote write keeps: mlscope's own, recorded ones, and the foreign names rules/dashboards read."""
    return "|".join(["mlscope_.+", RECORDED_SERIES, *(re.escape(n) for n in foreign)])


@dataclass(frozen=True)
class RemoteWrite:
    """One ``remote_write`` entry for ``backend``."""

    backend: Backend
    url: str | None = None
    tenant: str = DEFAULT_TENANT
    queue_config: Mapping[str, Any] = field(default_factory=lambda: dict(QUEUE_CONFIG))

    def config(self, foreign: Iterable[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": f"mlscope-{self.backend.name}", "url": self.url or self.backend.url}
        if self.backend.tenant_header:
            entry["headers"] = {self.backend.tenant_header: self.tenant}
        entry["send_exemplars"] = self.backend.send_exemplars
        entry["queue_config"] = dict(self.queue_config)
        entry["metadata_config"] = {"send": True, "send_interval": "1m"}
        entry["write_relabel_configs"] = [
            {"source_labels": ["__name__"], "regex": CREATED_SERIES, "action": "drop"},
            {"source_labels": ["__name__"], "regex": keep_regex(foreign), "action": "keep"},
        ]
        return entry


def with_remote_write(base: Mapping[str, Any], remote: RemoteWrite, foreign: Iterable[str]) -> dict[str, Any]:
    """``base`` (a Prometheus configuration) with ``remote`` as its only remote_write target."""
    config = dict(base)
    config["remote_write"] = [remote.config(foreign)]
    return config


HEADER = ("# Generated by `mlscope remote-write build` from provisioning/prometheus/prometheus.yml + the {title}\n"
          "# remote_write block of exporters/mlscope/remotewrite.py. Do not edit: regenerate, or render your own with\n"
          "#   mlscope remote-write render --backend {name} --url URL [--tenant T] --output FILE\n"
          "# {note}\n"
          "# Recording rules are evaluated here (rule_files) and their series shipped with the raw ones.\n")


def stack_foreign_names(root: Path) -> list[str]:
    """:func:`foreign_names` of the generated rules (any profile reads the same names) and dashboards under ``root``."""
    import json

    from ..rules.config import config_for
    from ..rules.generate import FILES

    groups = [g for build in FILES.values() for g in build(config_for("default"))]
    boards = [json.loads(p.read_text()) for p in sorted((root / "provisioning/grafana/dashboards").glob("*.json"))]
    return foreign_names(groups, boards)


def render(root: Path, remote: RemoteWrite) -> str:
    """The overlay text for ``remote``, from the stack files under ``root``."""
    base = yaml.safe_load((root / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    config = with_remote_write(base, remote, stack_foreign_names(root))
    b = remote.backend
    return HEADER.format(title=b.title, name=b.name, note=b.note) + yaml.safe_dump(config, sort_keys=False, width=10**6)


def overlay_path(root: Path, backend: str) -> Path:
    return root / "provisioning" / "remote-write" / f"prometheus-{backend}.yml"


def render_all(root: Path) -> dict[Path, str]:
    return {overlay_path(root, name): render(root, RemoteWrite(b)) for name, b in BACKENDS.items()}


def build(root: Path) -> list[Path]:
    wanted = render_all(root)
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(wanted)


def stale(root: Path) -> list[Path]:
    return sorted(p for p, text in render_all(root).items() if not p.exists() or p.read_text() != text)


def add_arguments(parser: Any) -> None:
    """Arguments of ``mlscope remote-write``."""
    parser.add_argument("action", choices=["build", "check", "render"],
                        help="build/check the committed overlays, or render one for your backend")
    parser.add_argument("--root", default=None,
                        help="the stack's folder holding provisioning/ "
                             "(default: this checkout, else the installed copy)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="mimir", help="render: backend kind")
    parser.add_argument("--url", help="render: your backend's remote write URL")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="render: tenant id (default: %(default)s)")
    parser.add_argument("--output", help="render: write here instead of standard output")


def run(args: Any) -> int:
    import sys

    from .assets import stack_root

    root = Path(args.root) if args.root else stack_root()
    if args.action == "build":
        for path in build(root):
            print(f"wrote {path}")
        return 0
    if args.action == "check":
        out = stale(root)
        for path in out:
            print(f"stale: {path} (run `mlscope remote-write build`)", file=sys.stderr)
        return 1 if out else 0
    text = render(root, RemoteWrite(BACKENDS[args.backend], url=args.url, tenant=args.tenant))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0
