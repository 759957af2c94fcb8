"""Suite `tracing`: what a prediction span adds to track(), against a bare OpenTelemetry SDK span.

Both sides use the SDK's batch processor with a no-op exporter (nothing leaves the process) and a queue
larger than the spans of a run (no span dropped: a full queue is another path, with the SDK's warning), so
the rows measure the hot path: span creation, attributes, context, the exemplar's trace ids, ending the span.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
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
        Row("tracing", "track() without tracing", without, "us"),
        Row("tracing", "track() with a span (SDK batch processor, no-op exporter)", with_spans, "us"),
        Row("tracing", "added cost of tracing in track() (with minus without)", with_spans - without, "us",
            "bare SDK span, same attributes, batch processor, no-op exporter", reference, "<= 1.5x"),
    ]

