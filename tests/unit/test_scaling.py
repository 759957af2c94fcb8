"""Series budgets computed from the catalog against series counted in real expositions of driven monitors.

Every expected number here is counted, not computed: a monitor is driven to the label values the workload
describes and its exposition is parsed back (tests/e2e/test_scaling.py counts them in a real Prometheus).
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.stack import scaling
from support.scaling import classifier, exposed_by_family, past_the_caps


def computed(workload: scaling.Workload, *, created: bool = True) -> dict[str, int]:
    return {k: v for k, v in scaling.series_per_model_version(workload, created=created).items() if v}


def test_computed_series_equal_real_expositions_family_by_family() -> None:
    registry = CollectorRegistry()
    classifier(registry)
    typical = scaling.Workload("classification", {"class": 2, "error_type": 2, "reason": 1})
    assert exposed_by_family(registry, "cls") == computed(typical)
    assert exposed_by_family(registry, "cls", created=False) == computed(typical, created=False)
    regressor = ModelMonitor("reg", "2.0.0", task="regression", registry=registry)
    regressor.record_batch([1.0, 2.5, -3.0], latency_seconds=0.2)
    regressor.record_error(TimeoutError())
    exposed = exposed_by_family(registry, "reg")
    assert exposed == computed(scaling.Workload("regression", {"error_type": 1}))
    assert "mlscope_prediction_score" not in exposed  # a regressor binds no score histogram


def test_versions_and_replicas_scale_as_the_counted_series() -> None:
    one, three = CollectorRegistry(), CollectorRegistry()
    classifier(one, model="m")
    for version in ("1", "2", "3"):
        classifier(three, model="m", version=version)
    per_version = sum(exposed_by_family(one, "m").values())
    assert sum(exposed_by_family(three, "m").values()) == 3 * per_version
    assert scaling.budget(1, versions=3).scraped == 3 * per_version + scaling.PER_TARGET
    assert scaling.budget(1000).scraped == 1000 * scaling.budget(1).scraped  # replicas share nothing


def test_worst_case_is_what_a_monitor_driven_past_the_caps_exposes() -> None:
    registry = CollectorRegistry()
    past_the_caps(registry)
    exposed, worst = exposed_by_family(registry, "worst"), computed(scaling.WORST)
    for family in ("mlscope_predicted_class_total", "mlscope_prediction_errors_total"):
        assert exposed[family] == worst[family], family


def test_worst_case_bounds_every_family_a_monitor_driven_past_the_caps_exposes() -> None:
    registry = CollectorRegistry()
    past_the_caps(registry)
    exposed, worst = exposed_by_family(registry, "worst"), computed(scaling.WORST)
    reasons = "mlscope_invalid_inputs_total"
    # The reason count is a bound, not a label cap: a classifier's own reasons, each met once, stay within it.
    assert 2 * 9 == exposed[reasons] <= worst[reasons]
    capped = {"mlscope_predicted_class_total", "mlscope_prediction_errors_total", reasons}
    for family, count in exposed.items():
        if family not in capped:
            assert count == worst[family], family
