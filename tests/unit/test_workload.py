"""The synthetic workload that every other test, the benchmarks and the demo reuse."""
from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import accuracy_score

from mlscope import ModelMonitor
from mlscope.demo.workload import SimulatedPredictionError, SyntheticService, Traffic, train


@pytest.fixture(scope="module")
def trained():
    return train("breast_cancer")


def service(trained, registry: CollectorRegistry) -> SyntheticService:
    return SyntheticService(trained, ModelMonitor("wl", "1", registry=registry, task=trained.task))


def test_trained_models_are_real(trained) -> None:
    assert accuracy_score(trained.y_test, trained.pipeline.predict(trained.x_test)) > 0.9
    regression = train("diabetes")
    assert regression.task == "regression" and regression.pipeline.score(regression.x_test, regression.y_test) > 0.3
    with pytest.raises(ValueError, match="unknown dataset"):
        train("imagenet")  # type: ignore[arg-type]


def test_faults_inject_errors_and_drift(trained) -> None:
    registry = CollectorRegistry()
    svc = service(trained, registry)
    svc.faults.error_rate = 0.3
    traffic = Traffic(svc)
    results = [traffic.step() for _ in range(500)]
    failed = sum(r is None for r in results)
    assert 100 < failed < 200 and traffic.failed == failed
    labels = {"model": "wl", "model_version": "1"}
    assert registry.get_sample_value("mlscope_prediction_errors_total",
                                     {**labels, "error_type": SimulatedPredictionError.__name__}) == failed
    assert registry.get_sample_value("mlscope_predictions_total", labels) == 500
    svc.faults.drift_shift_std = 2.0
    x, _ = svc.sample(2000)
    shift = (x.mean(axis=0) - trained.x_test.mean(axis=0)) / trained.x_train.std(axis=0)
    assert np.all(np.abs(shift - 2.0) < 0.5)


def test_batch_path_and_background_traffic(trained) -> None:
    registry = CollectorRegistry()
    svc = service(trained, registry)
    x, _ = svc.sample(300)
    y = svc.predict_batch(x)
    labels = {"model": "wl", "model_version": "1"}
    for cls in (0, 1):
        assert registry.get_sample_value("mlscope_predicted_class_total", {**labels, "class": str(cls)}) \
            == (y == cls).sum()
    seen = []
    traffic = Traffic(svc, rate=200, on_prediction=seen.append).start()
    import time
    deadline = time.monotonic() + 5
    while len(seen) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    traffic.stop()
    assert len(seen) >= 20 and len({p.request_id for p in seen}) == len(seen)
