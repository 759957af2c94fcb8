"""The small HTTP servers mlscope runs beside a service (the traffic split's control endpoint, the demo's):
one complete response per request, and a threaded server on its own daemon thread. Standard library only."""
from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("mlscope.http")
_lock = threading.Lock()
_disconnects = 0


def bearer_authorised(token: str, header: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    return bool(token) and scheme == "Bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def client_disconnects() -> int:
    """How many answers found their client gone (a scrape that timed out, a closed browser tab) in this process."""
    return _disconnects


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
          headers: Mapping[str, str] | None = None) -> None:
    """Send one complete response on ``handler`` (with ``headers`` besides its type and length); a client that has
    gone away is counted and logged at debug level, not a traceback on the console (its answer has no one to go
    to)."""
    global _disconnects
    try:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError) as exc:
        with _lock:
            _disconnects += 1
        handler.close_connection = True
        log.debug("%s %s: the client disconnected before its answer (%s)", handler.command, handler.path, exc)


def serve_in_thread(handler: type[BaseHTTPRequestHandler], port: int, addr: str, name: str) -> ThreadingHTTPServer:
    """A threaded server of ``handler`` on ``addr:port``, serving on a daemon thread (``shutdown()`` stops it)."""
    server = ThreadingHTTPServer((addr, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
