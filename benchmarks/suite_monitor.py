"""Suite `monitor`: the in-process monitor against the raw prometheus-client updates it makes."""
from __future__ import annotations

import time
import timeit
from collections.abc import Callable

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from common import Row, per_call_us
from mlscope import ModelMonitor
from mlscope.catalog import serving as cat
from mlscope.ids import new_request_id


def raw_prometheus_client(registry: CollectorRegistry) -> Callable[[int, float], None]:
    """The prometheus-client updates one tracked prediction needs, on pre-bound children."""
    labels = ("raw", "1")
    predictions = Counter("raw_predictions", "h", ["model", "model_version"], registry=registry).labels(*labels)
    in_flight = Gauge("raw_in_flight", "h", ["model", "model_version"], registry=registry).labels(*labels)
    latency = Histogram("raw_latency_seconds", "h", ["model", "model_version"], registry=registry,
                        buckets=cat.LATENCY_BUCKETS).labels(*labels)
    classes = Counter("raw_class", "h", ["model", "model_version", "class"], registry=registry)
    class_children = {c: classes.labels(*labels, str(c)) for c in range(3)}
    score = Histogram("raw_score", "h", ["model", "model_version"], registry=registry,
                      buckets=cat.SCORE_BUCKETS).labels(*labels)
    counter = iter(range(10**12))

    def predict(cls: int, s: float) -> None:
        in_flight.inc()
        start = time.perf_counter()
        elapsed = time.perf_counter() - start
        in_flight.dec()
        predictions.inc()
        latency.observe(elapsed, {"request_id": f"ab12cd34-{next(counter):x}"})
        class_children[cls].inc()
        score.observe(s)

    return predict


def suite_monitor(quick: bool) -> list[Row]:
    number, repeat = (20_000, 5) if quick else (100_000, 7)
    rows = []
    raw = raw_prometheus_client(CollectorRegistry())
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry())

    def tracked() -> None:
        with monitor.track() as p:
            p.output = 1
            p.score = 0.8

    def explicit() -> None:
        monitor.record_prediction(0.0123, output=1, score=0.8)

    ref = per_call_us(lambda: raw(1, 0.8), number, repeat)
    rows.append(Row("monitor", "track() per prediction (latency+exemplar, in-flight, class, score)",
                    per_call_us(tracked, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "record_prediction() per prediction",
                    per_call_us(explicit, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "new_request_id()", per_call_us(new_request_id, number, repeat), "us"))

    # Batches: cost per row of record_batch against the raw per-row updates.
    rng = np.random.default_rng(0)
    n = 100_000
    classes, scores = rng.integers(0, 3, n), rng.random(n)
    batch_monitor = ModelMonitor("bench-batch", "1", registry=CollectorRegistry())
    batch_s = min(timeit.repeat(lambda: batch_monitor.record_batch(classes, scores=scores, latency_seconds=0.1),
                                number=1, repeat=3 if quick else 5))
    class_list, score_list = classes.tolist(), scores.tolist()
    raw_batch = raw_prometheus_client(CollectorRegistry())

    def raw_rows() -> None:
        for c, s in zip(class_list, score_list, strict=True):
            raw_batch(c, s)

    raw_s = min(timeit.repeat(raw_rows, number=1, repeat=1 if quick else 3))
    rows.append(Row("monitor", f"record_batch() per row ({n:,} rows, classes + scores)",
                    batch_s / n * 1e6, "us", "raw per-row updates", raw_s / n * 1e6))

    # Scrape: /metrics of 10 models x 5 versions, each with 3 classes and a score histogram.
    registry = CollectorRegistry()
    for m in range(10):
        for v in range(5):
            mon = ModelMonitor(f"model-{m}", f"{v}.0.0", registry=registry)
            mon.record_batch(np.array([0, 1, 2]), scores=np.array([0.1, 0.5, 0.9]), latency_seconds=0.01)
            mon.record_prediction(0.01, output=1)
            mon.record_error(ValueError())
    text = generate_latest(registry)
    n_series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    scrape_ms = per_call_us(lambda: generate_latest(registry), 20, 5 if quick else 10) / 1000
    rows.append(Row("monitor", f"scrape /metrics, 10 models x 5 versions ({n_series:,} series, text)",
                    scrape_ms, "ms"))
    return rows


