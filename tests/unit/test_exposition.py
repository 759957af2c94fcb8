"""Serving /metrics: loopback by default, WSGI and ASGI apps, text and OpenMetrics negotiation."""
from __future__ import annotations

import asyncio
from wsgiref.util import setup_testing_defaults

import requests

from mlscope import ModelMonitor
from mlscope.exposition import DEFAULT_ADDR, asgi_app, wsgi_app
from support.helpers import Exporter

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def test_server_binds_loopback_and_negotiates(exporter: Exporter) -> None:
    assert DEFAULT_ADDR == "127.0.0.1"
    assert exporter._server.server_address[0] == "127.0.0.1"  # type: ignore[attr-defined]
    ModelMonitor("expo", "1", registry=exporter.registry).record_prediction(0.01, request_id="rid-1")
    text = requests.get(exporter.url, timeout=5)
    assert text.headers["Content-Type"].startswith("text/plain")
    assert 'mlscope_predictions_total{model="expo",model_version="1"} 1.0' in text.text
    assert "rid-1" not in text.text  # no exemplars in the text format
    om = requests.get(exporter.url, headers={"Accept": OPENMETRICS}, timeout=5)
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert '# {request_id="rid-1"}' in om.text and om.text.rstrip().endswith("# EOF")


def test_wsgi_app() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    ModelMonitor("wsgi", "1", registry=registry).record_prediction(0.01)
    environ: dict = {}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(wsgi_app(registry)(environ, lambda s, h: status.append(s)))
    assert status == ["200 OK"]
    assert b'mlscope_predictions_total{model="wsgi",model_version="1"} 1.0' in body


def test_asgi_app() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    ModelMonitor("asgi", "1", registry=registry).record_prediction(0.01)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
    asyncio.run(asgi_app(registry)(scope, receive, send))
    assert sent[0]["status"] == 200
    assert b'mlscope_predictions_total{model="asgi",model_version="1"} 1.0' in b"".join(
        m.get("body", b"") for m in sent)
