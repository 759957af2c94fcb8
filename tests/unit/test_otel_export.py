"""Span export (mlscope.otel): spans reach an OTLP/HTTP receiver decoded with the official protobuf messages; a
backend refusing, failing or hanging costs predictions nothing but dropped spans, counted; exit stays bounded."""
from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from prometheus_client import CollectorRegistry

pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mlscope import ModelMonitor, tracing
from mlscope.otel import configure_tracing, otlp_exporter
from support.otlp_receiver import OTLPReceiver, wait_for_spans

PREDICTIONS = 400


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    found = OTLPReceiver().start()
    yield found
    found.close()


def dropped(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("mlscope_spans_dropped_total", {"reason": reason}) or 0.0


def exported(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("mlscope_spans_exported_total") or 0.0


def track_seconds(monitor: ModelMonitor, n: int = PREDICTIONS) -> list[float]:
    """Wall time of ``n`` track() blocks (each a prediction of about nothing)."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with monitor.track() as p:
            p.output = 1
        times.append(time.perf_counter() - start)
    return times


def test_spans_arrive_over_otlp_http_with_their_attributes(receiver: OTLPReceiver) -> None:
    registry = CollectorRegistry()
    setup = configure_tracing("churn-service", registry=registry, set_global=False, schedule_delay_s=0.05,
                              exporter=OTLPSpanExporter(endpoint=receiver.endpoint + "/v1/traces"))
    monitor = ModelMonitor("churn", "3", registry=registry, tracing=setup.provider)
    with monitor.track(request_id="otlp-1") as p:
        p.output = "stay"
    (span,) = wait_for_spans(receiver, lambda spans: spans)
    assert (span.service, span.name, span.kind, span.scope) == ("churn-service", "predict churn", "INTERNAL",
                                                                 tracing.INSTRUMENTATION)
    assert span.attributes == {tracing.MODEL: "churn", tracing.MODEL_VERSION: "3", tracing.REQUEST_ID: "otlp-1",
                               tracing.PREDICTED_CLASS: "stay"}
    setup.shutdown()
    assert exported(registry) == 1 and receiver.statuses == [200]


def test_the_standard_environment_variables_choose_the_endpoint(receiver: OTLPReceiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    registry = CollectorRegistry()
    setup = configure_tracing("from-code", registry=registry, set_global=False, schedule_delay_s=0.05)
    ModelMonitor("m", "1", registry=registry, tracing=setup.provider).record_prediction(0.01)
    (span,) = wait_for_spans(receiver, lambda spans: spans)
    assert span.service == "from-env"
    setup.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        otlp_exporter()


class Blocking(SpanExporter):
    """Holds the first export until released; records every span it is given."""

    def __init__(self) -> None:
        self.entered, self.release, self.got = threading.Event(), threading.Event(), 0

    def export(self, spans: Sequence) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.got += len(spans)
        return SpanExportResult.SUCCESS


def test_a_full_queue_drops_and_counts_spans() -> None:
    registry, blocking = CollectorRegistry(), Blocking()
    setup = configure_tracing("q", registry=registry, exporter=blocking, set_global=False, max_queue_size=4,
                              max_export_batch_size=4, schedule_delay_s=30)
    assert [registry.get_sample_value("mlscope_spans_dropped_total", {"reason": r})  # None: no such series
            for r in ("queue_full", "export_failed", "shutdown")] == [0.0, 0.0, 0.0]
    monitor = ModelMonitor("m", "1", registry=registry, tracing=setup.provider)
    track_seconds(monitor, 4)  # a full batch: the worker takes it and blocks in export
    assert blocking.entered.wait(5)
    track_seconds(monitor, 16)  # 4 fill the queue again, 12 are dropped
    blocking.release.set()
    setup.shutdown()
    assert blocking.got == 8 and exported(registry) == 8
    assert dropped(registry, "queue_full") == 12 and dropped(registry, "shutdown") == 0
    track_seconds(monitor, 2)  # after shutdown: refused by the processor, counted
    assert dropped(registry, "shutdown") == 2 and blocking.got == 8


class Raising(SpanExporter):
    def export(self, spans: Sequence) -> SpanExportResult:
        raise ConnectionError("exporter bug")


def test_an_exporter_that_raises_counts_as_failed() -> None:
    registry = CollectorRegistry()
    setup = configure_tracing("r", registry=registry, exporter=Raising(), set_global=False)
    monitor = ModelMonitor("m", "1", registry=registry, tracing=setup.provider)
    track_seconds(monitor, 3)
    setup.shutdown()
    assert dropped(registry, "export_failed") == 3 and exported(registry) == 0


@pytest.mark.parametrize("mode", ["refuse", 503, "hang"])
def test_a_failing_backend_costs_predictions_nothing_but_dropped_spans(receiver: OTLPReceiver, mode) -> None:
    """Prediction latency against a refusing, 5xx or hanging backend, next to no tracing in the same test;
    every sampled span is counted exported or dropped; shutdown bounded by its timeout, not the exporter's."""
    if mode == "refuse":
        receiver.refuse()
    else:
        receiver.mode = mode
    registry = CollectorRegistry()
    setup = configure_tracing("fail", registry=registry, set_global=False, schedule_delay_s=0.05,
                              max_queue_size=64, shutdown_timeout_s=1.0,
                              exporter=OTLPSpanExporter(endpoint=receiver.endpoint + "/v1/traces", timeout=30))
    plain = ModelMonitor("m", "plain", registry=CollectorRegistry(), tracing=False)
    traced = ModelMonitor("m", "traced", registry=registry, tracing=setup.provider)
    track_seconds(plain, 50), track_seconds(traced, 50)  # warm both
    without, with_spans = [], []
    for _ in range(4):  # interleaved rounds: the same machine load for both
        without += track_seconds(plain, PREDICTIONS // 4)
        with_spans += track_seconds(traced, PREDICTIONS // 4)
    # A blocked prediction would take the exporter's timeout (30 s); a span costs some microseconds.
    assert max(with_spans) < 0.5, max(with_spans)
    assert statistics.median(with_spans) < statistics.median(without) + 0.001
    started = time.monotonic()
    setup.shutdown()
    assert time.monotonic() - started < 1.0 + 1.0  # its 1 s timeout, plus scheduling slack

    def lost() -> float:
        return sum(dropped(registry, r) for r in ("queue_full", "export_failed", "shutdown"))

    # Once shutdown returns, every span is counted: exported, or dropped (a refused or hanging export still
    # retrying within its 30 s is counted `shutdown`). The SDK checks for a full queue before it appends: when
    # its worker takes a batch at that instant, a span counted as dropped is kept after all (`race`).
    total, race = PREDICTIONS + 50, 3
    assert total <= lost() <= total + race, [dropped(registry, r) for r in ("queue_full", "export_failed",
                                                                           "shutdown")]
    assert dropped(registry, "shutdown") > 0
    time.sleep(0.3)  # the abandoned export returns (the exporter was shut down): not counted twice
    assert lost() <= total + race
    assert exported(registry) == 0 and receiver.spans == []


def test_process_exit_is_bounded_against_a_hanging_backend(receiver: OTLPReceiver) -> None:
    """A real process exporting to a backend that never answers exits within its shutdown timeout, though
    the exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT) is 30 s and the SDK's exit hook would wait 30 s."""
    receiver.mode = "hang"
    code = textwrap.dedent("""
        from prometheus_client import CollectorRegistry
        from mlscope import ModelMonitor
        from mlscope.otel import configure_tracing
        setup = configure_tracing("exit", registry=CollectorRegistry(), schedule_delay_s=0.05,
                                  shutdown_timeout_s=1.0)
        monitor = ModelMonitor("m", "1", registry=CollectorRegistry())  # the global provider: spans on
        for _ in range(200):
            with monitor.track() as p:
                p.output = 1
        print("predicted", flush=True)
    """)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, **env})
    took = time.monotonic() - started
    assert done.returncode == 0 and "predicted" in done.stdout, done.stderr[-2000:]
    assert took < 1.0 + 4.0, took  # shutdown timeout + interpreter start and imports
