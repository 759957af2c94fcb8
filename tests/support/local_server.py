"""The local HTTP servers the receivers of the tests run on: one thread, a port kept across restarts."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """Serves ``port`` on 127.0.0.1 from a daemon thread. :meth:`refuse` closes the listening socket
    (connections refused) and :meth:`close` also ends hanging requests (they wait on ``release``).
    A subclass sets ``port``, ``release`` and ``_server = None`` before :meth:`_listen`."""

    port: int
    release: threading.Event
    _server: ThreadingHTTPServer | None

    def _listen(self, handler: type[BaseHTTPRequestHandler]) -> None:
        for _ in range(50):
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"port {self.port} could not be bound again")
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def refuse(self) -> None:
        """Close the listening socket: connections are refused until listening again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.release.set()
        self.refuse()
