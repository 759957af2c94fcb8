"""OpenTelemetry in the service-side core: the monitor's prediction spans and the ids they give exemplars and logs.

Only the OpenTelemetry *API* is imported, and only when it is installed (the ``mlscope[otel]`` extra); without
it every function here returns nothing and costs one ``None`` check. Exporting spans (the SDK, OTLP, the
batch processor and its drop counts) is :mod:`mlscope.otel`, outside the core.

A trace id is given to an exemplar or a log line only when that trace is *sampled*: a link always leads to
a trace that was exported.
"""
from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from ._runtime import MissingExtra
from .ids import MAX_REQUEST_ID

_otel_trace: ModuleType | None
_otel_context: ModuleType | None
try:  # optional extra `mlscope[otel]`
    from opentelemetry import context as _otel_context
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised in environments without the extra
    _otel_trace = _otel_context = None

# OpenMetrics limits an exemplar's label set (names and values) to 128 characters.
EXEMPLAR_MAX_CHARS = 128

# Span attribute keys. `error.type` is the OpenTelemetry semantic conventions' (stable); the others are
# mlscope's own: no convention names a (non-generative) model, its version or a prediction.
ERROR_TYPE = "error.type"
MODEL = "mlscope.model.name"
MODEL_VERSION = "mlscope.model.version"
REQUEST_ID = "mlscope.request.id"
DATA_BATCH_ID = "mlscope.data_batch.id"
PREDICTED_CLASS = "mlscope.prediction.class"  # the class label as counted in metrics (capped, folded)
BATCH_ROWS = "mlscope.batch.rows"
SPAN_PREDICT = "predict"  # span names: "predict <model>", "predict_batch <model>" (bounded: model names are)
SPAN_PREDICT_BATCH = "predict_batch"
INSTRUMENTATION = "mlscope"
# A generation's span (mlscope.genai): OpenTelemetry GenAI semantic-conventions attributes, named
# "{gen_ai.operation.name} {gen_ai.request.model}" as the conventions say.
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_COST = "mlscope.genai.cost"  # no convention prices a generation
TENANT = "mlscope.tenant"

Ids = tuple[str, str]  # (trace_id, span_id) as W3C lower-case hex
SpanHandle = tuple[Any, Any]  # (span, context token or None) of PredictionSpans.start


def _sampled_ids(context: Any) -> Ids | None:
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def current_ids() -> Ids | None:
    """``(trace_id, span_id)`` of the active span when its trace is sampled, else None."""
    if _otel_trace is None:
        return None
    return _sampled_ids(_otel_trace.get_current_span().get_span_context())


def exemplar(request_id: str, ids: Ids | None = None) -> dict[str, str]:
    """Exemplar labels: the request id, plus the trace and span ids of ``ids`` (default: the active span's).

    The trace ids always fit: :func:`mlscope.ids.clean_request_id` bounds request ids to what is left of
    the 128 characters, and an id that did not go through it is shortened the same way here.
    """
    if ids is None:
        ids = current_ids() if _otel_trace is not None else None
        if ids is None:
            return {"request_id": request_id}
    if len(request_id) > MAX_REQUEST_ID:
        from .ids import clean_request_id

        request_id = clean_request_id(request_id)
    return {"request_id": request_id, "trace_id": ids[0], "span_id": ids[1]}


def _is_api_provider(provider: Any) -> bool:
    assert _otel_trace is not None
    return isinstance(provider, (_otel_trace.ProxyTracerProvider, _otel_trace.NoOpTracerProvider))


