"""tests/e2e: tests that start real programs (Prometheus, promtool, Alertmanager, amtool, hadolint, node).

Every test here is marked ``servers``; the server fixtures are here.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscope.rules import config_for
from mlscope.stack import promconfig, servers
from support.helpers import FAST_RULES, require_binary
from support.prometheus import PrometheusHarness

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).is_relative_to(HERE):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusHarness]:
    """One Prometheus for the session, on the fast rule profile, scraping what tests register."""
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
