"""The small HTTP servers mlscope runs beside a service (the traffic split's control endpoint, the demo's):
one complete response per request, and a threaded server on its own daemon thread. Standard library only."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    """Send one complete response on ``handler``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve_in_thread(handler: type[BaseHTTPRequestHandler], port: int, addr: str, name: str) -> ThreadingHTTPServer:
    """A threaded server of ``handler`` on ``addr:port``, serving on a daemon thread (``shutdown()`` stops it)."""
    server = ThreadingHTTPServer((addr, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server
