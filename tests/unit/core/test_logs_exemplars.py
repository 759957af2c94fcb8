"""With a prediction log, a latency exemplar always names a request whose log line was written."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from mlscope import ModelMonitor
from mlscope.logs import PredictionLog


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.request_ids: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.request_ids.add(record.request_id)  # type: ignore[attr-defined]


def exemplar_ids(registry: CollectorRegistry) -> set[str]:
    return {s.exemplar.labels["request_id"] for f in text_string_to_metric_families(generate_latest(registry).decode())
            for s in f.samples if s.exemplar}


def test_exemplars_only_name_logged_requests() -> None:
    collect = Collect()
    logger = logging.getLogger("test.exemplar.log")
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry,
                           prediction_log=PredictionLog(logger, sample_rate=0.0, slow_seconds=60))
    for i in range(200):
        if i % 10 == 0:
            with pytest.raises(RuntimeError), monitor.track(request_id=f"fail-{i}"):
                raise RuntimeError("boom")
        else:
            with monitor.track(request_id=f"ok-{i}") as p:
                p.output = 1
    assert collect.request_ids == {f"fail-{i}" for i in range(0, 200, 10)}
    ids = exemplar_ids(registry)
    assert ids and ids <= collect.request_ids  # never an unlogged request
    labels = {"model": "m", "model_version": "1"}
    assert registry.get_sample_value("mlscope_prediction_latency_seconds_count", labels) == 200


def test_without_a_prediction_log_every_request_can_be_an_exemplar() -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry)
    monitor.record_prediction(0.01, request_id="only-one")
    assert exemplar_ids(registry) == {"only-one"}
