"""Kubernetes manifests from the compose stack's sources: ``mlscope k8s render DIR``.

- ``PrometheusRule`` per rule file, built by the same generator (and profile) as ``alerting/rules/``;
- ``ServiceMonitor`` per mlscope scrape target, with the same sample/label limits as the compose stack;
- a ``ConfigMap`` per generated dashboard, labelled for the Grafana sidecar (``grafana_dashboard: "1"``);
- a ``ConfigMap`` with the OpenTelemetry Collector's traces pipeline (tail sampling, batches, OTLP on to
  Tempo's distributor: :mod:`mlscope.stack.collector`), for the Collector your services send spans to.

Plus a ``kustomization.yaml`` listing them (``kubectl apply -k DIR``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..rules.config import PROFILES, config_for
from ..targets import SERVER_KINDS, SERVER_LABEL
from .promconfig import LABEL_LIMIT, SAMPLE_LIMIT

PART_OF = {"app.kubernetes.io/part-of": "mlscope"}
MONITORING_API = "monitoring.coreos.com/v1"
SIDECAR_LABEL = {"grafana_dashboard": "1"}
# Grafana's k8s-sidecar (kube-prometheus-stack: sidecar.dashboards.folderAnnotation) files dashboards by this.
FOLDER_ANNOTATION = "grafana_folder"
CONFIGMAP_MAX_BYTES = 1024 * 1024  # etcd's limit on one object, data included
SUBDIRS = {"PrometheusRule": "prometheus-rules", "ServiceMonitor": "service-monitors", "ConfigMap": "dashboards"}
TRACES_SUBDIR = "traces"
COLLECTOR_CONFIGMAP = "mlscope-otel-collector"
COLLECTOR_CONFIG_FILE = "collector.yaml"
# Tempo's distributor in distributed mode (the tempo-distributed chart's Service, release "tempo").
DEFAULT_TEMPO_ENDPOINT = "tempo-distributor.{namespace}.svc.cluster.local:4317"


@dataclass(frozen=True)
class ScrapeTarget:
    """A Service whose ``metrics`` port Prometheus scrapes."""

    name: str
    selector: Mapping[str, str]
    any_namespace: bool = False  # model services live in their teams' namespaces
    honor_labels: bool = False  # a Pushgateway: each pushed group keeps its own job and instance labels


TARGETS = (
    # Your model services: label their Service with this and name its metrics port `metrics`.
    ScrapeTarget("mlscope-model-services", {"mlscope.io/model-service": "true"}, any_namespace=True),
    ScrapeTarget("mlscope-resource-exporter", {**PART_OF, "app.kubernetes.io/component": "resource-exporter"}),
    ScrapeTarget("mlscope-quality-exporter", {**PART_OF, "app.kubernetes.io/component": "quality-exporter"}),
    ScrapeTarget("mlscope-alert-receiver", {**PART_OF, "app.kubernetes.io/component": "alert-receiver"}),
    # The Pushgateway of short-lived jobs (mlscope.pipelines): label its Service with this.
    ScrapeTarget("mlscope-pushgateway", {**PART_OF, "app.kubernetes.io/component": "pushgateway"},
                 honor_labels=True),
)


def _metadata(name: str, namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str] | None = None
              ) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {**PART_OF, **labels}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def prometheus_rules(profile: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    from ..rules.generate import FILES

    cfg = config_for(profile)
    return [{"apiVersion": MONITORING_API, "kind": "PrometheusRule",
             "metadata": _metadata(Path(file).stem, namespace, labels, {"mlscope.io/rule-profile": profile}),
             "spec": {"groups": build(cfg)}}
            for file, build in FILES.items()]


def service_monitors(profile: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    interval = config_for(profile).profile.scrape_interval
    monitors = []
    for target in TARGETS:
        spec: dict[str, Any] = {
            "selector": {"matchLabels": dict(target.selector)},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": interval}],
            "sampleLimit": SAMPLE_LIMIT,
            "labelLimit": LABEL_LIMIT,
        }
        if target.any_namespace:
            spec["namespaceSelector"] = {"any": True}
        if target.honor_labels:
            spec["endpoints"][0]["honorLabels"] = True
        monitors.append({"apiVersion": MONITORING_API, "kind": "ServiceMonitor",
                         "metadata": _metadata(target.name, namespace, labels), "spec": spec})
    return monitors + [model_server_monitor(interval, namespace, labels)]


MODEL_SERVER_LABEL = "mlscope.io/model-server"  # vllm or sglang, on the server's Service
MODEL_LABEL, MODEL_VERSION_LABEL = "mlscope.io/model", "mlscope.io/model-version"  # optional: the mapping


def _service_label(name: str) -> str:
    return "__meta_kubernetes_service_label_" + "".join(c if c.isalnum() else "_" for c in name)


def model_server_monitor(interval: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ServiceMonitor of vLLM/SGLang servers: Services labelled ``mlscope.io/model-server: vllm|sglang`` (any
    namespace, port ``metrics``); ``mlscope.io/model`` and ``mlscope.io/model-version`` map their model_name."""
    from .modelservers import model_server_relabelling, operator_relabelling

    relabelings = [{"sourceLabels": [_service_label(MODEL_SERVER_LABEL)], "targetLabel": SERVER_LABEL}]
    # both labels or neither: half a mapping would give the series model_version="unversioned"
    mapping = [_service_label(MODEL_LABEL), _service_label(MODEL_VERSION_LABEL)]
    relabelings += [{"sourceLabels": mapping, "regex": "(.+);(.+)", "targetLabel": target, "replacement": group}
                    for target, group in (("model", "$1"), ("model_version", "$2"))]
    endpoint = {"port": "metrics", "path": "/metrics", "interval": interval, "relabelings": relabelings,
                "metricRelabelings": operator_relabelling(model_server_relabelling())}
    spec = {"selector": {"matchExpressions": [{"key": MODEL_SERVER_LABEL, "operator": "In",
                                               "values": list(SERVER_KINDS)}]},
            "namespaceSelector": {"any": True}, "endpoints": [endpoint],
            "sampleLimit": SAMPLE_LIMIT, "labelLimit": LABEL_LIMIT}
    return {"apiVersion": MONITORING_API, "kind": "ServiceMonitor",
            "metadata": _metadata("mlscope-model-servers", namespace, labels), "spec": spec}


