"""Fixtures that start real servers on 127.0.0.1 (free ports, temporary folders)."""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mlscope.stack import promconfig, servers
from mlscope.exposition import start_metrics_server
from mlscope.rules import config_for

ROOT = Path(__file__).resolve().parent.parent
FAST_RULES = sorted((ROOT / "alerting" / "rules" / "fast").glob("*.yml"))


def require_binary(*names: str) -> str:
    """The first binary found, else skip (or fail when MLSCOPE_REQUIRE_SERVERS=1, as in CI)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"none of {names} on PATH: {servers.INSTALL_HINT}"
    if os.environ.get("MLSCOPE_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Exporter:
    """A fresh registry served on a free loopback port."""

    registry: CollectorRegistry
    port: int
    _server: object = field(repr=False, default=None)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    port = servers.free_port()
    server, thread = start_metrics_server(port, registry=registry)
    yield Exporter(registry, port, server)
    server.shutdown()
    server.server_close()


class PrometheusHarness:
    """A running Prometheus that scrapes whatever targets the tests register (file_sd)."""

    def __init__(self, server: servers.Server, sd_file: Path) -> None:
        self.server = server
        self.api = servers.PrometheusAPI(server.url)
        self._sd_file = sd_file
        self._targets: dict[str, list[str]] = {}

    def scrape(self, name: str, *targets: str, timeout: float = 30.0) -> None:
        """Add ``targets`` (host:port) under the ``service`` label ``name`` and wait for their first scrapes."""
        self._targets.setdefault(name, []).extend(targets)
        promconfig.write_file_sd(self._sd_file, self._targets)
        for target in targets:
            self.api.wait_for(f'up{{instance="{target}"}} == 1', timeout=timeout)

    def forget(self, *targets: str) -> None:
        for known in self._targets.values():
            known[:] = [t for t in known if t not in targets]
        promconfig.write_file_sd(self._sd_file, {k: v for k, v in self._targets.items() if v})


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusHarness]:
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    sd_file = tmp / "targets.yml"
    promconfig.write_file_sd(sd_file, {})
    profile = config_for("fast").profile
    config = promconfig.prometheus_config(profile, [promconfig.scrape_job("mlscope-tests", file_sd=sd_file)],
                                          FAST_RULES)
    server = servers.prometheus(promconfig.write_config(tmp / "prometheus.yml", config), tmp / "data")
    server.start()
    yield PrometheusHarness(server, sd_file)
    server.stop()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.2):  # noqa: ANN001, ANN201
    """Poll ``predicate()`` until it returns a truthy value; return it or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
