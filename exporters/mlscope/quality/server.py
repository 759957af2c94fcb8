"""The quality exporter's HTTP server: ``/metrics``, ``POST /outcomes``, ``POST /predictions``.

Binds 127.0.0.1 unless told otherwise. With a token, POSTs need
``Authorization: Bearer <token>`` (compared in constant time); ``/metrics``
stays open like every Prometheus target. Bodies are limited in size; a store
failure answers 503 with the reason and nothing of that batch is counted.
"""
from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .core import Quality
from .items import PredictionItem
from .outcomes import OutcomeFormatError, parse_batch
from .store import StoreError

log = logging.getLogger("mlscope.quality")
MAX_BODY_BYTES = 16 * 1024 * 1024


class QualityServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: str, port: int, quality: Quality, registry: CollectorRegistry,
                 token: str | None = None) -> None:
        self.quality, self.registry, self.token = quality, registry, token or None
        super().__init__((addr, port), _Handler)

    def start(self) -> QualityServer:
        threading.Thread(target=self.serve_forever, name="mlscope-quality-http", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _predictions(server: QualityServer, body: bytes) -> dict[str, int]:
    """Store ``{"predictions": [{"model", "model_version", "request_id", "output", "proba"?, "segment"?,
    "time"?}]}`` sent by replicas on other hosts; the version must be registered."""
    try:
        items = json.loads(body).get("predictions")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise OutcomeFormatError('expected {"predictions": [...]}') from None
    if not isinstance(items, list):
        raise OutcomeFormatError('expected {"predictions": [...]}')
    rows = []
    for item in items:
        if not isinstance(item, dict):
            continue
        at = item.get("time")
        rows.append(PredictionItem((str(item.get("model")), str(item.get("model_version"))), item.get("request_id"),
                                   float(at) if isinstance(at, (int, float)) else time.time(),
                                   item.get("output"), item.get("proba"), item.get("segment")))
    # store_predictions counts unknown versions (unknown_version) and unusable ids (invalid_request_id).
    return {"stored": server.quality.store_predictions(rows), "received": len(items)}


class _Handler(BaseHTTPRequestHandler):
    server: QualityServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.server.registry), content_type)
        elif path in ("/-/healthy", "/healthz"):
            self._send(200, b"ok\n", "text/plain")
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        handlers = {"/outcomes": lambda body: self.server.quality.record_outcomes(parse_batch(body)),
                    "/predictions": lambda body: _predictions(self.server, body)}
        if path not in handlers:
            self._json(404, {"error": "not found"})
            return
        if not self._authorised():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="mlscope"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "Content-Length required"})
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(length)
        try:
            self._json(200, handlers[path](body))
        except OutcomeFormatError as exc:
            self._json(400, {"error": str(exc)})
        except StoreError as exc:
            self._json(503, {"error": str(exc), "kind": exc.kind})

    def _authorised(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())
