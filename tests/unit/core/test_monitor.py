"""The in-process monitor against independent references (numpy, the recorded inputs)."""
from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import serving as cat
from mlscope.labels import OVERFLOW

L = {"model": "churn", "model_version": "3.2.0"}


@pytest.fixture
def monitor(registry: CollectorRegistry) -> ModelMonitor:
    return ModelMonitor("churn", "3.2.0", registry=registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**L, **labels})


def test_track_counts_latency_output_and_exemplar(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    outputs = [0, 1, 1, 2, 1]
    for i, out in enumerate(outputs):
        with monitor.track(request_id=f"req-{i}") as p:
            p.output = out
            p.score = 0.1 * (i + 1)
    assert value(registry, "mlscope_predictions_total") == 5
    assert value(registry, "mlscope_prediction_latency_seconds_count") == 5
    assert value(registry, "mlscope_predictions_in_flight") == 0
    for cls in set(outputs):
        assert value(registry, "mlscope_predicted_class_total", **{"class": str(cls)}) == outputs.count(cls)
    scores = np.array([0.1 * (i + 1) for i in range(5)])  # the exact floats recorded above
    assert value(registry, "mlscope_prediction_score_sum") == pytest.approx(scores.sum())
    for bound in cat.SCORE_BUCKETS:
        assert value(registry, "mlscope_prediction_score_bucket", le=str(bound)) == (scores <= bound).sum()
    # The last request id sits in an exemplar of the latency histogram, never in a label.
    from prometheus_client.openmetrics.exposition import generate_latest as om
    text = om(registry).decode()
    assert 'request_id="req-4"' in text
    assert "req-" not in "".join(line.split("#")[0] for line in text.splitlines())


def test_in_flight_while_serving(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    with monitor.track(), monitor.track():
        assert value(registry, "mlscope_predictions_in_flight") == 2
    assert value(registry, "mlscope_predictions_in_flight") == 0


def test_exception_recorded_and_reraised(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    with pytest.raises(KeyError), monitor.track():
        raise KeyError("boom")
    monitor.record_error(ValueError("bad"), latency_seconds=0.2)
    monitor.record_error("Timeout")
    assert value(registry, "mlscope_predictions_total") == 3
    assert value(registry, "mlscope_prediction_errors_total", error_type="KeyError") == 1
    assert value(registry, "mlscope_prediction_errors_total", error_type="ValueError") == 1
    assert value(registry, "mlscope_prediction_errors_total", error_type="Timeout") == 1
    assert value(registry, "mlscope_prediction_latency_seconds_count") == 2
    assert value(registry, "mlscope_predictions_in_flight") == 0


def test_decorator_sync_and_async(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    @monitor.instrument(output=lambda r: r["label"])
    def predict(x: int) -> dict:
        return {"label": "spam" if x else "ham"}

    @monitor.instrument
    async def apredict(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise ArithmeticError
        return x

    assert predict(1) == {"label": "spam"}
    predict(0)
    assert asyncio.run(apredict(3)) == 3
    with pytest.raises(ArithmeticError):
        asyncio.run(apredict(-1))
    assert predict.__name__ == "predict"
    assert value(registry, "mlscope_predictions_total") == 4
    assert value(registry, "mlscope_predicted_class_total", **{"class": "spam"}) == 1
    assert value(registry, "mlscope_predicted_class_total", **{"class": "ham"}) == 1
    assert value(registry, "mlscope_prediction_errors_total", error_type="ArithmeticError") == 1


def test_batch_equals_one_by_one_reference(registry: CollectorRegistry) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0, 300, 5000)
    batch = ModelMonitor("reg", "1", task="regression", registry=registry)
    batch.record_batch(values, latency_seconds=0.5)
    single_registry = CollectorRegistry()
    single = ModelMonitor("reg", "1", task="regression", registry=single_registry)
    for v in values:
        single.record_prediction(0.001, output=float(v))
    labels = {"model": "reg", "model_version": "1"}
    for bound in cat.VALUE_BUCKETS + (float("inf"),):
        le = "+Inf" if bound == float("inf") else str(bound)
        expected = int((values <= bound).sum())
        assert registry.get_sample_value("mlscope_prediction_value_bucket", {**labels, "le": le}) == expected
        assert single_registry.get_sample_value("mlscope_prediction_value_bucket", {**labels, "le": le}) == expected
    # With negative buckets OpenMetrics has no _sum (prometheus-client omits it); _count stays.
    assert registry.get_sample_value("mlscope_prediction_value_sum", labels) is None
    assert registry.get_sample_value("mlscope_prediction_value_count", labels) == 5000
    assert registry.get_sample_value("mlscope_predictions_total", labels) == 5000
    assert registry.get_sample_value("mlscope_batches_total", labels) == 1
    assert registry.get_sample_value("mlscope_batch_latency_seconds_sum", labels) == 0.5


def test_batch_classes_and_scores(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    rng = np.random.default_rng(2)
    classes = rng.integers(0, 3, 1000)
    scores = rng.random(1000)
    monitor.record_batch(classes, scores=scores, latency_seconds=0.01)
    for cls, count in zip(*np.unique(classes, return_counts=True), strict=True):
        assert value(registry, "mlscope_predicted_class_total", **{"class": str(cls)}) == count
    assert value(registry, "mlscope_prediction_score_count") == 1000
    assert value(registry, "mlscope_prediction_score_bucket", le="0.5") == (scores <= 0.5).sum()


def test_model_info_carries_fingerprint_and_metadata(registry: CollectorRegistry) -> None:
    ModelMonitor("churn", "3.2.0", registry=registry, training_data_fingerprint="sha256:ab12",
                 metadata={"team": "risk", "git-sha": "deadbeef", "2nd": "x"})
    assert registry.get_sample_value("mlscope_model_info", {
        **L, "training_data_fingerprint": "sha256:ab12", "team": "risk", "git_sha": "deadbeef", "_2nd": "x"}) == 1


def test_for_version_shares_registry(monitor: ModelMonitor, registry: CollectorRegistry) -> None:
    canary = monitor.for_version("3.3.0-rc1")
    canary.record_prediction(0.01, output=1)
    assert registry.get_sample_value("mlscope_predictions_total",
                                     {"model": "churn", "model_version": "3.3.0-rc1"}) == 1


def test_retire_removes_the_versions_series_and_names_it_retired(monitor: ModelMonitor,
                                                                   registry: CollectorRegistry) -> None:
    new = monitor.for_version("3.3.0")
    def fail(m: ModelMonitor) -> None:
        with m.track() as p:
            p.output = 1
            raise ValueError("bad row")

    for m in (monitor, new):
        with pytest.raises(ValueError, match="bad row"):
            fail(m)
        m.record_prediction(0.01, output=1)
    monitor.retire()
    old, kept = L, {"model": "churn", "model_version": "3.3.0"}
    for name in ("mlscope_predictions_total", "mlscope_prediction_latency_seconds_count",
                 "mlscope_predictions_in_flight"):
        assert registry.get_sample_value(name, old) is None, name
        assert registry.get_sample_value(name, kept) is not None, name
    assert registry.get_sample_value("mlscope_predicted_class_total", {**old, "class": "1"}) is None
    assert registry.get_sample_value("mlscope_prediction_errors_total", {**old, "error_type": "ValueError"}) is None
    assert registry.get_sample_value("mlscope_prediction_errors_total", {**kept, "error_type": "ValueError"}) == 1
    info = [s.labels["model_version"] for f in registry.collect() if f.name == "mlscope_model_info" for s in f.samples]
    assert info == ["3.3.0"]
    assert registry.get_sample_value("mlscope_model_retired_info", old) == 1
    assert registry.get_sample_value("mlscope_model_retired_info", kept) is None
    monitor.for_version("3.2.0")  # deployed again: serving, not retired
    assert registry.get_sample_value("mlscope_model_retired_info", old) is None


def test_label_cap_folds_into_overflow(registry: CollectorRegistry) -> None:
    monitor = ModelMonitor("m", "1", registry=registry, label_caps={"class": 3})
    for cls in range(10):
        monitor.record_prediction(0.001, output=f"c{cls}")
    got = {k: registry.get_sample_value("mlscope_predicted_class_total",
                                        {"model": "m", "model_version": "1", "class": k})
           for k in ("c0", "c1", "c2", "c3", OVERFLOW)}
    assert got == {"c0": 1, "c1": 1, "c2": 1, "c3": None, OVERFLOW: 7}
    assert registry.get_sample_value("mlscope_label_overflow_total", {"label": "class", "reason": "cap_reached"}) == 7


def test_unknown_versions_beyond_cap_fold(registry: CollectorRegistry) -> None:
    base = ModelMonitor("m", "v0", registry=registry, label_caps={"model_version": 2})
    extra = [base.for_version(f"v{i}") for i in range(1, 5)]
    assert base.model_version == "v0" and extra[0].model_version == "v1"
    assert {m.model_version for m in extra[1:]} == {OVERFLOW}
    extra[-1].record_prediction(0.01)
    assert registry.get_sample_value("mlscope_predictions_total", {"model": "m", "model_version": OVERFLOW}) == 1


def test_internal_error_is_caught_counted_and_logged_once(
        monitor: ModelMonitor, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def inc(self, *_: object) -> None:
            raise RuntimeError("metric backend broke")

    monitor._predictions = Broken()  # simulate a failure inside prometheus-client
    with caplog.at_level(logging.WARNING, logger="mlscope"):
        for _ in range(3):
            with monitor.track() as p:
                p.output = 1
            monitor.record_batch([1, 2])
    assert registry.get_sample_value("mlscope_monitor_errors_total",
                                     {"operation": "record_prediction", "exception": "RuntimeError"}) == 3
    assert registry.get_sample_value("mlscope_monitor_errors_total",
                                     {"operation": "record_batch", "exception": "RuntimeError"}) == 3
    warnings = [r for r in caplog.records if "metric backend broke" in r.getMessage()]
    assert len(warnings) == 2  # once per (operation, kind)


def test_constructor_rejects_bad_identity(registry: CollectorRegistry) -> None:
    for model, version in (("", "1"), ("m", "  "), ("m", None), ("x" * 500, "1")):
        with pytest.raises(ValueError, match="must be a non-empty string"):
            ModelMonitor(model, version, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task must be"):
        ModelMonitor("m", "1", task="ranking", registry=registry)  # type: ignore[arg-type]


def test_conflicting_buckets_in_one_registry_is_a_clear_error(registry: CollectorRegistry) -> None:
    ModelMonitor("a", "1", registry=registry, latency_buckets=(0.1, 1.0))
    ModelMonitor("b", "1", registry=registry, latency_buckets=(0.1, 1.0))
    with pytest.raises(ValueError, match="one bucket set"):
        ModelMonitor("c", "1", registry=registry, latency_buckets=(0.5,))


def test_default_registry_works() -> None:
    monitor = ModelMonitor("default-registry-model", "1")
    monitor.record_prediction(0.02, output="a")
    assert REGISTRY.get_sample_value("mlscope_predictions_total",
                                     {"model": "default-registry-model", "model_version": "1"}) == 1
