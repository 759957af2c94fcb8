"""Series budgets computed from the catalog equal what real monitors expose and what Prometheus stores."""
from __future__ import annotations

import math

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conftest import Exporter, PrometheusHarness
from helpers import exposition
from mlscope import ModelMonitor
from mlscope.stack import scaling
from mlscope.catalog.serving import VALUE_BUCKETS
from mlscope.labels import DEFAULT_CAPS


def exposed(registry: CollectorRegistry, model: str, *, created: bool = True) -> int:
    return sum(1 for family in text_string_to_metric_families(exposition(registry)) for s in family.samples
               if s.labels.get("model") == model and (created or not s.name.endswith("_created")))


def classifier(registry: CollectorRegistry, model: str = "cls") -> ModelMonitor:
    monitor = ModelMonitor(model, "1.0.0", registry=registry)
    for cls in (0, 1, 1):
        monitor.record_prediction(0.01, output=cls, score=0.7)
    monitor.record_error(ValueError("x"))
    monitor.record_error(KeyError("y"))
    monitor.record_prediction(float("nan"))  # one invalid-input reason
    return monitor


def test_computed_series_equal_real_expositions() -> None:
    registry = CollectorRegistry()
    classifier(registry)
    typical = scaling.Workload("classification", {"class": 2, "error_type": 2, "reason": 1})
    assert exposed(registry, "cls") == sum(scaling.series_per_model_version(typical).values())
    assert exposed(registry, "cls", created=False) == sum(scaling.series_per_model_version(typical, created=False)
                                                          .values())
    regressor = ModelMonitor("reg", "2.0.0", task="regression", registry=registry)
    regressor.record_batch([1.0, 2.5, -3.0], latency_seconds=0.2)
    regressor.record_error(TimeoutError())
    counts = scaling.series_per_model_version(scaling.Workload("regression", {"error_type": 1}))
    assert exposed(registry, "reg") == sum(counts.values())
    assert counts["mlscope_prediction_score"] == 0 and counts["mlscope_prediction_value"] == len(VALUE_BUCKETS) + 3  # +Inf, _count, _created; no _sum (negative buckets)


def test_worst_case_uses_the_label_caps_and_scales_linearly() -> None:
    worst = scaling.series_per_model_version(scaling.WORST)
    assert worst["mlscope_predicted_class_total"] == DEFAULT_CAPS["class"] * 2
    assert worst["mlscope_prediction_errors_total"] == DEFAULT_CAPS["error_type"] * 2
    one, many = scaling.budget(1), scaling.budget(1000)
    assert many.scraped == 1000 * one.scraped and many.recorded == one.recorded
    assert math.isclose(many.samples_per_second, many.scraped / 15)


def test_recorded_series_per_version_match_prometheus(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    classifier(exporter.registry, model="budget")
    prometheus.scrape("scaling", exporter.target)
    typical = scaling.Workload("classification", {"class": 2, "error_type": 2, "reason": 1})
    stored = prometheus.api.wait_for('count({__name__=~"mlscope_.+", model="budget"})', timeout=30)
    assert int(stored[0]["value"][1]) == sum(scaling.series_per_model_version(typical).values())
    recorded = prometheus.api.wait_for(
        'count({__name__=~".+:mlscope_.+", model="budget"})',
        lambda r: r and int(r[0]["value"][1]) == scaling.recorded_per_model_version("fast"), timeout=30)
    assert recorded
