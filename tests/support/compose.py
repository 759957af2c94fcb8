"""The compose files of the stack, read as compose reads them (shared by the compose and scale-out tests)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from . import ROOT

COMPOSE = ROOT / "docker-compose.yml"


PROMETHEUS = ROOT / "provisioning" / "prometheus" / "prometheus.yml"


DATASOURCES = ROOT / "provisioning" / "grafana" / "datasources" / "datasources.yml"


ALERTMANAGER = ROOT / "alerting" / "alertmanager.yml"


# Ports the upstream images listen on inside the network.
UPSTREAM_PORTS = {"prometheus": 9090, "alertmanager": 9093, "pushgateway": 9091, "loki": 3100, "grafana": 3000,
                  "tempo": 3200}
# Tempo also receives OTLP: gRPC and HTTP (provisioning/tempo/tempo.yml).
TEMPO_OTLP_PORTS = {"grpc": 4317, "http": 4318}


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
