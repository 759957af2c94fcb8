"""A `mlscope up` child process for the native-stack tests: start it, read its alerts, stop it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mlscope.stack.native import Ports
from mlscope.stack.servers import PrometheusAPI, ServerError, free_port

from .helpers import wait_until

DEMO_JOBS = frozenset({"prometheus", "alertmanager", "pushgateway", "mlscope-alert-receiver",
                       "mlscope-quality-exporter", "mlscope-resource-exporter", "mlscope-demo"})


@dataclass
class Up:
    process: subprocess.Popen[str]
    ports: Ports
    state: Path

    @property
    def api(self) -> PrometheusAPI:
        return PrometheusAPI(f"http://127.0.0.1:{self.ports.prometheus}")

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        path = self.state / "alerts.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [r for r in map(json.loads, lines) if r["alertname"] == alertname and r["status"] == status]

    def up_jobs(self) -> set[str]:
        try:
            return {t["labels"]["job"] for t in self.api.targets() if t["health"] == "up"}
        except (requests.RequestException, ServerError):
            return set()

    def down(self) -> str:
        result = subprocess.run([sys.executable, "-m", "mlscope.cli", "down", "--state-dir", str(self.state)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "stopped" in result.stdout, result.stdout + result.stderr
        assert self.process.wait(30) == 0
        return self.process.stdout.read() if self.process.stdout else ""


def free_ports() -> Ports:
    return Ports(**{name: free_port() for name in vars(Ports())})


def start_up(tmp_path: Path, ports: Ports, *args: str, demo: bool = True, jobs: Collection[str] = DEMO_JOBS,
             env: Mapping[str, str] | None = None, timeout: float = 120) -> Up:
    """``mlscope up [--demo] ARGS`` in ``tmp_path``, with state in ``tmp_path/state``; returns once Prometheus
    scrapes every job of ``jobs``."""
    port_args: Sequence[str] = [a for name, port in vars(ports).items()
                                for a in (f"--{name.replace('_', '-')}-port", str(port))]
    argv = [sys.executable, "-m", "mlscope.cli", "up", "--state-dir", "state", *(["--demo"] if demo else []),
            *args, *port_args]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    up = Up(process, ports, tmp_path / "state")
    wait_until(lambda: up.up_jobs() >= set(jobs), timeout=timeout)
    return up
