"""Static checks of the scale-out overlays: remote-write Prometheus configurations and the compose override files."""
from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from mlscope.stack import remotewrite
from support import ROOT
from support.compose import (
    DATASOURCES,
    UPSTREAM_PORTS,
    compose,
    host_port,
    published_ports,
    unpinned_images,
    validate_compose_spec,
    volume_at,
)

OVERRIDES = {"remote-write": ROOT / "docker-compose.remote-write.yml",
             "alertmanager-ha": ROOT / "docker-compose.alertmanager-ha.yml",
             "loki-scalable": ROOT / "docker-compose.loki-scalable.yml"}


def override(name: str) -> dict[str, Any]:
    return yaml.safe_load(OVERRIDES[name].read_text())


def test_keep_regex_keeps_what_rules_and_dashboards_read() -> None:
    keep = re.compile(remotewrite.keep_regex(remotewrite.stack_foreign_names(ROOT)))
    for name in ("mlscope_predictions_total", "mlscope_prediction_latency_seconds_bucket",
                 "model_version:mlscope_predictions:rate", "up", "ALERTS", "prometheus_rule_evaluation_failures_total"):
        assert keep.fullmatch(name), name
    for name in ("go_goroutines", "node_cpu_seconds_total", "python_gc_objects_collected_total", "model"):
        assert not keep.fullmatch(name), name
    assert re.fullmatch(remotewrite.CREATED_SERIES, "mlscope_predictions_created")


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_overrides_validate_against_the_compose_spec(name: str) -> None:
    ok = validate_compose_spec(OVERRIDES[name])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = override(name)
    for port in published_ports(data):
        assert port.startswith("127.0.0.1:"), port
    for service in data["services"].values():
        for volume in service.get("volumes", []):
            for backend in remotewrite.BACKENDS:  # ${MLSCOPE_REMOTE_WRITE_BACKEND:-mimir} -> every choice
                source = re.sub(r"\$\{MLSCOPE_REMOTE_WRITE_BACKEND:-[a-z]+\}", backend, volume).split(":")[0]
                assert not source.startswith(".") or (ROOT / source).exists(), source


def test_remote_write_override_replaces_the_base_prometheus_config() -> None:
    base_mount = next(v for v in compose()["services"]["prometheus"]["volumes"] if "prometheus.yml" in v)
    [mount] = override("remote-write")["services"]["prometheus"]["volumes"]
    assert mount.rsplit(":", 2)[1:] == base_mount.rsplit(":", 2)[1:]  # same target: compose replaces the base entry


