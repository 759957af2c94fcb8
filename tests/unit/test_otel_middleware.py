"""The WSGI (Flask) and ASGI (FastAPI) middleware, with real HTTP requests to real servers: the caller's W3C
``traceparent`` is the parent of the server span, which is the parent of the monitor's prediction span."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
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


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as answer:  # follows the mount's 307 to /metrics/, as curl -L
        answer.read()
        return int(answer.status)


def server_spans(exporter: InMemorySpanExporter) -> list:
    return [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]


@pytest.mark.parametrize("fastapi_tracing", [True, False])
def test_fastapi_with_its_own_telemetry_off_has_one_server_span_and_scrapes_none(
        traced, serve_asgi, fastapi_tracing: bool) -> None:
    """FastAPI (0.165) traces requests itself once it has a tracer provider: with mlscope's middleware that is
    two server spans per request, unless ``FastAPI(telemetry={"tracing": False})`` as the docs say. /metrics
    (a mounted prometheus-client app: 307 to /metrics/) makes no span."""
    from prometheus_client import make_asgi_app

    provider, exporter, monitor = traced
    app = fastapi.FastAPI(telemetry={"tracing": fastapi_tracing, "tracer_provider": provider})

    @app.post("/predict")
    def predict() -> dict:
        with monitor.track() as p:
            p.output = 1
        return {"class": 1}

    app.mount("/metrics", make_asgi_app(monitor.registry))
    app.add_middleware(ASGITraceContextMiddleware, tracer_provider=provider)
    base = serve_asgi(app)
    assert get(base + "/metrics") == 200
    assert post(base + "/predict", {"traceparent": TRACEPARENT}) == 200
    wait_until(lambda: any(s.name == "predict web" for s in exporter.get_finished_spans()))
    time.sleep(0.05)  # the server span ends after the answer
    mlscope_spans = [s for s in server_spans(exporter) if s.instrumentation_scope.name == tracing.INSTRUMENTATION]
    assert [s.attributes["url.path"] for s in mlscope_spans] == ["/predict"]  # none for the scrape
    in_callers_trace = [s for s in server_spans(exporter) if format(s.context.trace_id, "032x") == CALLER_TRACE]
    assert len(in_callers_trace) == (2 if fastapi_tracing else 1)
    if not fastapi_tracing:
        assert server_spans(exporter) == mlscope_spans


def test_wsgi_excludes_metrics_and_what_it_is_told() -> None:
    provider, exporter = TracerProvider(shutdown_on_exit=False), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def app(environ: dict, start_response) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    def call(middleware: TraceContextMiddleware, path: str) -> None:
        body = middleware({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *a: None)
        getattr(body, "close", lambda: None)()

    default, told = TraceContextMiddleware(app, provider), TraceContextMiddleware(app, provider, ("/health/",))
    for path in ("/metrics", "/metrics/", "/metricsx", "/predict"):
        call(default, path)
    for path in ("/health", "/health/live", "/metrics"):
        call(told, path)
    assert [s.attributes["url.path"] for s in exporter.get_finished_spans()] == ["/metricsx", "/predict", "/metrics"]
    with pytest.raises(ValueError, match="must start with"):
        TraceContextMiddleware(app, provider, ("metrics",))


@pytest.mark.parametrize(("trust", "ratio", "flag", "exported"), [
    (True, 0.0, "01", True), (True, 1.0, "00", False),  # default: the caller's flag decides
    (False, 0.0, "01", False), (False, 1.0, "00", True)])  # untrusted: the service's ratio decides
def test_a_public_endpoint_ignores_the_callers_sampled_flag(trust: bool, ratio: float, flag: str,
                                                             exported: bool) -> None:
    assert public_request(flag, exported, sampler_ratio=ratio, **({} if trust else {"trust_parent_sampling": False}))


@pytest.mark.parametrize(("sampler", "flag", "exported"), [
    ("parentbased_always_off", "01", False), ("parentbased_traceidratio", "00", True)])
def test_untrusted_sampling_takes_the_variables_root_sampler(monkeypatch: pytest.MonkeyPatch, sampler: str,
                                                             flag: str, exported: bool) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1.0")
    assert public_request(flag, exported, trust_parent_sampling=False)


def public_request(flag: str, exported: bool, **options: Any) -> bool:
    """One request with the caller's ``flag`` to a service set up with ``options``: exported as expected?"""
    from mlscope.otel import configure_tracing

    memory = InMemorySpanExporter()
    tracing_ = configure_tracing("public", registry=CollectorRegistry(), exporter=memory, set_global=False,
                                 **options)
    middleware = TraceContextMiddleware(lambda environ, start: [b""], tracing_.provider)
    middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/predict",
                "HTTP_TRACEPARENT": f"00-{CALLER_TRACE}-{CALLER_SPAN}-{flag}"}, lambda *a: None).close()
    tracing_.shutdown()
    spans = memory.get_finished_spans()
    assert len(spans) == int(exported)
    if exported:  # still the caller's trace, under the caller's span
        assert (format(spans[0].context.trace_id, "032x"), format(spans[0].parent.span_id, "016x")) == \
            (CALLER_TRACE, CALLER_SPAN)
    return True
