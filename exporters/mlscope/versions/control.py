"""A small authenticated control endpoint for a service's traffic splits (what ``mlscope rollback`` calls).

Every request needs ``Authorization: Bearer <token>`` (compared in constant time); answers are JSON:

* ``GET /traffic``: every model's shares.
* ``PUT /traffic/<model>`` ``{"weights": {"1.0": 9, "1.1": 1}}``: set weights (an operator, a promotion).
* ``POST /traffic/<model>/rollback`` ``{"candidate": "1.1", "baseline": "1.0", "fingerprint": "..."}``: the
  candidate's traffic goes to the baseline; idempotent (``changed`` says whether anything moved).

401: no or a wrong token; 404: a model the service does not split; 409: a version not in its split; 400: a
body that is not what is asked for.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._http import bearer_authorised, reply, serve_in_thread
from .split import TrafficSplit, UnknownVersion

log = logging.getLogger("mlscope.versions")
MAX_BODY_BYTES = 65536
PREFIX = "/traffic"


def control_response(splits: Mapping[str, TrafficSplit], token: str, method: str, path: str,
                     authorization: str | None, body: bytes, *, client: str = "") -> tuple[int, dict[str, Any]]:
    """Answer one control request: (HTTP status, JSON body). Independent of the HTTP server; a refused token is
    logged (a warning on the ``mlscope.versions`` logger, with the ``client`` address when given)."""
    if not bearer_authorised(token, authorization):
        log.warning("traffic control: refused %s %s from %s (missing or wrong bearer token)", method,
                    path.split("?", 1)[0], client or "a client")
        return 401, {"error": "missing or wrong bearer token"}
    parts = path.split("?", 1)[0].rstrip("/").split("/")[1:]
    if parts[:1] != [PREFIX.strip("/")]:
        return 404, {"error": f"not found: {path}"}
    if len(parts) == 1 and method == "GET":
        return 200, {"models": {name: split.shares() for name, split in splits.items()}}
    if len(parts) < 2 or parts[1] not in splits:
        return 404, {"error": f"no traffic split for model {parts[1] if len(parts) > 1 else ''!r}"}
    split = splits[parts[1]]
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise ValueError("the body must be a JSON object")
        if len(parts) == 2 and method == "PUT":
            change = split.set_weights(request["weights"], reason=str(request.get("reason", "set")),
                                       fingerprint=str(request.get("fingerprint", "")))
        elif len(parts) == 3 and parts[2] == "rollback" and method == "POST":
            change = split.rollback(str(request["candidate"]), str(request["baseline"]),
                                    fingerprint=str(request.get("fingerprint", "")))
        else:
            return 404, {"error": f"not found: {method} {path}"}
    except UnknownVersion as exc:
        return 409, {"error": str(exc)}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return 400, {"error": f"bad request: {exc!r}"}
    return 200, {"model": split.model, "changed": change.changed, "weights": change.weights,
                 "reason": change.reason}


def serve_control(splits: Mapping[str, TrafficSplit], token: str, port: int,
                  addr: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve :func:`control_response` on ``addr:port`` in a daemon thread (``server.shutdown()`` stops it)."""
    if not token:
        raise ValueError("the control endpoint needs a non-empty bearer token")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
            status, answer = control_response(splits, token, self.command, self.path,
                                              self.headers.get("Authorization"), self.rfile.read(length),
                                              client=self.client_address[0])
            reply(self, status, json.dumps(answer).encode(), "application/json")

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return serve_in_thread(Handler, port, addr, "mlscope-traffic-control")
