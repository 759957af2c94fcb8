"""Exporting the monitor's spans over OTLP (the ``mlscope[otel]`` extra): set-up, counted drops, middleware.

``configure_tracing("churn-service")`` installs an OpenTelemetry SDK tracer provider whose batch processor
sends spans over OTLP (HTTP/protobuf, or gRPC with ``mlscope[otel-grpc]``; the standard
``OTEL_EXPORTER_OTLP_*`` variables apply) with a bounded queue, never blocking a prediction, and counts what
it delivers and drops (``mlscope_spans_exported_total``, ``mlscope_spans_dropped_total{reason}``).
:class:`TraceContextMiddleware` (WSGI: Flask) and :class:`ASGITraceContextMiddleware` (ASGI: FastAPI) make
each request a server span, child of the caller's W3C ``traceparent``.
"""
from __future__ import annotations

from .._runtime import require_extra

require_extra("otel", "mlscope.otel (span export)", "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http",
              "opentelemetry.semconv")

from .export import CountingBatchSpanProcessor, CountingExporter, span_metrics  # noqa: E402
from .middleware import ASGITraceContextMiddleware, TraceContextMiddleware  # noqa: E402
from .setup import Tracing, configure_tracing, otlp_exporter  # noqa: E402

__all__ = ["ASGITraceContextMiddleware", "CountingBatchSpanProcessor", "CountingExporter", "TraceContextMiddleware",
           "Tracing", "configure_tracing", "otlp_exporter", "span_metrics"]
