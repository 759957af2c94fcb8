"""OpenTelemetry (optional extra, tested with opentelemetry-sdk): trace and span ids in log lines and exemplars."""
from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from mlscope import ModelMonitor, tracing
from mlscope.logs import PredictionLog
from support.logs_helpers import JsonLines

sdk = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture(scope="module")
def tracer():
    provider = sdk.TracerProvider()
    return provider.get_tracer("mlscope-tests")  # a tracer of our own provider: no global state touched


def test_trace_and_span_ids_next_to_the_request_id(tracer) -> None:
    lines = JsonLines()
    logger = lines.logger("otel")
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry, prediction_log=PredictionLog(logger, sample_rate=1.0))
    with tracer.start_as_current_span("predict") as span:
        with monitor.track(request_id="req-1") as p:
            p.output = 1
        context = span.get_span_context()
    text = generate_latest(registry).decode()  # before the next observation replaces the bucket's exemplar
    with monitor.track(request_id="req-2") as p:  # no active span
        p.output = 1
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    first, second = lines.lines
    assert (first["request_id"], first["trace_id"], first["span_id"]) == ("req-1", trace_id, span_id)
    assert second["request_id"] == "req-2" and "trace_id" not in second
    assert f'# {{request_id="req-1",span_id="{span_id}",trace_id="{trace_id}"}}' in text \
        or f'# {{request_id="req-1",trace_id="{trace_id}",span_id="{span_id}"}}' in text


def test_exemplar_stays_within_the_openmetrics_limit(tracer) -> None:
    long_id = "r" * 100
    with tracer.start_as_current_span("predict"):
        labels = tracing.exemplar(long_id)
        assert labels == {"request_id": long_id}  # the trace ids would not fit in 128 characters
        short = tracing.exemplar("r-1")
    assert set(short) == {"request_id", "trace_id", "span_id"}
    assert sum(len(k) + len(v) for k, v in short.items()) <= 128
    assert tracing.exemplar("r-1") == {"request_id": "r-1"}


def test_exemplar_labels_are_valid_in_the_exposition(tracer) -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry)
    with tracer.start_as_current_span("predict"):
        monitor.record_prediction(0.01, request_id="x" * 60)
    text = generate_latest(registry).decode()
    assert re.search(r'# \{request_id="x{60}",trace_id="[0-9a-f]{32}"\}', text), text
