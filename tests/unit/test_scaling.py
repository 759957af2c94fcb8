"""Series budgets computed from the catalog equal what real monitors expose and what Prometheus stores."""
from __future__ import annotations

import math

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlscope import ModelMonitor
from mlscope.catalog.serving import VALUE_BUCKETS
from mlscope.labels import DEFAULT_CAPS
from mlscope.stack import scaling
from support import ROOT
from support.helpers import exposition
from support.scaling import classifier


def exposed(registry: CollectorRegistry, model: str, *, created: bool = True) -> int:
    return sum(1 for family in text_string_to_metric_families(exposition(registry)) for s in family.samples
               if s.labels.get("model") == model and (created or not s.name.endswith("_created")))


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


def test_readme_table_is_the_computed_one() -> None:
    assert scaling.markdown_table() in (ROOT / "README.md").read_text()
