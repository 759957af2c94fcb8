"""A real Prometheus scrapes a real monitor; values read back through its HTTP API match what was recorded."""
from __future__ import annotations

import time

import numpy as np
import pytest

from mlscope import ModelMonitor
from support.helpers import Exporter, wait_until
from support.prometheus import PrometheusHarness


def scalar(prometheus: PrometheusHarness, expr: str) -> float | None:
    result = prometheus.api.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_recorded_values_read_back_through_prometheus(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    monitor = ModelMonitor("e2e-values", "1.0.0", registry=exporter.registry)
    rng = np.random.default_rng(7)
    latencies = rng.uniform(0.001, 0.2, 200)
    classes = rng.integers(0, 3, 200)
    for latency, cls in zip(latencies, classes, strict=True):
        monitor.record_prediction(float(latency), output=int(cls), score=0.5)
    for _ in range(7):
        monitor.record_error(TimeoutError())
    prometheus.scrape("e2e-values", exporter.target)
    sel = '{model="e2e-values",model_version="1.0.0"}'
    wait_until(lambda: scalar(prometheus, f"mlscope_predictions_total{sel}") == 207)
    assert scalar(prometheus, f"mlscope_prediction_latency_seconds_count{sel}") == 200
    assert scalar(prometheus, f"mlscope_prediction_latency_seconds_sum{sel}") == pytest.approx(latencies.sum())
    assert scalar(prometheus, 'mlscope_prediction_latency_seconds_bucket{model="e2e-values",le="0.1"}') \
        == (latencies <= 0.1).sum()
    for cls in range(3):
        assert scalar(prometheus, f'mlscope_predicted_class_total{{model="e2e-values",class="{cls}"}}') \
            == (classes == cls).sum()
    assert scalar(prometheus, 'mlscope_prediction_errors_total{model="e2e-values",error_type="TimeoutError"}') == 7
    assert scalar(prometheus, 'mlscope_model_info{model="e2e-values"}') == 1


def test_exemplar_carries_the_request_id(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    monitor = ModelMonitor("e2e-exemplars", "1", registry=exporter.registry)
    start = time.time() - 1
    prometheus.scrape("e2e-exemplars", exporter.target)
    monitor.record_prediction(0.042, request_id="req-4711-abc")

    def found() -> list:
        data = prometheus.api.exemplars('mlscope_prediction_latency_seconds_bucket{model="e2e-exemplars"}',
                                        start, time.time() + 1)
        return [e for series in data for e in series["exemplars"]
                if e["labels"].get("request_id") == "req-4711-abc"]

    exemplar = wait_until(found)[0]
    assert float(exemplar["value"]) == pytest.approx(0.042)
    # Never a label: no series of the model carries a request id.
    labels = prometheus.api.query('{__name__=~"mlscope_.+",model="e2e-exemplars"}')
    assert labels and all("request_id" not in s["metric"] for s in labels)


def test_recording_rules_compute_rate_and_error_ratio(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    monitor = ModelMonitor("e2e-rules", "2", registry=exporter.registry)
    prometheus.scrape("e2e-rules", exporter.target)
    deadline = time.monotonic() + 12
    sent = 0
    while time.monotonic() < deadline:
        for _ in range(9):
            monitor.record_prediction(0.01, output="a")
        monitor.record_error(ValueError())
        sent += 10
        time.sleep(0.05)
    ratio = wait_until(lambda: scalar(
        prometheus, 'model_version:mlscope_prediction_errors:ratio_rate{model="e2e-rules",window="1m"}'))
    assert ratio == pytest.approx(0.1, abs=0.02)
    rate = scalar(prometheus, 'model_version:mlscope_predictions:rate{model="e2e-rules",window="1m"}')
    assert rate is not None and rate > 0
    p50 = scalar(prometheus, 'model_version:mlscope_prediction_latency_seconds:p50{model="e2e-rules",window="1m"}')
    assert p50 is not None and 0.005 < p50 <= 0.01  # every latency was 0.01, in the (0.005, 0.01] bucket
    groups = {g["name"]: g for g in prometheus.api.rules()}
    assert groups["mlscope-serving-recording"]["rules"][0]["health"] == "ok"