def test_alertmanager_pair_peers_each_other_and_prometheus_finds_both() -> None:
    services = override("alertmanager-ha")["services"]
    base = compose()
    assert services["alertmanager-2"]["image"] == base["x-images"]["alertmanager"]
    names = {"alertmanager": {"alertmanager", *services["alertmanager"]["networks"]["mlscope"]["aliases"]},
             "alertmanager-2": {"alertmanager-2", *services["alertmanager-2"]["networks"]["mlscope"]["aliases"]}}
    for me, other in (("alertmanager", "alertmanager-2"), ("alertmanager-2", "alertmanager")):
        command = services[me]["command"]
        assert "--cluster.listen-address=0.0.0.0:9094" in command
        [peer] = [c.split("=", 1)[1] for c in command if c.startswith("--cluster.peer=")]
        host, port = peer.split(":")
        assert port == "9094" and host in names[other] and host not in names[me], peer
    # Prometheus sends every alert to every replica: DNS discovery of the shared name `alertmanager`.
    assert "alertmanager" in names["alertmanager-2"]
    prometheus = yaml.safe_load((ROOT / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["alerting"]["alertmanagers"][0]["dns_sd_configs"][0]["names"] == ["alertmanager"]


# -- Loki in simple scalable mode ------------------------------------------------------------------

LOKI_SSD = ROOT / "provisioning" / "loki" / "loki-simple-scalable.yml"
GATEWAY = ROOT / "provisioning" / "loki" / "gateway.conf"
TARGETS = ("read", "write", "backend")


def gateway_routes() -> dict[str, str]:
    """nginx ``location`` -> the upstream its ``proxy_pass`` variable names (host:port)."""
    text = GATEWAY.read_text()
    upstreams = dict(re.findall(r"set \$(\w+) http://([\w.-]+:\d+);", text))
    return {path: upstreams[var] for path, var in re.findall(r"location ([=~ ]*\S+) \{[^}]*?proxy_pass \$(\w+);",
                                                               text)}


def test_loki_scalable_images_volumes_and_health() -> None:
    data = override("loki-scalable")
    assert unpinned_images(data) == []
    assert data["x-images"]["loki"] == compose()["x-images"]["loki"]
    services = data["services"]
    named = set(data["volumes"])
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
    for target in TARGETS:
        service = {**data["x-loki"], **services[f"loki-{target}"]}
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"]["minio"]["condition"] == "service_healthy"
        assert volume_at(data, f"loki-{target}", "/loki") <= named and volume_at(data, f"loki-{target}", "/loki")
    assert volume_at(data, "minio", "/data") <= named and volume_at(data, "minio", "/data")
    # The gateway takes the base `loki` service's name; it waits for the targets it routes to.
    assert services["loki"]["image"] == data["x-images"]["gateway"]
    assert {k for k, v in services["loki"]["depends_on"].items() if v["condition"] == "service_healthy"} == {
        "loki-read", "loki-write"}


def test_loki_targets_share_one_config_ring_and_bucket() -> None:
    data = override("loki-scalable")
    services = data["services"]
    config = yaml.safe_load(LOKI_SSD.read_text())
    http_port = config["server"]["http_listen_port"]
    referenced = set(re.findall(r"\$\{(\w+)\}", LOKI_SSD.read_text()))
    assert referenced, "credentials come from the environment"
    for target in TARGETS:
        service = services[f"loki-{target}"]
        command = service["command"]
        [config_file] = [c.split("=", 1)[1] for c in command if c.startswith("-config.file=")]
        assert f"./provisioning/loki/loki-simple-scalable.yml:{config_file}:ro" in service["volumes"]
        assert f"-target={target}" in command and "-config.expand-env=true" in command
        assert referenced <= set(data["x-loki"]["environment"]), "every ${VAR} of the config is set"
    # memberlist: every target joins the ring through the services' DNS names.
    members = [m.removeprefix("dns+") for m in config["memberlist"]["join_members"]]
    assert {m.split(":")[0] for m in members} == {f"loki-{t}" for t in TARGETS}
    assert {int(m.split(":")[1]) for m in members} == {config["memberlist"]["bind_port"]}
    assert config["common"]["ring"]["kvstore"]["store"] == "memberlist"
    assert config["common"]["compactor_address"] == f"http://loki-backend:{http_port}"
    # One S3 store, MinIO's API port, buckets created by MinIO's entrypoint, the ruler on the same store.
    s3 = config["common"]["storage"]["s3"]
    host, port = s3["endpoint"].split(":")
    assert host in services and int(port) == 9000 and "minio server /data" in services[host]["entrypoint"][-1]
    buckets = {s3["bucketnames"], config["ruler"]["storage"]["s3"]["bucketnames"]}
    for bucket in buckets:
        assert f"/data/{bucket}" in services[host]["entrypoint"][-1], bucket
    assert config["ruler"]["storage"]["s3"]["endpoint"] == s3["endpoint"]
    assert config["schema_config"]["configs"][-1]["object_store"] == "s3"
    assert config["compactor"]["delete_request_store"] == "s3"
    # Same schema, limits and retention as the single binary.
    single = yaml.safe_load((ROOT / "provisioning" / "loki" / "loki.yml").read_text())
    assert config["limits_config"] == single["limits_config"]
    [*_, schema], [*_, single_schema] = config["schema_config"]["configs"], single["schema_config"]["configs"]
    assert {**schema, "object_store": "filesystem"} == single_schema
    assert config["compactor"]["retention_enabled"] is True


def test_loki_secrets_are_required_and_documented() -> None:
    data = override("loki-scalable")
    password = data["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    assert re.fullmatch(r"\$\{MLSCOPE_MINIO_PASSWORD:\?.+\}", password)
    assert data["x-loki"]["environment"]["LOKI_S3_SECRET_ACCESS_KEY"] == password
    assert data["x-loki"]["environment"]["LOKI_S3_ACCESS_KEY_ID"] == data["services"]["minio"]["environment"][
        "MINIO_ROOT_USER"]
    assert re.search(r"^# MLSCOPE_MINIO_PASSWORD=$", (ROOT / ".env.example").read_text(), re.M)


def test_loki_gateway_routes_push_to_write_and_queries_to_read() -> None:
    routes = gateway_routes()
    services = override("loki-scalable")["services"]
    http_port = yaml.safe_load(LOKI_SSD.read_text())["server"]["http_listen_port"]
    assert routes == {"= /loki/api/v1/push": f"loki-write:{http_port}", "= /loki/api/v1/tail": f"loki-read:{http_port}",
                      "/loki/api/": f"loki-read:{http_port}"}
    assert {r.split(":")[0] for r in routes.values()} <= set(services)
    # It listens where the single binary did, under the same name: clients keep http://loki:3100.
    listen = int(re.search(r"listen (\d+);", GATEWAY.read_text()).group(1))
    assert listen == UPSTREAM_PORTS["loki"]
    assert services["loki"]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{listen}/"
    base = compose()["services"]
    demo_push = base["demo"]["command"][base["demo"]["command"].index("--loki-url") + 1]
    datasource = next(d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"] if d["uid"] == "loki")
    for url in (demo_push, datasource["url"]):
        assert host_port(url.split("/loki/")[0]) == ("loki", listen), url
    assert "/loki/api/v1/push" in demo_push
