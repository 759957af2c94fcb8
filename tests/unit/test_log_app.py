"""One source for the Loki ``app`` stream label: ``mlscope.catalog.logs.LOG_APP``.

The Python side reads the constant; the Grafana datasources file (static YAML
provisioned as is) is checked against it here.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mlscope.catalog.logs import LOG_APP
from mlscope.logs import LokiHandler
from mlscope.rules.config import Links

DATASOURCES = Path(__file__).resolve().parents[2] / "provisioning" / "grafana" / "datasources"
APP_SELECTOR = re.compile(r"\{\s*app\s*=\s*\"([^\"]*)\"")


def test_the_constant_is_the_one_the_stack_has_always_used() -> None:
    assert LOG_APP == "mlscope"  # changing it orphans every line already stored in Loki


def test_python_defaults_read_the_constant() -> None:
    assert inspect.signature(LokiHandler).parameters["app"].default == LOG_APP
    assert Links().log_app == LOG_APP


def test_dashboards_select_the_constant() -> None:
    pytest.importorskip("grafanalib")
    from mlscope.dashboards import style

    assert style.LOG_APP == LOG_APP


def test_grafana_datasources_select_the_constant() -> None:
    files = sorted(DATASOURCES.glob("*.y*ml"))
    assert files, f"no datasources files in {DATASOURCES}"
    found = {(f.name, app) for f in files for app in APP_SELECTOR.findall(f.read_text())}
    assert len(found) >= 1 and {app for _, app in found} == {LOG_APP}, found
