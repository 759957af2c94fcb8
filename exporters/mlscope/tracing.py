"""OpenTelemetry trace and span ids of the active span, when opentelemetry is installed (optional extra).

Without opentelemetry, or with no recording span active, every function here
returns nothing and costs one ``None`` check.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

_otel_trace: ModuleType | None
try:  # optional extra `mlscope[otel]`
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised in environments without the extra
    _otel_trace = None

# OpenMetrics limits an exemplar's label set (names and values) to 128 characters.
EXEMPLAR_MAX_CHARS = 128


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` as W3C lower-case hex of the active span, or None."""
    if _otel_trace is None:
        return None
    context: Any = _otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def exemplar(request_id: str) -> dict[str, str]:
    """Exemplar labels: the request id, plus trace and span ids when a span is active and they fit."""
    labels = {"request_id": request_id}
    ids = current_ids() if _otel_trace is not None else None
    if ids is not None:
        size = len("request_id") + len(request_id)
        for name, value in (("trace_id", ids[0]), ("span_id", ids[1])):
            size += len(name) + len(value)
            if size > EXEMPLAR_MAX_CHARS:
                break
            labels[name] = value
    return labels
