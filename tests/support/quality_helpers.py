"""Shared set-ups for the quality tests (and the catalog's exposition checks)."""
from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.quality import Quality


def populate_quality(registry: CollectorRegistry) -> Quality:
    """A memory-store Quality in ``registry`` with every quality family exposed at least once."""
    quality = Quality(registry=registry, start=False, queue_size=50)
    clf = ModelMonitor("qclf", "1", registry=registry, quality=quality, classes=["a", "b", "c"])
    reg = ModelMonitor("qreg", "1", registry=registry, quality=quality, task="regression")
    for i, (label, proba) in enumerate([("a", [0.8, 0.1, 0.1]), ("b", [0.2, 0.7, 0.1]), ("c", [0.1, 0.2, 0.7])]):
        clf.record_prediction(0.01, output=label, proba=proba, request_id=f"c{i}", segment="eu")
    for i, value in enumerate([1.0, 2.0]):
        reg.record_prediction(0.01, output=value, request_id=f"r{i}")
    clf.record_prediction(0.01, output="a", proba=[2.0], request_id="bad-proba")
    quality.process_queue()
    for rid, y in [("c0", "a"), ("c1", "a"), ("c2", "c"), ("r0", 0.0), ("r1", 3.0), ("c0", "a")]:
        clf.record_outcome(rid, y)
    quality.process_queue()
    quality.record_outcomes([], hold=False)
    quality.record_outcome("nobody", 1)
    quality.set_baseline("qclf", "1", {"accuracy": 0.9})
    for i in range(60):  # overflow the queue once
        clf.record_prediction(0.01, output="a", request_id=f"x{i}")
    quality.process_queue()
    quality.maintain()
    return quality


def series_value(registry: CollectorRegistry, name: str, **labels: Any) -> float:
    value = registry.get_sample_value(name, {k: str(v) for k, v in labels.items()})
    return 0.0 if value is None else value


def make_pairs(n: int, classes: list[Any], seed: int = 0, imbalance: list[float] | None = None,
               accuracy: float = 0.7, never_predicted: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, proba) of a synthetic classifier: imbalanced classes, a class never predicted."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    y_true = rng.choice(k, size=n, p=imbalance)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y_true] += 2.0 * accuracy + 0.5
    if never_predicted is not None:
        logits[:, classes.index(never_predicted)] -= 50.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    labels = np.array(classes, dtype=object)
    return labels[y_true], labels[y_pred], proba
