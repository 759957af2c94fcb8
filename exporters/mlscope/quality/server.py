"""The quality exporter's HTTP server: ``/metrics``, ``POST /outcomes``, ``POST /predictions``, ``/versions``.

Binds 127.0.0.1 unless told otherwise. With a token, POSTs need
``Authorization: Bearer <token>`` (compared in constant time); ``/metrics``
and ``GET /versions`` stay open like every Prometheus target. Bodies are
limited in size; a store failure answers 503 with the reason and nothing of
that batch is counted. A batch of predictions naming a version that is not
registered (``POST /versions``) is refused whole with 422, so it can be sent
again once the version is registered.
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

from .._http import reply
from .core import Quality
from .items import PredictionItem
from .outcomes import OutcomeFormatError, parse_batch
from .registration import RegistrationError, parse, register, unknown_version_error, unknown_versions
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


def _json_body(body: bytes, expected: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise OutcomeFormatError(f"expected {expected}") from None


def _predictions(server: QualityServer, body: bytes) -> tuple[int, dict[str, Any]]:
    """Store ``{"predictions": [{"model", "model_version", "request_id", "output", "proba"?, "segment"?,
    "time"?}]}`` sent by replicas on other hosts; every version must be registered, else 422 and none stored."""
    data = _json_body(body, '{"predictions": [...]}')
    items = data.get("predictions") if isinstance(data, dict) else None
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
    unknown = unknown_versions(server.quality, [row.key for row in rows])
    if unknown:
        missing = set(unknown)
        server.quality.accounting.drop("prediction", "unknown_version", sum(row.key in missing for row in rows))
        return 422, {"error": unknown_version_error(unknown), "stored": 0, "received": len(items),
                     "unknown_versions": [{"model": m, "model_version": v} for m, v in unknown]}
    # store_predictions counts unusable ids (invalid_request_id) and duplicates (duplicate_request_id).
    return 200, {"stored": server.quality.store_predictions(rows), "received": len(items)}


def _register(server: QualityServer, body: bytes) -> tuple[int, dict[str, Any]]:
    """``POST /versions {"model", "model_version", "task"?, "classes"?, "baseline"?, "windows"?}``."""
    try:
        answer = register(server.quality, parse(_json_body(body, "a JSON object")))
    except (RegistrationError, OutcomeFormatError) as exc:
        server.quality.accounting.drop("version", "conflict" if getattr(exc, "status", 400) == 409 else "invalid")
        raise
    return (201 if answer["created"] else 200), answer


def _versions(server: QualityServer) -> dict[str, Any]:
    """``GET /versions``: every registered version and the exporter's windows."""
    versions = server.quality.store.versions()
    return {"windows": list(server.quality.windows),
            "versions": [{"model": i.model, "model_version": i.model_version, "task": i.task,
                          "classes": list(i.classes) if i.classes is not None else None, "baseline": i.baseline}
                         for _, i in sorted(versions.items())]}


class _Handler(BaseHTTPRequestHandler):
    server: QualityServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        reply(self, status, body, content_type)  # a client gone before its answer: counted, no traceback

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.server.registry), content_type)
        elif path == "/versions":
            self._json(200, _versions(self.server))
        elif path in ("/-/healthy", "/healthz"):
            self._send(200, b"ok\n", "text/plain")
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        handlers = {"/outcomes": lambda body: (200, self.server.quality.record_outcomes(parse_batch(body))),
                    "/predictions": lambda body: _predictions(self.server, body),
                    "/versions": lambda body: _register(self.server, body)}
        if path not in handlers:
            self._json(404, {"error": "not found"})
            return
        if not self._authorised():
            reply(self, 401, b"", "text/plain", {"WWW-Authenticate": 'Bearer realm="mlscope"'})
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
            self._json(*handlers[path](body))
        except RegistrationError as exc:
            self._json(exc.status, {"error": str(exc)})
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
