"""Configuration of Loki and Grafana for the native stack, derived from the compose stack's provisioning.

The compose files name services by host (``prometheus:9090``); natively every
server listens on 127.0.0.1 with the ports of :class:`mlscope.native.Ports`, and
keeps its data in the state directory.
"""
from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .assets import asset

LOKI_BINARIES = ("loki",)
GRAFANA_BINARIES = ("grafana", "grafana-server")
GRAFANA_HOMEPATHS = ("/usr/share/grafana", "/usr/local/share/grafana", "/opt/grafana")
# How to get them, said briefly (docs/stack.md has the steps).
LOKI_HINT = ("Debian/Ubuntu: unzip loki-linux-amd64.zip from github.com/grafana/loki/releases onto PATH as "
             "`loki`; macOS: `brew install loki`; see docs/stack.md")
GRAFANA_HINT = ("Debian/Ubuntu: `apt-get install grafana` from Grafana's APT repository (apt.grafana.com) or the "
                "grafana.com .deb; macOS: `brew install grafana`; see docs/stack.md")


# The volume compose mounts for Loki: provisioning/loki/loki.yml sets every storage and working path under it.
LOKI_VOLUME = "/loki"


def loki_root(state_dir: Path) -> Path:
    """Where a native Loki keeps everything (absolute: Loki resolves relative paths against its cwd)."""
    return (state_dir / "loki").resolve()


def _relocate(node: Any, root: Path) -> Any:
    """Every ``/loki`` path in ``node`` moved under ``root``, recursively."""
    if isinstance(node, dict):
        return {key: _relocate(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_relocate(value, root) for value in node]
    if isinstance(node, str) and (node == LOKI_VOLUME or node.startswith(LOKI_VOLUME + "/")):
        return str(root / node[len(LOKI_VOLUME):].lstrip("/"))
    return node


def loki_config(state_dir: Path, http_port: int, grpc_port: int) -> dict[str, Any]:
    """provisioning/loki/loki.yml with every path under ``state_dir`` and its ports on 127.0.0.1."""
    config: dict[str, Any] = _relocate(yaml.safe_load(asset("provisioning/loki/loki.yml").read_text()),
                                       loki_root(state_dir))
    config["server"].update({"http_listen_address": "127.0.0.1", "http_listen_port": http_port,
                             "grpc_listen_address": "127.0.0.1", "grpc_listen_port": grpc_port})
    return config


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
    config["datasources"] = kept
    datasources.write_text(_rewrite_urls(yaml.safe_dump(config, sort_keys=False), hosts))
    provider = target / "dashboards" / "mlscope.yml"
    providers = yaml.safe_load(provider.read_text())
    providers["providers"][0]["options"]["path"] = str(target / "dashboards")
    provider.write_text(yaml.safe_dump(providers, sort_keys=False))
    return target


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
