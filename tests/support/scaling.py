"""A classifier monitor driven to known label values."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor


def classifier(registry: CollectorRegistry, model: str = "cls") -> ModelMonitor:
    monitor = ModelMonitor(model, "1.0.0", registry=registry)
    for cls in (0, 1, 1):
        monitor.record_prediction(0.01, output=cls, score=0.7)
    monitor.record_error(ValueError("x"))
    monitor.record_error(KeyError("y"))
    monitor.record_prediction(float("nan"))  # one invalid-input reason
    return monitor
