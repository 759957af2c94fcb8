"""`mlscope k8s render`: manifests validated against the published schemas vendored in tests/fixtures/k8s-schemas/
(prometheus-operator CRDs, Kubernetes ConfigMap), rules identical to the generated rule files, promtool-clean;
the OpenTelemetry Collector's traces pipeline, checked against the keys its components document."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlscope.cli import main
from mlscope.rules import config_for
from mlscope.stack import k8s, promconfig
from mlscope.stack.modelservers import model_server_relabelling
from support import HERE, ROOT
from support.k8s import by_kind
from support.loki_reference import ANY, keys, undocumented

SCHEMAS = HERE / "fixtures" / "k8s-schemas"
DASHBOARDS = ROOT / "provisioning" / "grafana" / "dashboards"
# metadata.name of namespaced objects: a DNS-1123 subdomain.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it with strict field validation (kubectl's default since 1.27):
    an unknown field is an error, except where the schema preserves unknown fields."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def _configmap_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "configmap-v1.json").read_text())


def _crd_validator(file: str) -> jsonschema.Validator:
    schema = strict(yaml.safe_load((SCHEMAS / file).read_text()))
    # The CRD leaves metadata to the API server; check it with Kubernetes' own ObjectMeta schema.
    configmap = _configmap_schema()
    schema["properties"]["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    schema["$defs"] = configmap["$defs"]
    return jsonschema.Draft202012Validator(schema)


VALIDATORS = {
    "PrometheusRule": _crd_validator("prometheusrule-monitoring-v1.yaml"),
    "ServiceMonitor": _crd_validator("servicemonitor-monitoring-v1.yaml"),
    "ConfigMap": jsonschema.Draft202012Validator(_configmap_schema()),
}


def errors(manifest: dict[str, Any], kind: str | None = None) -> list[str]:
    """Schema violations of ``manifest`` (checked against the schema of ``kind``, by default its own)."""
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
             for e in VALIDATORS[kind or manifest["kind"]].iter_errors(manifest)]
    if not DNS_SUBDOMAIN.fullmatch(manifest["metadata"]["name"]):
        found.append(f"metadata.name {manifest['metadata']['name']!r} is not a DNS-1123 subdomain")
    return found


@pytest.mark.parametrize("profile", ["default", "fast"])
def test_every_manifest_validates_against_its_published_schema(tmp_path: Path, profile: str) -> None:
    assert main(["k8s", "render", str(tmp_path), "--profile", profile, "--label", "release=kube-prometheus-stack"]) == 0
    files = sorted(tmp_path.rglob("*.yaml"))
    manifests = [yaml.safe_load(p.read_text()) for p in files if p.name != "kustomization.yaml"]
    assert {m["kind"] for m in manifests} == {"PrometheusRule", "ServiceMonitor", "ConfigMap"}
    for manifest in manifests:
        assert errors(manifest) == [], manifest["metadata"]["name"]
        assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert manifest["metadata"]["namespace"] == "monitoring"
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(str(p.relative_to(tmp_path)) for p in files
                                                        if p.name != "kustomization.yaml")


def test_service_monitors_cover_the_exporters_with_limits() -> None:
    for profile in ("default", "fast"):
        monitors = by_kind(k8s.render(profile), "ServiceMonitor")
        servers = monitors.pop("mlscope-model-servers")
        assert set(monitors) == {"mlscope-model-services", "mlscope-resource-exporter", "mlscope-quality-exporter",
                                 "mlscope-alert-receiver", "mlscope-pushgateway"}
        # vLLM/SGLang Services (any namespace): the kind and the model mapping from their labels, and the same
        # model_name relabelling as the compose and native jobs.
        endpoint = servers["spec"]["endpoints"][0]
        assert servers["spec"]["selector"]["matchExpressions"] == [
            {"key": "mlscope.io/model-server", "operator": "In", "values": ["vllm", "sglang"]}]
        assert servers["spec"]["namespaceSelector"] == {"any": True}
        assert [r["targetLabel"] for r in endpoint["relabelings"]] == ["server", "model", "model_version"]
        for mapped in endpoint["relabelings"][1:]:  # a Service with only one of the two mapping labels maps nothing
            assert re.fullmatch(mapped["regex"], "chat;2") and not re.fullmatch(mapped["regex"], "chat;")
            assert not re.fullmatch(mapped["regex"], ";2")
        assert endpoint["metricRelabelings"] == [
            {"sourceLabels": c["source_labels"], "regex": c["regex"], "targetLabel": c["target_label"],
             "replacement": c["replacement"]} for c in model_server_relabelling()]
        for name, monitor in monitors.items():
            spec = monitor["spec"]
            assert spec["sampleLimit"] == promconfig.SAMPLE_LIMIT and spec["labelLimit"] == promconfig.LABEL_LIMIT
            # The Pushgateway's groups keep their own job and instance (honor_labels), as in compose and native.
            pushed = {"honorLabels": True} if name == "mlscope-pushgateway" else {}
            assert spec["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                          "interval": config_for(profile).profile.scrape_interval, **pushed}]
    assert monitors["mlscope-model-services"]["spec"]["namespaceSelector"] == {"any": True}


def test_dashboard_configmaps_carry_the_generated_json_for_the_sidecar() -> None:
    maps = {name: m for name, m in by_kind(k8s.render(), "ConfigMap").items()
            if m["metadata"]["labels"].get("grafana_dashboard") == "1"}
    sources = sorted(DASHBOARDS.glob("*.json"))
    assert sorted(maps) == sorted(json.loads(p.read_text())["uid"] for p in sources)
    for path in sources:
        configmap = maps[json.loads(path.read_text())["uid"]]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "mlscope"
        assert configmap["data"] == {path.name: path.read_text()}  # byte for byte, through the YAML


def test_the_validators_reject_broken_manifests() -> None:
    manifests = k8s.render()
    rule, monitor, configmap = (next(m for m in manifests if m["kind"] == k)
                                for k in ("PrometheusRule", "ServiceMonitor", "ConfigMap"))
    breakages = [
        (rule, lambda m: m["spec"]["groups"][0]["rules"][0].update(exprr="up")),  # typo: unknown field
        (rule, lambda m: m["spec"]["groups"][1]["rules"][0].update({"for": "5 minutes"})),  # not a duration
        (rule, lambda m: m["spec"]["groups"][0].pop("name")),
        (monitor, lambda m: m["spec"].update(sampleLimit="50000")),  # a string, not an integer
        (monitor, lambda m: m["spec"].pop("selector")),
        (monitor, lambda m: m["spec"]["endpoints"][0].update(scheme="ftp")),
        (monitor, lambda m: m["metadata"].update(labels={"a": 1})),  # ObjectMeta: label values are strings
        (configmap, lambda m: m["data"].update(extra={"nested": True})),
        (configmap, lambda m: m.update(kind="Secret")),
    ]
    for manifest, breaking in breakages:
        broken = copy.deepcopy(manifest)
        breaking(broken)
        assert errors(broken, manifest["kind"]), f"{manifest['kind']}: a broken manifest passed"
    assert errors({**copy.deepcopy(monitor), "metadata": {**monitor["metadata"], "name": "Bad_Name"}})


def test_render_replaces_stale_files_and_rejects_bad_arguments(tmp_path: Path) -> None:
    stale = tmp_path / "dashboards" / "mlscope-removed.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: ConfigMap\n")
    assert main(["k8s", "render", str(tmp_path)]) == 0
    assert not stale.exists()
    assert main(["k8s", "render", str(tmp_path), "--label", "no-equals-sign"]) == 2
    big = tmp_path / "big"
    big.mkdir()
    (big / "mlscope-big.json").write_text(json.dumps({"uid": "mlscope-big", "pad": "x" * (1024 * 1024)}))
    with pytest.raises(ValueError, match="ConfigMap"):
        k8s.dashboard_configmaps(big, "monitoring", {})


# The keys of the Collector components the traces pipeline uses: core's otlp receiver/exporter (confighttp,
# configgrpc, exporterhelper's sending_queue/retry_on_failure), memory_limiter, batch, health_check, and
# contrib's tail_sampling README (policy types status_code, latency, probabilistic).
_ENDPOINT = {"endpoint": ANY}
COLLECTOR_KEYS = {
    "receivers": {"otlp": {"protocols": {"grpc": _ENDPOINT, "http": _ENDPOINT}}},
    "processors": {"memory_limiter": keys("check_interval", "limit_percentage", "spike_limit_percentage",
                                          "limit_mib", "spike_limit_mib"),
                   "batch": keys("send_batch_size", "send_batch_max_size", "timeout"),
                   "tail_sampling": {**keys("decision_wait", "num_traces", "expected_new_traces_per_sec"),
                                     "policies": [{"name": ANY, "type": ANY,
                                                   "status_code": {"status_codes": ANY},
                                                   "latency": keys("threshold_ms", "upper_threshold_ms"),
                                                   "probabilistic": keys("sampling_percentage", "hash_salt")}]}},
    "exporters": {"otlp/tempo": {"endpoint": ANY, "tls": keys("insecure"),
                                 "sending_queue": keys("enabled", "queue_size", "num_consumers"),
                                 "retry_on_failure": keys("enabled", "max_elapsed_time", "initial_interval")}},
    "extensions": {"health_check": _ENDPOINT},
    "service": {"extensions": ANY, "pipelines": {"traces": keys("receivers", "processors", "exporters")}},
}
POLICY_TYPES = {"status_code", "latency", "probabilistic"}


def collector_problems(config: dict[str, Any]) -> list[str]:
    """Undocumented keys, pipeline parts that are not defined, and an order that loses the limit or the batch."""
    found = list(undocumented(config, COLLECTOR_KEYS))
    traces = config["service"]["pipelines"]["traces"]
    for part in ("receivers", "processors", "exporters"):
        found += [f"{part}: {name} is not defined" for name in traces[part] if name not in config[part]]
    if traces["processors"][:1] != ["memory_limiter"] or traces["processors"][-1:] != ["batch"]:
        found.append("memory_limiter must come first and batch last")
    policies = config["processors"]["tail_sampling"]["policies"]
    found += [f"policy {p['name']}: type {p['type']}" for p in policies if p["type"] not in POLICY_TYPES]
    found += [f"policy {p['name']}: no {p['type']} block" for p in policies if p["type"] not in p]
    return found


def test_the_collector_pipeline_tail_samples_and_sends_to_tempo(tmp_path: Path) -> None:
    assert main(["k8s", "render", str(tmp_path), "--tempo-endpoint", "tempo-distributor.tracing:4317"]) == 0
    manifest = yaml.safe_load((tmp_path / "traces" / "mlscope-otel-collector.yaml").read_text())
    assert errors(manifest) == [] and "grafana_dashboard" not in manifest["metadata"]["labels"]
    config = yaml.safe_load(manifest["data"]["collector.yaml"])
    assert collector_problems(config) == []
    assert config["exporters"]["otlp/tempo"]["endpoint"] == "tempo-distributor.tracing:4317"
    protocols = config["receivers"]["otlp"]["protocols"]
    assert [protocols[p]["endpoint"].rsplit(":", 1)[1] for p in ("grpc", "http")] == ["4317", "4318"]
    latency = next(p for p in config["processors"]["tail_sampling"]["policies"] if p["type"] == "latency")
    assert latency["latency"]["threshold_ms"] == 1000 * config_for("default").thresholds.latency_slo_seconds
    default = by_kind(k8s.render(namespace="obs"), "ConfigMap")["mlscope-otel-collector"]
    assert "tempo-distributor.obs.svc.cluster.local:4317" in default["data"]["collector.yaml"]


def test_the_collector_check_finds_broken_pipelines() -> None:
    from mlscope.stack.collector import collector_config

    config = collector_config("tempo:4317")
    broken = copy.deepcopy(config)
    broken["service"]["pipelines"]["traces"]["processors"] = ["tail_sampling", "batch", "memory_limiter"]
    broken["service"]["pipelines"]["traces"]["exporters"] = ["otlp/jaeger"]
    broken["processors"]["tail_sampling"]["policies"][0]["type"] = "status"
    broken["processors"]["batch"]["timeout_s"] = 5
    assert collector_problems(broken) == ["processors.batch.timeout_s", "exporters: otlp/jaeger is not defined",
                                          "memory_limiter must come first and batch last",
                                          "policy errors: type status", "policy errors: no status block"]
