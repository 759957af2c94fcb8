"""The soak: the demo with incidents off and a second service of another model, on a real Prometheus and
Alertmanager with the fast rules; whatever fires besides the Watchdog during normal traffic is a false alarm.

Used by the in-suite soak (tests/e2e/test_soak.py) and the 30-minute one (benchmarks/suite_soak.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.demo.service import DemoService, serve
from mlscope.demo.workload import SyntheticService, Traffic, train
from mlscope.exposition import start_metrics_server
from mlscope.stack import servers

from .alerting_stack import FAST, AlertingStack

WATCHDOG = "MLScopeWatchdog"


@dataclass
class Soak:
    """``mlscope demo --no-schedule`` and ``mlscope workload --dataset wine`` (another model, 3 classes), then
    the stack: the services run before Prometheus's first scrape, as after ``mlscope up``."""

    tmp: Path
    wine_rate: float = 10.0
    started_at: float = 0.0
    _closers: list[Any] = field(default_factory=list)

    def start(self) -> Soak:
        self.demo = DemoService(state_dir=self.tmp / "demo", profile="fast", schedule=False).start()
        self._closers.append(self.demo.stop)
        demo_port = servers.free_port()
        demo_http = serve(self.demo, demo_port)
        self._closers.append(demo_http.shutdown)
        wine_port = servers.free_port()
        registry = CollectorRegistry()
        trained = train("wine")
        monitor = ModelMonitor("wine-classifier", "1.0.0", task=trained.task, registry=registry)
        wine_http, _ = start_metrics_server(wine_port, registry=registry)
        self._closers.append(wine_http.shutdown)
        traffic = Traffic(SyntheticService(trained, monitor), rate=self.wine_rate).start()
        self._closers.append(traffic.stop)
        self.stack = AlertingStack(self.tmp / "stack", [f"127.0.0.1:{demo_port}", f"127.0.0.1:{wine_port}"],
                                   profile=FAST).start()
        self._closers.append(self.stack.stop)
        self.started_at = time.time()
        return self

    def firing(self) -> list[dict[str, str]]:
        """Label sets of every alert besides the Watchdog that was firing at any evaluation since the start."""
        seconds = max(1, round(time.time() - self.started_at) + 5)
        expr = f'max_over_time(ALERTS{{alertstate="firing",alertname!="{WATCHDOG}"}}[{seconds}s])'
        return [r["metric"] for r in self.stack.api.query(expr)]

    def notified(self) -> list[dict[str, Any]]:
        """Alerts besides the Watchdog that reached the alert receiver (firing or resolved)."""
        return [a for n in self.stack.receiver.notifications for a in n.payload["alerts"]
                if a["labels"]["alertname"] != WATCHDOG]

    def watchdog_arrived(self) -> bool:
        return bool(self.stack.receiver.alerts(WATCHDOG, "firing"))

    def stop(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def describe(alerts: list[dict[str, Any]]) -> str:
    """One line per alert: its name and the labels that say where."""
    keys = ("alertname", "model", "model_version", "feature", "issue", "window", "job", "instance")
    return "; ".join(", ".join(f"{k}={a[k]}" for k in keys if k in a) for a in alerts) or "none"