def dashboard_configmaps(dashboards_dir: Path, namespace: str, labels: Mapping[str, str],
                         folder: str = "mlscope") -> list[dict[str, Any]]:
    """One ConfigMap per dashboard JSON; the JSON text is kept byte for byte."""
    maps = []
    for path in sorted(dashboards_dir.glob("*.json")):
        text = path.read_text()
        uid = json.loads(text)["uid"]
        if len(text.encode()) > CONFIGMAP_MAX_BYTES - 4096:
            raise ValueError(f"{path}: {len(text.encode())} bytes does not fit in one ConfigMap (1 MiB)")
        maps.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": _metadata(uid, namespace, {**labels, **SIDECAR_LABEL}, {FOLDER_ANNOTATION: folder}),
                     "data": {path.name: text}})
    return maps


def collector_configmap(namespace: str, labels: Mapping[str, str], tempo_endpoint: str | None = None,
                        profile: str = "default") -> dict[str, Any]:
    """The OpenTelemetry Collector's configuration (``collector.yaml``), its slow-trace policy from the
    profile's rule configuration."""
    from .collector import collector_config

    endpoint = tempo_endpoint or DEFAULT_TEMPO_ENDPOINT.format(namespace=namespace)
    config = collector_config(endpoint, thresholds=config_for(profile).thresholds)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(COLLECTOR_CONFIGMAP, namespace, {**labels, "app.kubernetes.io/component":
                                                                    "otel-collector"}),
            "data": {COLLECTOR_CONFIG_FILE: yaml.safe_dump(config, sort_keys=False)}}


def render(profile: str = "default", namespace: str = "monitoring", labels: Mapping[str, str] | None = None,
           dashboards_dir: Path | None = None, tempo_endpoint: str | None = None) -> list[dict[str, Any]]:
    """Every manifest, in a stable order."""
    from .assets import asset

    labels = dict(labels or {})
    dashboards_dir = dashboards_dir or asset("provisioning/grafana/dashboards")
    return (prometheus_rules(profile, namespace, labels) + service_monitors(profile, namespace, labels)
            + dashboard_configmaps(dashboards_dir, namespace, labels)
            + [collector_configmap(namespace, labels, tempo_endpoint, profile)])


def _subdir(manifest: Mapping[str, Any]) -> str:
    if manifest["kind"] == "ConfigMap" and manifest["metadata"]["name"] == COLLECTOR_CONFIGMAP:
        return TRACES_SUBDIR
    return SUBDIRS[manifest["kind"]]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (dashboard JSON, long descriptions) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(manifest: Mapping[str, Any]) -> str:
    return yaml.dump(dict(manifest), Dumper=_Dumper, sort_keys=False, width=10**6, allow_unicode=True)


def write(manifests: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """Write one file per manifest under ``out`` plus a kustomization; remove generated files no longer produced."""
    written = []
    for manifest in manifests:
        path = out / _subdir(manifest) / f"{manifest['metadata']['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(manifest))
        written.append(path)
    for sub in (*SUBDIRS.values(), TRACES_SUBDIR):
        for old in (out / sub).glob("*.yaml"):
            if old not in written:
                old.unlink()
    kustomization = out / "kustomization.yaml"
    kustomization.write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(p.relative_to(out)) for p in written]}, sort_keys=False))
    return written + [kustomization]


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--label {text!r}: expected KEY=VALUE")
    return key, value


def add_arguments(parser: Any) -> None:
    """Arguments of ``mlscope k8s``."""
    parser.add_argument("action", choices=["render"])
    parser.add_argument("dir", help="output folder")
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES),
                        help="rule profile and scrape interval (default: %(default)s)")
    parser.add_argument("--namespace", default="monitoring", help="namespace of the manifests (default: %(default)s)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help="extra label on every manifest, e.g. release=kube-prometheus-stack for the "
                             "Prometheus CR's ruleSelector/serviceMonitorSelector (repeatable)")
    parser.add_argument("--dashboards", help="dashboard JSON folder (default: the stack's provisioning JSON)")
    parser.add_argument("--tempo-endpoint", help="host:port of Tempo's OTLP gRPC receiver (its distributor) the "
                        "Collector sends traces to (default: " + DEFAULT_TEMPO_ENDPOINT.format(namespace="NAMESPACE")
                        + ")")


def run(args: Any) -> int:
    import sys

    try:
        labels = dict(_label(text) for text in args.label)
        manifests = render(args.profile, args.namespace, labels, Path(args.dashboards) if args.dashboards else None,
                           args.tempo_endpoint)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    for path in write(manifests, Path(args.dir)):
        print(f"wrote {path}")
    return 0
