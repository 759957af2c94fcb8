"""Suite `tracing`: what a prediction span adds to track(), against a bare OpenTelemetry SDK span.

Both sides use the SDK's batch processor with a no-op exporter (nothing leaves the process) and a queue
larger than the spans of a run (no span dropped: a full queue is another path, with the SDK's warning), so
the rows measure the hot path: span creation, attributes, context, the exemplar's trace ids, ending the span.

The tail rows export for real: OTLP/HTTP to a sink in another process (benchmarks/otlp_sink.py), with the
default batch of 512 and a smaller one, each prediction timed alone, with tracing and without in the same
interleaved rounds; and the time the exporter's thread spends encoding one 512-span batch (Python code that
holds the GIL: a prediction waits for it up to the interpreter's switch interval, 5 ms, per switch).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from common import Row, per_call_us
from mlscope import ModelMonitor, tracing
from mlscope.otel import configure_tracing


class NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[object]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def suite_tracing(quick: bool) -> list[Row]:
    number, repeat = (10_000, 5) if quick else (20_000, 15)
    queue = 2 ** 21  # more than the spans of one side's runs (number x (repeat + 1))
    setup = configure_tracing("bench", registry=CollectorRegistry(), exporter=NoOpExporter(), set_global=False,
                              max_queue_size=queue, max_export_batch_size=512)
    traced = ModelMonitor("bench", "1", registry=CollectorRegistry(), tracing=setup.provider)
    plain = ModelMonitor("bench", "1", registry=CollectorRegistry(), tracing=False)
    bare_provider = TracerProvider(shutdown_on_exit=False)
    bare_provider.add_span_processor(BatchSpanProcessor(NoOpExporter(), max_queue_size=queue,
                                                        max_export_batch_size=512))
    tracer = bare_provider.get_tracer("bench")
    attributes = {tracing.MODEL: "bench", tracing.MODEL_VERSION: "1", tracing.REQUEST_ID: "ab12cd34-1"}

    def tracked(monitor: ModelMonitor) -> None:
        with monitor.track() as p:
            p.output = 1
            p.score = 0.8

    def bare() -> None:
        with tracer.start_as_current_span("predict bench", attributes=attributes) as span:
            span.set_attribute(tracing.PREDICTED_CLASS, "1")

    # Interleaved rounds (the three cases one after the other, `repeat` times): a shared machine's load
    # changes over minutes and would otherwise land on one side only.
    runs: dict[str, list[float]] = {"without": [], "with": [], "bare": []}
    cases = {"without": lambda: tracked(plain), "with": lambda: tracked(traced), "bare": bare}
    for _ in range(repeat):
        for name, fn in cases.items():
            runs[name].append(per_call_us(fn, number, 1))
    without, with_spans, reference = (statistics.median(runs[n]) for n in ("without", "with", "bare"))
    dropped = setup.processor._metrics.dropped["queue_full"]._value.get()
    if dropped:
        raise RuntimeError(f"{dropped:g} spans dropped: the benchmark measured the full-queue path")
    setup.shutdown()
    bare_provider.shutdown()
    return [
        *tail_rows(quick),
        Row("tracing", "track() without tracing", without, "us"),
        Row("tracing", "track() with a span (SDK batch processor, no-op exporter)", with_spans, "us"),
        Row("tracing", "added cost of tracing in track() (with minus without)", with_spans - without, "us",
            "bare SDK span, same attributes, batch processor, no-op exporter", reference, "<= 1.5x"),
    ]



def timed_calls(fn: Callable[[], object], number: int) -> list[float]:
    """Microseconds of each of ``number`` calls (a short sleep every 50: a service's idle moments)."""
    out = []
    for i in range(number):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1e3)
        if i % 50 == 49:
            time.sleep(0.0005)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def encode_ms(batch: int) -> float:
    """Milliseconds to encode ``batch`` prediction spans into an OTLP request, as the exporter's thread does."""
    memory, provider = InMemorySpanExporter(), TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry(), tracing=provider)
    for _ in range(batch):
        with monitor.track() as p:
            p.output = 1
    spans = memory.get_finished_spans()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        encode_spans(spans).SerializePartialToString()
        runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs)


def tail_rows(quick: bool) -> list[Row]:
    """p99 and max of single predictions with OTLP export to a real endpoint, against no tracing."""
    number, rounds = (5_000, 2) if quick else (10_000, 4)
    sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("otlp_sink.py"))], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert sink.stdout is not None
        endpoint = f"http://127.0.0.1:{sink.stdout.readline().strip()}/v1/traces"
        rows = []
        for batch in (512, 128):
            setup = configure_tracing("bench", registry=CollectorRegistry(), set_global=False,
                                      max_export_batch_size=batch, exporter=OTLPSpanExporter(endpoint=endpoint))
            traced = ModelMonitor("bench", "1", registry=CollectorRegistry(), tracing=setup.provider)
            plain = ModelMonitor("bench", "1", registry=CollectorRegistry(), tracing=False)
            runs: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(rounds):
                for name, monitor in (("without", plain), ("with", traced)):
                    runs[name] += timed_calls(lambda m=monitor: _tracked(m), number)
            setup.shutdown()
            for stat, q in (("p99", 0.99), ("max", 1.0)):
                rows.append(Row("tracing", f"{stat} of one track() with OTLP/HTTP export, batch {batch}",
                                percentile(runs["with"], q), "us", "track() without tracing, same rounds",
                                percentile(runs["without"], q)))
        rows.append(Row("tracing", "exporter thread: encoding one 512-span batch (holds the GIL)", encode_ms(512),
                        "ms"))
        return rows
    finally:
        sink.terminate()
        sink.wait(10)


def _tracked(monitor: ModelMonitor) -> None:
    with monitor.track() as p:
        p.output = 1
        p.score = 0.8
