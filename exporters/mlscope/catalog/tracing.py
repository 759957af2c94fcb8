"""Span export (``mlscope.otel``): spans sent to the trace backend, and spans given up on."""
from __future__ import annotations

from .spec import MetricSpec, RecordedSpec

#: Reasons a span is dropped: the batch processor's queue was full (a backend slower than the service), the
#: exporter failed (refused, 4xx/5xx, timed out, raised), or the process stopped with spans still queued.
DROP_REASONS = ("queue_full", "export_failed", "shutdown")

SPANS_EXPORTED = MetricSpec(
    "mlscope_spans_exported_total", "counter",
    "Spans the trace exporter delivered (the backend accepted their batch).",
    ())
SPANS_DROPPED = MetricSpec(
    "mlscope_spans_dropped_total", "counter",
    "Sampled spans never delivered, by reason (queue_full, export_failed, shutdown): a trace backend that is "
    "down, refusing, failing or hanging costs the service these spans and nothing else.",
    ("reason",))

METRICS = (SPANS_EXPORTED, SPANS_DROPPED)
RECORDED: tuple[RecordedSpec, ...] = ()
