"""WSGI and ASGI middleware: each HTTP request is a server span, child of the caller's W3C ``traceparent``.

The span is current while the application handles the request, so a monitor's prediction span is its
child. Span name and attributes follow the OpenTelemetry HTTP semantic conventions (``{method}``,
``http.request.method``, ``url.path``, ``url.scheme``, ``http.response.status_code``; a 5xx answer sets
``error.type`` and the ERROR status). Headers are read through the global propagator (W3C trace context
and baggage unless ``OTEL_PROPAGATORS`` says otherwise). Requests to ``exclude_paths`` (default: ``/metrics``,
and anything under it) get no span: a scrape every few seconds is not a trace anyone follows.
"""
from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..tracing import INSTRUMENTATION

_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


EXCLUDE_PATHS = ("/metrics",)


def _excluded(prefixes: tuple[str, ...]) -> Callable[[str], bool]:
    """A path test: the path is one of ``prefixes`` or under one (``/metrics`` takes ``/metrics/``, not
    ``/metricsx``)."""
    if any(not p.startswith("/") for p in prefixes):
        raise ValueError(f"exclude_paths must start with '/': {prefixes!r}")
    bare = tuple(p.rstrip("/") for p in prefixes)
    under = tuple(p + "/" for p in bare)
    return lambda path: path in bare or path.startswith(under)


def _tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    return (provider or trace.get_tracer_provider()).get_tracer(INSTRUMENTATION)


def _start(tracer: trace.Tracer, carrier: dict[str, str], method: str, path: str, scheme: str) -> trace.Span:
    # Semantic conventions: an unknown method is "_OTHER", and the span is named "HTTP" then.
    known = method.upper() if method.upper() in _KNOWN_METHODS else "_OTHER"
    return tracer.start_span(known if known != "_OTHER" else "HTTP", context=propagate.extract(carrier),
                             kind=SpanKind.SERVER,
                             attributes={HTTP_REQUEST_METHOD: known, URL_PATH: path, URL_SCHEME: scheme})


def _status(span: trace.Span, code: int) -> None:
    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, code)
    if code >= 500:  # server spans: 4xx are the client's errors, not the server's
        span.set_attribute(ERROR_TYPE, str(code))
        span.set_status(Status(StatusCode.ERROR))


def _failed(span: trace.Span, exc: BaseException) -> None:
    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class TraceContextMiddleware:
    """WSGI middleware (Flask: ``app.wsgi_app = TraceContextMiddleware(app.wsgi_app)``)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], tracer_provider: trace.TracerProvider | None = None,
                 exclude_paths: Iterable[str] = EXCLUDE_PATHS):
        self.app, self._provider, self._excluded = app, tracer_provider, _excluded(tuple(exclude_paths))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._excluded(environ.get("PATH_INFO", "") or "/"):
            return self.app(environ, start_response)
        carrier = {name: environ[key] for name, key in (("traceparent", "HTTP_TRACEPARENT"),
                                                        ("tracestate", "HTTP_TRACESTATE"),
                                                        ("baggage", "HTTP_BAGGAGE")) if key in environ}
        span = _start(_tracer(self._provider), carrier, environ.get("REQUEST_METHOD", ""),
                      environ.get("PATH_INFO", "") or "/", environ.get("wsgi.url_scheme", "http"))

        def respond(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            with contextlib.suppress(ValueError):
                _status(span, int(status.split(" ", 1)[0]))
            return start_response(status, headers, *args)

        token = context.attach(trace.set_span_in_context(span))
        try:
            body = self.app(environ, respond)
        except BaseException as exc:
            _failed(span, exc)
            span.end()
            raise
        finally:
            context.detach(token)
        return _EndsSpan(body, span)


class _EndsSpan:
    """The application's response body; the span ends when the server closes it (WSGI's ``close()``)."""

    def __init__(self, body: Iterable[bytes], span: trace.Span) -> None:
        self._body, self._span = body, span

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException as exc:
            _failed(self._span, exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._span.end()


class ASGITraceContextMiddleware:
    """ASGI middleware (FastAPI: ``app.add_middleware(ASGITraceContextMiddleware)``); HTTP scopes only."""

    def __init__(self, app: ASGIApp, tracer_provider: trace.TracerProvider | None = None,
                 exclude_paths: Iterable[str] = EXCLUDE_PATHS) -> None:
        self.app, self._provider, self._excluded = app, tracer_provider, _excluded(tuple(exclude_paths))

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or self._excluded(scope.get("path", "") or "/"):
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            if key in ("traceparent", "tracestate", "baggage"):
                carrier[key] = value.decode("latin-1")
        span = _start(_tracer(self._provider), carrier, scope.get("method", ""), scope.get("path", "") or "/",
                      scope.get("scheme", "http"))

        async def traced_send(message: Message) -> None:
            if message.get("type") == "http.response.start":
                _status(span, int(message.get("status", 0)))
            await send(message)

        token = context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()
            context.detach(token)
