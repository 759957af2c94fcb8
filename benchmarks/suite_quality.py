"""Benchmark suite ``quality``: prediction store, outcome join, and a window's metrics vs scikit-learn."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from sklearn import metrics as skm

from common import Row
from mlscope import ModelMonitor
from mlscope.quality import MemoryStore, Outcome, Quality, SQLiteStore, Store
from mlscope.quality.estimate import from_confusion

CLASSES = ["a", "b", "c", "d"]


def _pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y_true] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, proba.argmax(axis=1), proba


def _quality(kind: str, folder: Path) -> Quality:
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(folder / f"bench-{time.monotonic_ns()}.db")
    return Quality(store, registry=CollectorRegistry(), start=False)


def _rate(n: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _store_and_join(kind: str, folder: Path, n: int, batch: int) -> tuple[float, float]:
    """(predictions stored/s, outcomes joined/s) with ``batch`` rows per transaction."""
    quality = _quality(kind, folder)
    sink = quality.sink("bench", "1", "classification", CLASSES)
    y_true, y_pred, proba = _pairs(n)
    items = [(sink.key, f"r{i}", 1.7e9, CLASSES[y_pred[i]], proba[i], None) for i in range(n)]
    outcomes = [Outcome(f"r{i}", CLASSES[y_true[i]]) for i in range(n)]

    def store() -> None:
        for start in range(0, n, batch):
            quality.store_predictions(items[start:start + batch])

    def join() -> None:
        for start in range(0, n, batch):
            quality.record_outcomes(outcomes[start:start + batch])

    stored, joined = _rate(n, store), _rate(n, join)
    quality.store.close()
    return stored, joined


def suite_quality(quick: bool) -> list[Row]:
    """Rows of the quality suite (``Row`` is run.py's dataclass, passed in to avoid a circular import)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # The request path: one deque append per prediction, against the same monitor without a store.
        number = 20_000 if quick else 100_000
        plain = ModelMonitor("plain", "1", registry=CollectorRegistry())
        quality = _quality("memory", folder)
        stored = ModelMonitor("stored", "1", registry=CollectorRegistry(), quality=quality, classes=CLASSES)
        p = np.array([0.1, 0.7, 0.1, 0.1])

        def per_call(monitor: ModelMonitor) -> float:
            start = time.perf_counter()
            for i in range(number):
                monitor.record_prediction(0.01, output="b", proba=p, request_id=f"q{i}")
            return (time.perf_counter() - start) / number * 1e6

        ref = min(per_call(plain) for _ in range(3))
        cost = min(per_call(stored) for _ in range(3))
        quality.writer.queue.clear()
        rows.append(Row("quality", "record_prediction() with quality= (request path: queue append)", cost, "us",
                        "same monitor without quality", ref, "<= 1.5x"))
        n = 5_000 if quick else 20_000
        results = {(kind, batch): _store_and_join(kind, folder, n if batch > 1 else n // 5, batch)
                   for kind in ("memory", "sqlite") for batch in (1, 1000)}
        for batch, label in ((1, "single (1 per transaction)"), (1000, "batch (1,000 per transaction)")):
            for what, index in (("predictions stored", 0), ("outcomes joined", 1)):
                rows.append(Row("quality", f"{what}/s, SQLite, {label}", results[("sqlite", batch)][index],
                                "/s", "memory store, same calls", results[("memory", batch)][index]))

        # A window's metrics: what mlscope computes (from counters, size independent of the pair count)
        # against scikit-learn on the same pairs.
        pairs = 20_000 if quick else 100_000
        y_true, y_pred, proba = _pairs(pairs, seed=1)
        quality = _quality("memory", folder)
        sink = quality.sink("bench", "1", "classification", CLASSES)
        quality.store_predictions([(sink.key, f"w{i}", 1.7e9, CLASSES[y_pred[i]], proba[i], None)
                                   for i in range(pairs)])
        quality.record_outcomes([Outcome(f"w{i}", CLASSES[y_true[i]]) for i in range(pairs)])
        registry = quality.registry
        matrix = skm.confusion_matrix(y_true, y_pred)

        def ours() -> None:
            generate_latest(registry)  # counters, binned ROC AUC over both windows
            from_confusion(matrix, CLASSES)  # what the recording rules do with the window's counts

        def sklearn() -> None:
            skm.accuracy_score(y_true, y_pred)
            skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
            skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
            skm.roc_auc_score(y_true, proba, multi_class="ovr")

        repeat = 3 if quick else 5
        ours_ms = min(_rate(1, ours) ** -1 for _ in range(repeat)) * 1000
        sk_ms = min(_rate(1, sklearn) ** -1 for _ in range(repeat)) * 1000
        rows.append(Row("quality", f"window metrics + ROC AUC from counters ({pairs:,} pairs, 4 classes)", ours_ms,
                        "ms", "scikit-learn on the same pairs", sk_ms))
    return rows
