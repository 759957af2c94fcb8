"""OpenTelemetry (optional extra, tested with opentelemetry-sdk): trace and span ids in log lines and exemplars."""
from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from mlscope import ModelMonitor, tracing
from mlscope.ids import clean_request_id
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


def test_exemplar_keeps_trace_and_span_ids_and_shortens_the_request_id(tracer) -> None:
    """A long request id gives way, not the trace id (the old code dropped trace_id and span_id)."""
    long_id = "r" * 100
    with tracer.start_as_current_span("predict") as span:
        labels = tracing.exemplar(clean_request_id(long_id))
        unclean = tracing.exemplar(long_id)  # an id that skipped clean_request_id is shortened the same way
        context = span.get_span_context()
    assert labels == unclean == {"request_id": clean_request_id(long_id), "trace_id": format(context.trace_id, "032x"),
                                 "span_id": format(context.span_id, "016x")}
    assert sum(len(k) + len(v) for k, v in labels.items()) <= 128
    Histogram("h", "h", registry=CollectorRegistry()).observe(1.0, labels)  # prometheus-client checks the limit
    assert tracing.exemplar("r-1") == {"request_id": "r-1"}  # no active span


def test_exemplar_labels_are_valid_in_the_exposition(tracer) -> None:
    registry = CollectorRegistry()
    monitor = ModelMonitor("m", "1", registry=registry)
    with tracer.start_as_current_span("predict"):
        rid = monitor.record_prediction(0.01, request_id="x" * 60)
    text = generate_latest(registry).decode()
    assert rid == clean_request_id("x" * 60) and len(rid) == 55
    assert re.search(rf'# \{{request_id="{rid}",span_id="[0-9a-f]{{16}}",trace_id="[0-9a-f]{{32}}"\}}', text), text
