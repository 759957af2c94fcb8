"""Small helpers shared by the tests (light core only: prometheus-client and the standard library)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from . import ROOT

FAST_RULES = sorted((ROOT / "alerting" / "rules" / "fast").glob("*.yml"))


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


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on a text-format (0.0.4) exposition."""
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)


def series(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry, parsed back from its exposition: (name, labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(exposition(registry)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # Generous: the unit tests of every rule file take ~30 s of one core on a loaded 2-core machine.
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=240)


def require_binary(*names: str) -> str:
    """The first binary found, else skip (or fail when MLSCOPE_REQUIRE_SERVERS=1, as in CI)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    from mlscope.stack.servers import INSTALL_HINT

    message = f"none of {names} on PATH: {INSTALL_HINT}"
    if os.environ.get("MLSCOPE_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def post_status(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> int:
    """POST ``body`` to ``url``; the HTTP status, error statuses included."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.2, message=None):
    """Poll ``predicate()`` until it returns a truthy value; return it or fail the test (``message()``: what the
    failure adds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s" + (f": {message()}" if message else ""))


MLSCOPE = [sys.executable, "-m", "mlscope.cli"]
