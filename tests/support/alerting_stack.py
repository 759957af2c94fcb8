"""A real Prometheus + Alertmanager + webhook receiver on 127.0.0.1 with the project's rules and routing."""
from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from mlscope import ModelMonitor
from mlscope.rules import Profile, RuleConfig, config_for
from mlscope.rules.config import Links
from mlscope.rules.generate import FILES
from mlscope.stack import promconfig, servers
from mlscope.stack.alertreceiver import AlertReceiver, get, reply
from mlscope.stack.amconfig import write_alertmanager_config

from . import ROOT

FAST = config_for("fast").profile
# The fast profile with a 20 s alert window instead of 1 m: an error spike that clears leaves the window (and
# its alert resolves) three times sooner. Only the tests that wait for a window to drain use it; the committed
# fast rules stay what the other tests and `mlscope up` run.
SHORT = replace(FAST, name="short", traffic_windows=("20s", FAST.traffic_windows[0]))


def write_rules(folder: Path, profile: Profile, links: Links | None = None) -> list[Path]:
    """Every rule file of ``profile`` (built by the project's own generators) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = RuleConfig(profile=profile, links=links or Links())
    written = []
    for name, build in FILES.items():
        path = folder / name
        path.write_text(yaml.safe_dump({"groups": build(cfg)}, sort_keys=False, width=10**6))
        written.append(path)
    return written


@dataclass
class Notification:
    received_at: float
    status_code: int
    payload: dict[str, Any]


@dataclass
class TestReceiver:
    """The real AlertReceiver behind a switch: answer normally, or fail with ``fail_with`` (500, 400).
    GETs (runbooks, alert pages, the record) are the receiver's own."""

    __test__ = False  # not a test class, whatever its name

    receiver: AlertReceiver = field(default_factory=AlertReceiver)
    fail_with: int | None = None
    notifications: list[Notification] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = servers.free_port()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, message = (outer.fail_with, "injected") if outer.fail_with else outer.receiver.handle(body)
                outer.notifications.append(Notification(time.time(), status, json.loads(body)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(message.encode())

            def do_GET(self) -> None:
                reply(self, *get(outer.receiver, self.path))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self, alertname: str, status: str | None = None, delivered: bool = True) -> list[tuple[float, dict]]:
        """(time received, alert) for every alert of ``alertname`` in delivered (2xx) notifications."""
        return [(n.received_at, a) for n in self.notifications
                if (n.status_code < 300) == delivered
                for a in n.payload["alerts"]
                if a["labels"]["alertname"] == alertname and (status is None or a["status"] == status)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ErrorSpike:
    """Background traffic (50 req/s) whose share of failing requests can be changed."""

    def __init__(self, monitor: ModelMonitor, error_share: float = 0.0) -> None:
        self.monitor, self.error_share = monitor, error_share
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.02):
            n += 1
            if (n % 100) < self.error_share * 100:
                self.monitor.record_error(RuntimeError("injected"), latency_seconds=0.01)
            else:
                self.monitor.record_prediction(0.01, output="ok")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# Gossip timings of a clustered test pair: the second replica waits `peer_timeout` for the first one's
# notification log entry before notifying itself (gossip arrives within a few hundred milliseconds).
FAST_CLUSTER = {"peer_timeout": "2s", "settle_timeout": "2s"}


@dataclass
class AlertingStack:
    """Prometheus with the fast rules, ``replicas`` Alertmanagers (gossip-clustered unless ``clustered``
    is False) that Prometheus all sends to, and one test webhook receiver."""

    tmp: Path
    targets: list[str]
    receiver: TestReceiver = field(default_factory=TestReceiver)
    scrape_self: bool = False  # also scrape Prometheus's own /metrics (job "prometheus")
    replicas: int = 1
    clustered: bool = True
    profile: Profile = FAST  # FAST: the committed alerting/rules/fast files; any other: generated here
    links: Links | None = None  # of generated rules (another profile than FAST)
    jobs: list[dict[str, Any]] = field(default_factory=list)  # more scrape jobs (a Pushgateway's)

    def _start_alertmanagers(self, config: Path) -> list[servers.Server]:
        gossip = [servers.free_port() for _ in range(self.replicas)]
        started = []
        for i, port in enumerate(gossip):
            cluster = None
            if self.replicas > 1 and self.clustered:
                cluster = servers.Cluster(port, tuple(p for p in gossip if p != port), **FAST_CLUSTER)
            started.append(servers.alertmanager(config, self.tmp / f"am{i}", cluster=cluster).start())
        return started

    def start(self) -> AlertingStack:
        rules_dir = self.tmp / "rules"
        if self.profile == FAST:
            shutil.copytree(ROOT / "alerting" / "rules" / "fast", rules_dir)
        else:
            write_rules(rules_dir, self.profile, self.links)
        am_config = write_alertmanager_config(self.tmp / "alertmanager.yml", ROOT / "alerting" / "alertmanager.yml",
                                              self.receiver.url, fast=True)
        self.alertmanagers = self._start_alertmanagers(am_config)
        self.alertmanager = self.alertmanagers[0]
        profile = self.profile
        am_targets = [f"127.0.0.1:{am.port}" for am in self.alertmanagers]
        jobs = [promconfig.scrape_job("model-service", targets=self.targets),
                promconfig.scrape_job("alertmanager", targets=am_targets), *self.jobs]
        port = servers.free_port()
        if self.scrape_self:
            jobs.append(promconfig.scrape_job("prometheus", targets=[f"127.0.0.1:{port}"]))
        config = promconfig.prometheus_config(profile, jobs, sorted(rules_dir.glob("*.yml")), alertmanagers=am_targets)
        self.prometheus = servers.prometheus(promconfig.write_config(self.tmp / "prometheus.yml", config),
                                             self.tmp / "prom", port, lifecycle=True,
                                             alert_resend_delay=profile.alert_resend_delay).start()
        self.api = servers.PrometheusAPI(self.prometheus.url)
        return self

    @property
    def rules_dir(self) -> Path:
        return self.tmp / "rules"

    def stop(self) -> None:
        for server in (getattr(self, "prometheus", None), *getattr(self, "alertmanagers", [])):
            if server is not None:
                server.stop()
        self.receiver.stop()
