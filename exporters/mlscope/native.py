"""Run the stack natively (no container engine): Prometheus, Alertmanager and mlscope's exporters.

``mlscope up`` writes its runtime configuration into a state directory (only
scrape jobs for what actually runs), starts what it finds, prints the URLs and
stops everything on Ctrl-C or ``mlscope down``. Prometheus data and
Alertmanager silences persist in the state directory.
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
from .alertreceiver import AlertReceiver, make_server
from .amconfig import write_alertmanager_config
from .assets import asset
from .exposition import start_metrics_server
from .monitor import ModelMonitor
from .resources import FakeNVML, ResourceMonitor, start_resource_monitor
from .rules import config_for, render
from .workload import SyntheticService, Traffic, train

PID_FILE = "mlscope.pid"


@dataclass
class Ports:
    prometheus: int = 9090
    alertmanager: int = 9093
    alert_receiver: int = 9095
    demo: int = 8000


@dataclass
class NativeStack:
    state_dir: Path
    demo: bool = True
    profile: str = "fast"
    ports: Ports = field(default_factory=Ports)
    rate: float = 20.0
    _servers: list[servers.Server] = field(default_factory=list)
    _traffic: Traffic | None = None
    _http: list[Any] = field(default_factory=list)
    # The demo's resource metrics: this host, this process and simulated GPUs (simulated="true").
    simulated_gpus: int = 2
    _resources: ResourceMonitor | None = None

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

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

    def _check_ports(self) -> None:
        wanted = {"prometheus": self.ports.prometheus, "alertmanager": self.ports.alertmanager,
                  "alert receiver": self.ports.alert_receiver}
        if self.demo:
            wanted["demo model"] = self.ports.demo
        for name, port in wanted.items():
            if servers.port_in_use(port):
                raise servers.ServerError(f"port 127.0.0.1:{port} ({name}) is already in use; "
                                          f"stop what uses it or choose another port (see `mlscope up --help`)")

    def _start_alert_receiver(self) -> str:
        out = (self.state_dir / "alerts.jsonl").open("a")
        server = make_server(AlertReceiver(output=out), self.ports.alert_receiver)
        threading.Thread(target=server.serve_forever, name="mlscope-alert-receiver", daemon=True).start()
        self._http.append(server)
        return f"127.0.0.1:{self.ports.alert_receiver}"

    def _start_alertmanager(self, receiver: str) -> str | None:
        try:
            servers.find_binary(servers.ALERTMANAGER_BINARIES)
        except servers.ServerError as exc:
            self._say(f"Alertmanager not started: {exc}")
            return None
        config = write_alertmanager_config(self.state_dir / "alertmanager.yml", asset("alerting/alertmanager.yml"),
                                           f"http://{receiver}/alerts", fast=self.profile == "fast")
        self._say("starting Alertmanager...")
        server = servers.alertmanager(config, self.state_dir / "alertmanager", self.ports.alertmanager)
        self._servers.append(server.start())
        return f"127.0.0.1:{self.ports.alertmanager}"

    def _start_demo(self) -> str:
        self._say("training the demo model (scikit-learn breast_cancer, bundled)...")
        trained = train("breast_cancer")
        monitor = ModelMonitor("demo-classifier", "1.0.0", training_data_fingerprint="breast_cancer-seed0",
                               metadata={"dataset": "breast_cancer", "owner": "demo"})
        self._traffic = Traffic(SyntheticService(trained, monitor), rate=self.rate).start()
        self._resources = start_resource_monitor(nvml=FakeNVML.demo(self.simulated_gpus, pids=(os.getpid(),)))
        server, _ = start_metrics_server(self.ports.demo)
        self._http.append(server)
        return f"127.0.0.1:{self.ports.demo}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        servers.find_binary(servers.PROMETHEUS_BINARIES)  # fail before starting anything
        self._check_ports()
        profile = config_for(self.profile).profile
        jobs = [promconfig.scrape_job("prometheus", targets=[f"127.0.0.1:{self.ports.prometheus}"])]
        receiver = self._start_alert_receiver()
        jobs.append(promconfig.scrape_job("mlscope-alert-receiver", targets=[receiver]))
        alertmanager = self._start_alertmanager(receiver)
        if alertmanager:
            jobs.append(promconfig.scrape_job("alertmanager", targets=[alertmanager]))
        if self.demo:
            jobs.append(promconfig.scrape_job("mlscope-demo", targets=[self._start_demo()]))
        config = promconfig.write_config(self.state_dir / "prometheus.yml", promconfig.prometheus_config(
            profile, jobs, self._write_rules(), alertmanagers=[alertmanager] if alertmanager else []))
        self._say("starting Prometheus...")
        prometheus = servers.prometheus(config, self.state_dir / "prometheus", self.ports.prometheus,
                                        lifecycle=True, alert_resend_delay=profile.alert_resend_delay)
        self._servers.append(prometheus.start())
        (self.state_dir / PID_FILE).write_text(str(os.getpid()))
        self._say(f"Prometheus      {prometheus.url}")
        if alertmanager:
            self._say(f"Alertmanager    http://{alertmanager}")
        self._say(f"alert receiver  http://{receiver}/alerts (notifications in {self.state_dir / 'alerts.jsonl'})")
        if self.demo:
            self._say(f"demo metrics    http://127.0.0.1:{self.ports.demo}/metrics")
        self._say("Grafana and Loki are not started natively yet: use `docker compose up -d` for them")
        self._say("running; Ctrl-C or `mlscope down` stops everything")

    def stop(self) -> None:
        if self._traffic is not None:
            self._traffic.stop()
        if self._resources is not None:
            self._resources.stop()
        for server in reversed(self._servers):
            server.stop()
        for http in self._http:
            http.shutdown()
            http.server_close()
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
    pid_file = Path(state_dir).resolve() / PID_FILE
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