class PredictionSpans:
    """The spans of one monitor's predictions, or none.

    ``option``: ``None`` (default) makes spans once a real tracer provider (the SDK's, or a vendor's) is
    set globally, not the API's placeholder; ``True`` always (through the global provider, whenever it is
    set); ``False`` never; a ``TracerProvider`` uses that provider.
    """

    __slots__ = ("_auto", "_tracer", "_base", "_name", "_batch_name")

    def __init__(self, option: Any, model: str, model_version: str) -> None:
        self._auto, self._tracer = False, None
        self._base = {MODEL: model, MODEL_VERSION: model_version}
        self._name, self._batch_name = f"{SPAN_PREDICT} {model}", f"{SPAN_PREDICT_BATCH} {model}"
        if option is False:
            return
        if _otel_trace is None:
            if option is not None:
                raise MissingExtra("prediction spans (tracing=)", "otel", ["opentelemetry-api"])
            return
        if option is None:
            self._auto = True
        elif option is True:
            self._tracer = _otel_trace.get_tracer(INSTRUMENTATION)
        else:
            self._tracer = option.get_tracer(INSTRUMENTATION)

    def tracer(self) -> Any:
        """The tracer to use now, or None (tracing off, or no provider set yet in auto mode)."""
        if self._tracer is None and self._auto:
            assert _otel_trace is not None
            provider = _otel_trace.get_tracer_provider()
            if not _is_api_provider(provider):
                self._tracer = provider.get_tracer(INSTRUMENTATION)
        return self._tracer

    def start(self, request_id: str | None, data_batch_id: str | None, latency: Any = None, *,
              current: bool = True, rows: int | None = None, name: str | None = None) -> SpanHandle | None:
        """Start a prediction's span (a batch's with ``rows``; ``name`` instead of ``predict <model>``), a child
        of the active span; None when off.

        ``current`` makes it the active span until :meth:`finish`; ``latency`` (seconds, for a prediction
        recorded after the fact) starts it that long ago.
        """
        tracer = self._tracer if self._tracer is not None else (self.tracer() if self._auto else None)
        if tracer is None:
            return None
        attributes: dict[str, Any] = {**self._base}
        if request_id is not None:
            attributes[REQUEST_ID] = request_id
        if data_batch_id is not None:
            attributes[DATA_BATCH_ID] = data_batch_id
        if rows is not None:
            attributes[BATCH_ROWS] = rows
        start = None
        if isinstance(latency, (float, int)) and not isinstance(latency, bool) and 0 <= latency < 1e9:
            start = time.time_ns() - int(latency * 1e9)
        span_name = name if name is not None else self._name if rows is None else self._batch_name
        span = tracer.start_span(span_name, attributes=attributes,
                                 start_time=start)
        if not current:
            return span, None
        assert _otel_context is not None and _otel_trace is not None
        return span, _otel_context.attach(_otel_trace.set_span_in_context(span))

    def finish(self, handle: SpanHandle, error: BaseException | type[BaseException] | str | None,
               predicted_class: str | None) -> None:
        """End the span of :meth:`start` (the caller read its ids first) and restore the context."""
        span, token = handle
        try:
            _end(span, error, predicted_class)
        finally:
            if token is not None:
                assert _otel_context is not None
                _otel_context.detach(token)

    def record(self, name: str, request_id: str, latency: float | None, attributes: dict[str, Any],
               error: BaseException | type[BaseException] | str | None) -> Ids | None:
        """A finished span named ``name`` that began ``latency`` seconds ago, with ``attributes``; its ids when
        sampled (None when tracing is off or it is not sampled)."""
        handle = self.start(request_id, None, latency, current=False, name=name)
        if handle is None:
            return None
        span = handle[0]
        span.set_attributes(attributes)
        ids = _sampled_ids(span.get_span_context())
        _end(span, error, None)
        return ids


def span_ids(handle: SpanHandle | None) -> tuple[Ids | None, bool | None]:
    """The ids of a prediction span (when sampled) and whether it is sampled; ``(None, None)`` without one."""
    if handle is None:
        return None, None
    context = handle[0].get_span_context()
    ids = _sampled_ids(context)
    return ids, ids is not None


def _end(span: Any, error: BaseException | type[BaseException] | str | None, predicted_class: str | None) -> None:
    assert _otel_trace is not None
    if error is not None:
        name = error if isinstance(error, str) else (error if isinstance(error, type) else type(error)).__name__
        span.set_attribute(ERROR_TYPE, name)
        if isinstance(error, BaseException):
            span.record_exception(error)
        span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, name))
    elif predicted_class is not None:
        span.set_attribute(PREDICTED_CLASS, predicted_class)
    span.end()
