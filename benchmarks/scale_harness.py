"""The `scale` benchmark suite: scrape cost of one replica, and a real Prometheus facing N simulated replicas.

N replicas are simulated by one HTTP target serving N copies of one real replica's exposition, each copy with its
own `replica` label (what distinct `instance` labels would be). Rule evaluation and head series then match N real
targets; the scrape cost is one big scrape instead of N small ones (said in the README).
"""
from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from mlscope import ModelMonitor
from mlscope.rules import generate
from mlscope.rules.config import FAST, RuleConfig
from mlscope.stack import promconfig, scaling, servers

INTERVAL = "2s"


def one_replica() -> CollectorRegistry:
    """A classifier replica with the README's typical workload (2 classes, 2 error types, 1 invalid reason)."""
    registry = CollectorRegistry()
    monitor = ModelMonitor("bench", "1.0.0", registry=registry)
    for cls in (0, 1):
        monitor.record_prediction(0.01, output=cls, score=0.7)
    monitor.record_error(ValueError())
    monitor.record_error(KeyError())
    monitor.record_prediction(float("nan"))
    return registry


def replicated(registry: CollectorRegistry, replicas: int) -> bytes:
    """The text exposition of ``replicas`` copies, labelled replica="0".."N-1"."""
    lines = []
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        lines.append(f"# TYPE {family.name} {family.type if family.type != 'unknown' else 'untyped'}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            value = floatToGoString(sample.value)
            lines += [f'{sample.name}{{replica="{i}",{labels}}} {value}' for i in range(replicas)]
    return ("\n".join(lines) + "\n").encode()


def serve(body: bytes | Callable[[], bytes]) -> ThreadingHTTPServer:
    """A target answering ``body`` (or what ``body()`` returns at each scrape: counters that grow)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body() if callable(body) else body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", servers.free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(replicas: int, registry: CollectorRegistry) -> dict[str, float]:
    """Start Prometheus against ``replicas`` simulated replicas; read its own figures after a few evaluations."""
    profile = dataclasses.replace(FAST, scrape_interval=INTERVAL, evaluation_interval=INTERVAL)
    target = serve(replicated(registry, replicas))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rule_files = []
        for name, build in generate.FILES.items():
            path = tmp / name
            path.write_text(__import__("yaml").safe_dump({"groups": build(RuleConfig(profile=profile))}))
            rule_files.append(path)
        job = {"job_name": "replicas", "static_configs": [{"targets": [f"127.0.0.1:{target.server_address[1]}"]}]}
        config = promconfig.prometheus_config(profile, [job], rule_files)
        prom = servers.prometheus(promconfig.write_config(tmp / "prometheus.yml", config), tmp / "data",
                                  exemplars=False).start()
        api = servers.PrometheusAPI(prom.url)
        try:
            api.wait_for('count(model_version:mlscope_predictions:rate)', timeout=60, interval=0.5)
            time.sleep(4 * float(INTERVAL.rstrip("s")))

            own = {(s.name, s.labels.get("rule_group", "")): s.value for f in text_string_to_metric_families(
                __import__("requests").get(prom.url + "/metrics", timeout=10).text) for s in f.samples}
            rule_s = sum(v for (name, group), v in own.items() if name == "prometheus_rule_group_last_duration_seconds"
                         and group.endswith("mlscope-serving-recording"))
            return {
                "head_series": own[("prometheus_tsdb_head_series", "")],
                "rule_ms": 1000 * rule_s,
                "scrape_ms": 1000 * float(api.query('scrape_duration_seconds{job="replicas"}')[0]["value"][1]),
                "rss_mib": own[("process_resident_memory_bytes", "")] / 2**20,
            }
        finally:
            prom.stop()
            target.shutdown()
            target.server_close()


def expected_series(replicas: int) -> int:
    """Head series the computation predicts: the replicas' series, the target's, the recorded ones."""
    per_replica = sum(scaling.series_per_model_version(scaling.TYPICAL).values())
    return replicas * per_replica + scaling.PER_TARGET + scaling.recorded_per_model_version("fast")


def plain_gauges(registry: CollectorRegistry) -> CollectorRegistry:
    """Every sample of ``registry`` as an ordinary Gauge series, one Gauge per sample name (buckets included)."""
    from prometheus_client import Gauge

    samples = [s for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples]
    plain, gauges = CollectorRegistry(), {}
    for sample in samples:
        if sample.name not in gauges:
            names = sorted({k for s in samples if s.name == sample.name for k in s.labels})
            gauges[sample.name] = Gauge(sample.name.replace("mlscope_", "plain_"), "h", names, registry=plain)
        gauges[sample.name].labels(**sample.labels).set(sample.value)
    return plain
