"""Run the stack natively (no container engine): Prometheus, Alertmanager and mlscope's exporters.

``mlscope up`` writes its runtime configuration into a state directory, starts
what it finds, prints the URLs and stops everything on Ctrl-C or
``mlscope down``. Prometheus data persists in the state directory.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import promconfig, servers
from .exposition import start_metrics_server
from .monitor import ModelMonitor
from .rules import config_for, render
from .workload import SyntheticService, Traffic, train

PID_FILE = "mlscope.pid"


@dataclass
class NativeStack:
    state_dir: Path
    demo: bool = True
    profile: str = "fast"
    prometheus_port: int = 9090
    demo_port: int = 8000
    rate: float = 20.0
    _servers: list[servers.Server] = field(default_factory=list)
    _traffic: Traffic | None = None
    _http: Any = None

    def _say(self, message: str) -> None:
        print(f"mlscope: {message}", flush=True)

    def _write_rules(self) -> list[Path]:
        rules_dir = self.state_dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in render(self.profile).items():
            (rules_dir / name).write_text(text)
            paths.append(rules_dir / name)
        return paths

    def _start_demo(self) -> str:
        self._say("training the demo model (scikit-learn breast_cancer, bundled)...")
        trained = train("breast_cancer")
        monitor = ModelMonitor("demo-classifier", "1.0.0", training_data_fingerprint="breast_cancer-seed0",
                               metadata={"dataset": "breast_cancer", "owner": "demo"})
        self._traffic = Traffic(SyntheticService(trained, monitor), rate=self.rate).start()
        self._http = start_metrics_server(self.demo_port)
        return f"127.0.0.1:{self.demo_port}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        binary = servers.find_binary(servers.PROMETHEUS_BINARIES)
        profile = config_for(self.profile).profile
        jobs = [promconfig.scrape_job("prometheus", targets=[f"127.0.0.1:{self.prometheus_port}"])]
        if self.demo:
            jobs.append(promconfig.scrape_job("mlscope-demo", targets=[self._start_demo()]))
        config = promconfig.write_config(self.state_dir / "prometheus.yml",
                                         promconfig.prometheus_config(profile, jobs, self._write_rules()))
        self._say(f"starting Prometheus ({binary}) with {config}...")
        prometheus = servers.prometheus(config, self.state_dir / "prometheus", self.prometheus_port)
        self._servers.append(prometheus.start())
        (self.state_dir / PID_FILE).write_text(str(os.getpid()))
        self._say(f"Prometheus   {prometheus.url}")
        if self.demo:
            self._say(f"demo metrics http://127.0.0.1:{self.demo_port}/metrics")
        self._say("running; Ctrl-C or `mlscope down` stops everything")

    def stop(self) -> None:
        if self._traffic is not None:
            self._traffic.stop()
        for server in reversed(self._servers):
            server.stop()
        if self._http is not None:
            self._http[0].shutdown()
        (self.state_dir / PID_FILE).unlink(missing_ok=True)
        self._say("stopped")

    def run_forever(self) -> None:
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        try:
            self.start()
            while not stopping.wait(1.0):
                for server in self._servers:
                    if server.process is not None and server.process.poll() is not None:
                        self._say(f"{server.name} exited: {server.log_tail()}")
                        stopping.set()
        finally:
            self.stop()


def down(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a running ``mlscope up`` of ``state_dir``; False when none is running."""
    pid_file = state_dir / PID_FILE
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_file.exists():  # removed by the stack once everything has stopped
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    print(f"mlscope: process {pid} did not stop within {timeout:.0f}s", file=sys.stderr)
    return False
