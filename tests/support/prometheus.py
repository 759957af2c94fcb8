"""A running Prometheus that scrapes whatever targets a test registers (the ``prometheus`` fixture's object)."""
from __future__ import annotations

from pathlib import Path

from mlscope.stack import promconfig, servers


class PrometheusHarness:
    """A running Prometheus that scrapes whatever targets the tests register (file_sd)."""

    def __init__(self, server: servers.Server, sd_file: Path) -> None:
        self.server = server
        self.api = servers.PrometheusAPI(server.url)
        self._sd_file = sd_file
        self._targets: dict[str, list[str]] = {}
        self._intervals: dict[str, str] = {}

    def scrape(self, name: str, *targets: str, timeout: float = 30.0, interval: str | None = None) -> None:
        """Add ``targets`` (host:port) under the ``service`` label ``name`` and wait for their first scrapes;
        ``interval``: the service's own scrape interval and timeout instead of the profile's."""
        self._targets.setdefault(name, []).extend(targets)
        if interval:
            self._intervals[name] = interval
        promconfig.write_file_sd(self._sd_file, self._targets, self._intervals)
        for target in targets:
            self.api.wait_for(f'up{{instance="{target}"}} == 1', timeout=timeout)

    def forget(self, *targets: str) -> None:
        for known in self._targets.values():
            known[:] = [t for t in known if t not in targets]
        promconfig.write_file_sd(self._sd_file, {k: v for k, v in self._targets.items() if v}, self._intervals)
