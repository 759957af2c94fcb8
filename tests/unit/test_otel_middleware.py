"""The WSGI (Flask) and ASGI (FastAPI) middleware, with real HTTP requests to real servers: the caller's W3C
``traceparent`` is the parent of the server span, which is the parent of the monitor's prediction span."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry

pytest.importorskip("opentelemetry.sdk.trace")
flask = pytest.importorskip("flask")
fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from mlscope import ModelMonitor, tracing  # noqa: E402
from mlscope.otel import ASGITraceContextMiddleware, TraceContextMiddleware  # noqa: E402
from support.helpers import free_port, post_status, wait_until  # noqa: E402

CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


@pytest.fixture
def traced() -> tuple[TracerProvider, InMemorySpanExporter, ModelMonitor]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter, ModelMonitor("web", "1", registry=CollectorRegistry(), tracing=provider)


def post(url: str, headers: dict[str, str]) -> int:
    return post_status(url, b"{}", {"Content-Type": "application/json", **headers}, timeout=10)


def check(exporter: InMemorySpanExporter, base: str) -> None:
    assert post(base + "/predict", {"traceparent": TRACEPARENT}) == 200
    assert post(base + "/fail", {}) == 500
    spans = wait_until(lambda: (s := exporter.get_finished_spans()) and len(s) >= 4 and s)
    by_name: dict[str, list] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    predict, failed = by_name["predict web"]
    server, failed_server = sorted(by_name["POST"], key=lambda s: s.attributes["url.path"] != "/predict")
    assert format(server.context.trace_id, "032x") == CALLER_TRACE and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == CALLER_SPAN and server.kind is trace.SpanKind.SERVER
    assert predict.parent.span_id == server.context.span_id and predict.context.trace_id == server.context.trace_id
    assert predict.attributes[tracing.PREDICTED_CLASS] == "1"
    assert {k: server.attributes[k] for k in ("http.request.method", "url.path", "http.response.status_code")} \
        == {"http.request.method": "POST", "url.path": "/predict", "http.response.status_code": 200}
    assert failed_server.parent is None  # no traceparent: a new trace
    assert failed.parent.span_id == failed_server.context.span_id
    assert failed.status.status_code is failed_server.status.status_code is trace.StatusCode.ERROR
    assert failed_server.attributes["error.type"] in ("500", "RuntimeError")


def test_flask_wsgi(traced) -> None:
    provider, exporter, monitor = traced
    app = flask.Flask("mlscope-test")

    @app.post("/predict")
    def predict():
        with monitor.track() as p:
            p.output = 1
        return json.dumps({"class": 1})

    @app.post("/fail")
    def fail():
        with monitor.track():
            raise RuntimeError("model down")

    app.wsgi_app = TraceContextMiddleware(app.wsgi_app, tracer_provider=provider)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check(exporter, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve_asgi() -> Iterator:
    servers = []

    def serve(app) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
        threading.Thread(target=server.run, daemon=True).start()
        wait_until(lambda: server.started, timeout=10, interval=0.05)
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.should_exit = True
    time.sleep(0.2)


def test_fastapi_asgi(traced, serve_asgi) -> None:
    provider, exporter, monitor = traced
    app = fastapi.FastAPI()

    @app.post("/predict")
    def predict() -> dict:  # a sync endpoint: FastAPI runs it on a thread, with the request's context
        with monitor.track() as p:
            p.output = 1
        return {"class": 1}

    @app.post("/fail")
    async def fail() -> dict:
        with monitor.track():
            raise RuntimeError("model down")

    app.add_middleware(ASGITraceContextMiddleware, tracer_provider=provider)
    check(exporter, serve_asgi(app))
