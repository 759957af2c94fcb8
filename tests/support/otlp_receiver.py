"""A local OTLP/HTTP trace receiver: ``POST /v1/traces`` with protobuf, decoded with the official messages.

``ExportTraceServiceRequest`` of ``opentelemetry-proto`` (the collector's own schema, independent of the
exporter under test) decodes each body (gzip and deflate bodies too); every span is kept as a
:class:`Span` with its resource's ``service.name``. ``mode``: "ok" (200 with an empty
``ExportTraceServiceResponse``), an int status (400, 500, 503...) or "hang" (no answer until closed);
:meth:`refuse` closes the listening socket. Anything that is not a valid request answers 400 and is kept
in ``errors``.
"""
from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .helpers import free_port
from .local_server import LocalServer

STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}
KIND_NAMES = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class Span:
    service: str
    scope: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def decode(body: bytes, encoding: str = "") -> list[Span]:
    """The spans of one ``ExportTraceServiceRequest`` body (DecodeError/ValueError when it is not one)."""
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                if len(s.trace_id) != 16 or len(s.span_id) != 8:
                    raise ValueError(f"span {s.name!r}: trace id of {len(s.trace_id)} bytes, span id of "
                                     f"{len(s.span_id)} (16 and 8 expected)")
                spans.append(Span(
                    str(resource.get("service.name", "")), scope_spans.scope.name, s.name, KIND_NAMES[s.kind],
                    s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.start_time_unix_nano,
                    s.end_time_unix_nano, STATUS_NAMES[s.status.code], s.status.message,
                    {kv.key: _value(kv.value) for kv in s.attributes},
                    [(e.name, {kv.key: _value(kv.value) for kv in e.attributes}) for e in s.events]))
    return spans


@dataclass
class OTLPReceiver(LocalServer):
    mode: str | int = "ok"
    port: int = field(default_factory=free_port)
    spans: list[Span] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        """The base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``); traces go to ``<endpoint>/v1/traces``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._listen(Handler)
        return self

    def traces(self) -> dict[str, list[Span]]:
        """Spans by trace id."""
        with self._lock:
            found: dict[str, list[Span]] = {}
            for span in self.spans:
                found.setdefault(span.trace_id, []).append(span)
            return found

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length", 0)))
        if self.mode == "hang":
            self.release.wait(300)
            http.close_connection = True
            with contextlib.suppress(OSError):
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        status, answer = (200, ExportTraceServiceResponse().SerializeToString()) if self.mode == "ok" \
            else (int(self.mode), b"")
        if http.path != "/v1/traces":
            status, answer = 404, f"unknown path {http.path}".encode()
        elif http.headers.get("Content-Type") != "application/x-protobuf":
            status, answer = 415, b"OTLP/HTTP protobuf expected"
        elif status == 200:
            try:
                spans = decode(body, http.headers.get("Content-Encoding", ""))
            except (DecodeError, ValueError, OSError, KeyError) as exc:
                status, answer = 400, str(exc).encode()
                self.errors.append(str(exc))
            else:
                with self._lock:
                    self.spans.extend(spans)
        with self._lock:
            self.statuses.append(status)
        http.send_response(status)
        http.send_header("Content-Type", "application/x-protobuf")
        http.send_header("Content-Length", str(len(answer)))
        http.end_headers()
        http.wfile.write(answer)


def wait_for_spans(receiver: OTLPReceiver, predicate, timeout: float = 20.0) -> list[Span]:
    """Poll until ``predicate(spans)`` is truthy; returns the spans then (fails with what arrived)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver._lock:
            spans = list(receiver.spans)
        if predicate(spans):
            return spans
        time.sleep(0.1)
    raise AssertionError(f"no matching spans within {timeout}s: {len(receiver.spans)} received, "
                         f"statuses {receiver.statuses[-5:]}, errors {receiver.errors[-3:]}")
