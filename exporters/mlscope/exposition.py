"""Serving ``/metrics``: a loopback HTTP server, WSGI/ASGI apps, and multiprocess mode.

Thin wrappers over prometheus-client with mlscope's defaults: bind to
127.0.0.1 unless told otherwise, and add the static ``mlscope_model_info``
collector in multiprocess mode (custom collectors are not aggregated there).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, make_wsgi_app, multiprocess
from prometheus_client import start_http_server as _start_http_server

from .instruments import instruments_for
from .targets import register_from_environment

DEFAULT_ADDR = "127.0.0.1"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def multiprocess_registry() -> CollectorRegistry:
    """A fresh registry that aggregates every worker's values (gunicorn-style servers).

    Call it per scrape, in whichever worker serves ``/metrics``. Metrics must be
    created in the default registry of each worker (``ModelMonitor`` without
    ``registry=``) and ``PROMETHEUS_MULTIPROC_DIR`` set before the workers start.
    """
    registry = CollectorRegistry()
    aggregate: Callable[[CollectorRegistry], object] = multiprocess.MultiProcessCollector  # typed view
    aggregate(registry)
    registry.register(instruments_for(REGISTRY).model_info)
    return registry


def exposed_registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    return multiprocess_registry() if multiprocess_enabled() else REGISTRY


def start_metrics_server(port: int, addr: str = DEFAULT_ADDR,
                         registry: CollectorRegistry | None = None) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``addr:port`` (loopback by default) in a daemon thread.

    With ``$MLSCOPE_TARGETS_DIR`` set (a stack's targets folder), the server also registers itself there
    as a scrape target and deregisters at a clean exit (:mod:`mlscope.targets`).
    """
    server, thread = _start_http_server(port, addr=addr, registry=exposed_registry(registry))
    register_from_environment(server.server_port, addr)
    return server, thread


def wsgi_app(registry: CollectorRegistry | None = None) -> Any:
    """A WSGI app to mount at ``/metrics`` (content negotiation: text or OpenMetrics)."""
    if registry is None and multiprocess_enabled():
        def app(environ: dict[str, Any], start_response: Any) -> Any:
            return make_wsgi_app(multiprocess_registry())(environ, start_response)
        return app
    return make_wsgi_app(exposed_registry(registry))


def asgi_app(registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app to mount at ``/metrics`` (e.g. ``app.mount("/metrics", asgi_app())``)."""
    if registry is None and multiprocess_enabled():
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await make_asgi_app(multiprocess_registry())(scope, receive, send)
        return app
    return make_asgi_app(exposed_registry(registry))
