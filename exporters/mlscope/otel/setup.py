"""``configure_tracing``: an SDK tracer provider exporting over OTLP through a bounded, counted batch processor."""
from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from prometheus_client import CollectorRegistry

from .._runtime import require_extra
from .export import CountingBatchSpanProcessor, CountingExporter, span_metrics

log = logging.getLogger("mlscope")
PROTOCOLS = ("http/protobuf", "grpc")


def otlp_exporter(protocol: str | None = None) -> SpanExporter:
    """The OTLP span exporter of ``protocol`` (default: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, then
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, then ``http/protobuf``); endpoint, headers, timeout, compression and
    certificates come from the standard ``OTEL_EXPORTER_OTLP_*`` variables, read by the exporter itself."""
    protocol = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter

        return HTTPExporter()
    if protocol == "grpc":
        require_extra("otel-grpc", "OTLP over gRPC", "opentelemetry.exporter.otlp.proto.grpc", "grpc")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter as GRPCExporter,
        )

        exporter: SpanExporter = GRPCExporter()
        return exporter
    raise ValueError(f"OTLP protocol {protocol!r} is not one mlscope exports: choose one of {', '.join(PROTOCOLS)}")


def _sampler(ratio: float | None, trust_parent: bool) -> Sampler | None:
    """The provider's sampler: None (the SDK's, from ``OTEL_TRACES_SAMPLER``) when the caller's flag is
    trusted and no ratio is given; otherwise a trace-id ratio, parent-based only when the caller is trusted."""
    if trust_parent:
        return None if ratio is None else ParentBased(TraceIdRatioBased(ratio))
    if ratio is None:  # the variables' root sampler, without the parent-based wrapper
        name = os.environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
        if name.endswith("always_off"):
            return ALWAYS_OFF
        ratio = 1.0
        if name.endswith("traceidratio"):
            try:
                ratio = min(1.0, max(0.0, float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
            except ValueError:
                log.warning("mlscope: OTEL_TRACES_SAMPLER_ARG is not a number; sampling every trace")
    return TraceIdRatioBased(ratio)


@dataclass
class Tracing:
    """What :func:`configure_tracing` set up; :meth:`shutdown` (also run at exit) is bounded."""

    provider: TracerProvider
    processor: CountingBatchSpanProcessor
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _done: bool = field(default=False, repr=False)

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued now (waits on the exporter: not for a request path)."""
        return self.processor.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        """Stop exporting: at most ``shutdown_timeout_s`` spent on what is still queued. Idempotent."""
        with self._lock:
            if self._done:
                return
            self._done = True
        self.provider.shutdown()


def configure_tracing(service_name: str | None = None, *, registry: CollectorRegistry | None = None,
                      exporter: SpanExporter | None = None, sampler_ratio: float | None = None,
                      max_queue_size: int | None = None, max_export_batch_size: int | None = None,
                      schedule_delay_s: float | None = None, shutdown_timeout_s: float = 2.0,
                      trust_parent_sampling: bool = True, set_global: bool = True) -> Tracing:
    """Install a tracer provider that exports spans without ever blocking a prediction.

    ``exporter`` defaults to :func:`otlp_exporter`. ``sampler_ratio`` samples that share of new traces
    (parent-based: a caller's decision is kept); without it the SDK reads ``OTEL_TRACES_SAMPLER`` (default:
    every trace). ``trust_parent_sampling=False`` (for public endpoints) ignores an incoming ``traceparent``'s
    sampled flag: every trace is sampled by its trace id at the ratio (``sampler_ratio``, else the variables'),
    still in the caller's trace and under its span, so no caller decides trace or log volume. Spans wait in a
    queue of ``max_queue_size``; a full queue drops spans, counted with export failures in ``registry``
    (``mlscope_spans_dropped_total``); queue size, batch size and delay default to the SDK's ``OTEL_BSP_*``
    variables (2048 spans, 512, 5 s). ``OTEL_SERVICE_NAME`` overrides ``service_name``. With ``set_global`` the
    provider becomes the global one, so monitors make spans.
    """
    if sampler_ratio is not None and not 0.0 <= sampler_ratio <= 1.0:
        raise ValueError(f"sampler_ratio must be within [0, 1], got {sampler_ratio!r}")
    if not shutdown_timeout_s > 0:
        raise ValueError(f"shutdown_timeout_s must be positive, got {shutdown_timeout_s!r}")
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") or service_name is None else {SERVICE_NAME: service_name}
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=_sampler(sampler_ratio, trust_parent_sampling),
        shutdown_on_exit=False)  # the SDK's own exit hook waits up to 30 s on a hanging backend
    metrics = span_metrics(registry)
    options: dict[str, float] = {}
    for name, value in (("max_queue_size", max_queue_size), ("max_export_batch_size", max_export_batch_size)):
        if value is not None:
            options[name] = value
    if max_queue_size is not None and max_export_batch_size is None:  # the SDK refuses a batch over the queue
        options["max_export_batch_size"] = min(max_queue_size, int(os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                                                                                   512)))
    if schedule_delay_s is not None:
        options["schedule_delay_millis"] = schedule_delay_s * 1000
    processor = CountingBatchSpanProcessor(
        CountingExporter(exporter if exporter is not None else otlp_exporter(), metrics), metrics,
        shutdown_timeout_s=shutdown_timeout_s, **options)
    provider.add_span_processor(processor)
    tracing = Tracing(provider, processor)
    atexit.register(tracing.shutdown)
    if set_global:
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            log.warning("mlscope: a tracer provider was already set globally and OpenTelemetry keeps the first: "
                        "pass ModelMonitor(tracing=tracing.provider) to use this one")
    return tracing
