"""The batch processor and exporter wrappers that count delivered and dropped spans (catalog: tracing)."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, Counter

from .._promclient import PerRegistry
from ..catalog import tracing as cat


class SpanMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.exported = cat.SPANS_EXPORTED.create(registry)
        dropped = cat.SPANS_DROPPED.create(registry)
        self.dropped: dict[str, Counter] = {reason: dropped.labels(reason) for reason in cat.DROP_REASONS}


_by_registry: PerRegistry[SpanMetrics] = PerRegistry()


def span_metrics(registry: CollectorRegistry | None = None) -> SpanMetrics:
    """The registry's span-export metrics, created on first use."""
    return _by_registry.get(registry, SpanMetrics)


class CountingExporter(SpanExporter):
    """Wraps a span exporter: each batch's spans count as exported, or dropped (``export_failed``).

    An exporter that raises is counted the same way and never takes the batch processor's thread down. The
    batch processor reports each batch it hands over (:meth:`submitted`); at shutdown :meth:`abandon` gives
    the spans of an export still running, counted then as dropped (``shutdown``): its result, if it ever
    comes, is not counted again.
    """

    def __init__(self, exporter: SpanExporter, metrics: SpanMetrics) -> None:
        self.exporter, self._metrics = exporter, metrics
        self._lock = threading.Lock()
        self._submitted = self._settled = 0
        self._abandoned = False

    def submitted(self, count: int) -> None:
        with self._lock:
            self._submitted += count

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        with self._lock:
            if self._abandoned:  # already counted as dropped at shutdown
                return result
            self._settled += len(spans)
            if result is SpanExportResult.SUCCESS:
                self._metrics.exported.inc(len(spans))
            else:
                self._metrics.dropped["export_failed"].inc(len(spans))
        return result

    def abandon(self) -> int:
        """Stop counting results; the number of spans handed over whose export has not returned."""
        with self._lock:
            self._abandoned = True
            return max(0, self._submitted - self._settled)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class _DropCounter:
    """Takes the place of the SDK batch processor's own metrics object (its ``drop_items`` is called for each
    span a full queue or a shut-down processor drops), counting in ours and passing everything on."""

    def __init__(self, metrics: SpanMetrics, sdk: Any, exporter: CountingExporter) -> None:
        self._metrics, self._sdk, self._exporter = metrics, sdk, exporter

    def register_queue_size(self, get_queue_size: Any) -> None:
        self._sdk.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._metrics.dropped["queue_full" if error_type == "queue_full" else "shutdown"].inc(count)
        self._sdk.drop_items(count, error_type)

    def finish_items(self, count: int) -> None:  # called as a batch is handed to the exporter
        self._exporter.submitted(count)
        self._sdk.finish_items(count)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the sampled spans it drops: a full queue (``queue_full``; the SDK
    then drops the oldest queued span), spans ended after shutdown, and, at shutdown, those still queued or
    inside an export that has not returned (``shutdown``). So once :meth:`shutdown` returns, exported plus
    dropped is every span that ended (tests/unit/test_otel_export.py).

    Nothing is added to the path of a span: the SDK reports its drops and each batch it hands over to a metrics
    object, replaced here by one that also counts them (the tests fail if an SDK version stops calling it).
    ``exporter`` is wrapped in a :class:`CountingExporter` unless it is one.
    """

    def __init__(self, exporter: SpanExporter, metrics: SpanMetrics, *, shutdown_timeout_s: float = 2.0,
                 **options: Any) -> None:
        counting = exporter if isinstance(exporter, CountingExporter) else CountingExporter(exporter, metrics)
        super().__init__(counting, **options)
        self._metrics, self._counting = metrics, counting
        self.shutdown_timeout_s = shutdown_timeout_s
        inner = self._batch_processor
        inner._metrics = _DropCounter(metrics, inner._metrics, counting)
        self._span_queue = inner._queue
        self._closed = False

    def shutdown(self) -> None:
        """Export what is queued within ``shutdown_timeout_s`` (the SDK's own waits 30 s); what is left, queued
        or in an export still running (abandoned on its daemon thread), counts as dropped (``shutdown``)."""
        if self._closed:
            return
        self._closed = True
        self._batch_processor.shutdown(timeout_millis=int(self.shutdown_timeout_s * 1000))
        left = self._counting.abandon() + len(self._span_queue)
        if left:
            self._metrics.dropped["shutdown"].inc(left)
