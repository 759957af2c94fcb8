"""Configuration of Loki, Tempo and Grafana for the native stack, derived from the compose stack's provisioning.

The compose files name services by host (``prometheus:9090``); natively every
server listens on 127.0.0.1 with the ports of :class:`mlscope.native.Ports`, and
keeps its data in the state directory.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .assets import asset

LOKI_BINARIES = ("loki",)
TEMPO_BINARIES = ("tempo",)
GRAFANA_BINARIES = ("grafana", "grafana-server")
GRAFANA_HOMEPATHS = ("/usr/share/grafana", "/usr/local/share/grafana", "/opt/grafana")
# How to get them, said briefly (docs/stack.md has the steps).
LOKI_HINT = ("Debian/Ubuntu: unzip loki-linux-amd64.zip from github.com/grafana/loki/releases onto PATH as "
             "`loki`; macOS: `brew install loki`; see docs/stack.md")
TEMPO_HINT = ("Debian/Ubuntu: `dpkg -i tempo_<version>_linux_amd64.deb` from github.com/grafana/tempo/releases; "
              "macOS: the tempo_<version>_darwin_arm64.tar.gz of those releases, `tempo` onto PATH; see docs/stack.md")
GRAFANA_HINT = ("Debian/Ubuntu: `apt-get install grafana` from Grafana's APT repository (apt.grafana.com) or the "
                "grafana.com .deb; macOS: `brew install grafana`; see docs/stack.md")


# The volumes compose mounts for Loki and Tempo: their configurations set every storage and working path under it.
LOKI_VOLUME = "/loki"
TEMPO_VOLUME = "/var/tempo"


def loki_root(state_dir: Path) -> Path:
    """Where a native Loki keeps everything (absolute: Loki resolves relative paths against its cwd)."""
    return (state_dir / "loki").resolve()


def tempo_root(state_dir: Path) -> Path:
    """Where a native Tempo keeps everything (absolute, as for Loki)."""
    return (state_dir / "tempo").resolve()


def _relocate(node: Any, root: Path, volume: str = LOKI_VOLUME) -> Any:
    """Every path under ``volume`` in ``node`` moved under ``root``, recursively."""
    if isinstance(node, dict):
        return {key: _relocate(value, root, volume) for key, value in node.items()}
    if isinstance(node, list):
        return [_relocate(value, root, volume) for value in node]
    if isinstance(node, str) and (node == volume or node.startswith(volume + "/")):
        return str(root / node[len(volume):].lstrip("/"))
    return node


def loki_config(state_dir: Path, http_port: int, grpc_port: int) -> dict[str, Any]:
    """provisioning/loki/loki.yml with every path under ``state_dir`` and its ports on 127.0.0.1."""
    config: dict[str, Any] = _relocate(yaml.safe_load(asset("provisioning/loki/loki.yml").read_text()),
                                       loki_root(state_dir))
    config["server"].update({"http_listen_address": "127.0.0.1", "http_listen_port": http_port,
                             "grpc_listen_address": "127.0.0.1", "grpc_listen_port": grpc_port})
    return config


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """``${VAR:-default}`` -> VAR's value in ``env`` when set and not empty, else ``default``: what Tempo's
    ``-config.expand-env=true`` does in the compose stack."""
    return _ENV_REFERENCE.sub(lambda match: env.get(match.group(1)) or match.group(2), text)


@dataclass(frozen=True)
class TempoPorts:
    """Where a native Tempo listens, all on 127.0.0.1: its API, OTLP gRPC/HTTP, its own gRPC and gossip."""

    http: int
    otlp_grpc: int
    otlp_http: int
    grpc: int
    memberlist: int


def tempo_config(state_dir: Path, ports: TempoPorts, prometheus: str,
                 env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """provisioning/tempo/tempo.yml with every path under ``state_dir``, every listener on 127.0.0.1, its
    metrics-generator writing into the Prometheus at ``prometheus`` (``host:port``) and ``${VAR:-default}``
    read from ``env`` (default: this process's environment, e.g. TEMPO_RETENTION)."""
    text = expand_env(asset("provisioning/tempo/tempo.yml").read_text(), os.environ if env is None else env)
    config: dict[str, Any] = _relocate(yaml.safe_load(text), tempo_root(state_dir), TEMPO_VOLUME)
    config["server"].update({"http_listen_address": "127.0.0.1", "http_listen_port": ports.http,
                             "grpc_listen_address": "127.0.0.1", "grpc_listen_port": ports.grpc})
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = f"127.0.0.1:{ports.otlp_grpc}"
    protocols["http"]["endpoint"] = f"127.0.0.1:{ports.otlp_http}"
    config["memberlist"] = {"bind_addr": ["127.0.0.1"], "bind_port": ports.memberlist}
    for target in config["metrics_generator"]["storage"]["remote_write"]:
        target["url"] = f"http://{prometheus}/api/v1/write"
    return config


def otlp_environment(otlp_http_port: int) -> dict[str, str]:
    """OpenTelemetry's exporter variables that send a process's spans to a native Tempo (OTLP/HTTP)."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_http_port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


def _rewrite_urls(text: str, hosts: Mapping[str, str]) -> str:
    for compose_host, native in hosts.items():
        text = text.replace(f"http://{compose_host}", f"http://{native}")
    return text


def grafana_provisioning(target: Path, hosts: Mapping[str, str]) -> Path:
    """A copy of provisioning/grafana with datasource URLs pointing at the native servers.

    ``hosts`` maps compose ``host:port`` (``prometheus:9090``) to native ``127.0.0.1:port``.
    Datasources of servers that do not run natively (no entry in ``hosts``) are left out.
    """
    source = asset("provisioning/grafana")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    datasources = target / "datasources" / "datasources.yml"
    config = yaml.safe_load(datasources.read_text())
    kept = []
    for entry in config["datasources"]:
        host = entry["url"].split("//", 1)[1]
        if host in hosts:
            entry = copy.deepcopy(entry)
            entry["url"] = f"http://{hosts[host]}"
            kept.append(entry)
    uids = {entry["uid"] for entry in kept}
    config["datasources"] = [_without_links_outside(entry, uids) for entry in kept]
    datasources.write_text(_rewrite_urls(yaml.safe_dump(config, sort_keys=False), hosts))
    provider = target / "dashboards" / "mlscope.yml"
    providers = yaml.safe_load(provider.read_text())
    providers["providers"][0]["options"]["path"] = str(target / "dashboards")
    provider.write_text(yaml.safe_dump(providers, sort_keys=False))
    return target


# jsonData keys of Grafana's datasources that link to another datasource: lists of links, and single links.
LINK_LISTS = ("exemplarTraceIdDestinations", "derivedFields")
LINK_BLOCKS = ("tracesToLogsV2", "tracesToMetrics", "serviceMap")


def linked_uids(entry: Mapping[str, Any]) -> list[str]:
    """The datasource uids a provisioned datasource's links name (``datasourceUid``), in order."""
    data = entry.get("jsonData", {})
    uids = [link["datasourceUid"] for key in LINK_LISTS for link in data.get(key, []) if "datasourceUid" in link]
    return uids + [data[key]["datasourceUid"] for key in LINK_BLOCKS if "datasourceUid" in data.get(key, {})]


def _without_links_outside(entry: dict[str, Any], uids: set[str]) -> dict[str, Any]:
    """``entry`` without the links to datasources not in ``uids`` (a server that does not run natively)."""
    data = entry.get("jsonData")
    if not data:
        return entry
    for key in LINK_LISTS:
        if key in data:
            data[key] = [link for link in data[key] if link.get("datasourceUid", entry["uid"]) in uids]
    for key in LINK_BLOCKS:
        if key in data and data[key].get("datasourceUid", entry["uid"]) not in uids:
            del data[key]
    return entry


def grafana_environment(state_dir: Path, port: int, provisioning: Path, admin_password: str) -> dict[str, str]:
    """Grafana's settings as GF_* variables: loopback, no anonymous access, no sign-up, data in the state dir."""
    return {
        "GF_SERVER_HTTP_ADDR": "127.0.0.1", "GF_SERVER_HTTP_PORT": str(port),
        "GF_PATHS_DATA": str(state_dir / "grafana" / "data"), "GF_PATHS_LOGS": str(state_dir / "grafana" / "logs"),
        "GF_PATHS_PLUGINS": str(state_dir / "grafana" / "plugins"), "GF_PATHS_PROVISIONING": str(provisioning),
        "GF_SECURITY_ADMIN_PASSWORD": admin_password, "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false", "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false", "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    }


def grafana_homepath(binary: str | None = None) -> str | None:
    """Grafana's home (``conf/defaults.ini``): beside its binary (Debian's /usr/sbin -> /usr/share/grafana,
    Homebrew's Cellar/grafana/V/bin -> share/grafana, a release archive's bin/ -> its root), else a usual place."""
    near: list[Path] = []
    if binary:
        root = Path(binary).resolve().parent.parent
        near = [root / "share" / "grafana", root]
    for path in [*near, *map(Path, GRAFANA_HOMEPATHS)]:
        if (path / "conf" / "defaults.ini").exists():
            return str(path)
    return None
