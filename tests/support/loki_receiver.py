"""A local HTTP receiver that follows Loki's push API and checks every payload it is sent.

``POST /loki/api/v1/push`` with JSON (``application/json``) or snappy-compressed
protobuf (``application/x-protobuf``, decoded with the ``protobuf`` runtime
from a descriptor of Loki's ``logproto.PushRequest``, independent of the
encoder under test). It can be told to answer 204, 400, 429, 500, to hang, to
store a push and then hang (a push that lands but times out), or to refuse
connections, and rejects (400) payloads that break Loki's rules: label names and
count, nanosecond timestamps in order per stream, line size. A line sent twice
is stored twice. :meth:`LokiReceiver.select` and :meth:`LokiReceiver.metric`
answer LogQL of ``support.logql_subset`` over the stored lines, and ``GET /loki/api/v1/query_range``
answers a log query as Loki's HTTP API does (``query``, ``start``/``end`` in nanoseconds, ``limit``,
``direction``; a ``streams`` result), for clients that read Loki (``mlscope lineage``).
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .helpers import free_port
from .local_server import LocalServer
from .logql_subset import LogQLSubsetError, evaluate, parse_log_query

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_LABEL_NAMES = 15
MAX_LINE_BYTES = 256 * 1024
MIN_TS = 1_500_000_000 * 10**9  # 2017: anything older is not a nanosecond Unix time
QUERY_RANGE = "/loki/api/v1/query_range"


@dataclass
class Line:
    labels: dict[str, str]
    ts: int
    line: str
    metadata: dict[str, str]


@dataclass
class Request:
    at: float
    status: int
    lines: int
    body: bytes = field(repr=False)


@functools.lru_cache(maxsize=1)
def _push_request_class():
    """``logproto.PushRequest`` built from a descriptor at run time (no generated code needed)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
    from google.protobuf.message_factory import GetMessageClass

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(name="push.proto", package="logproto", syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto"])
    T = descriptor_pb2.FieldDescriptorProto
    opt, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, label, ftype, type_name in fields:
            added = m.field.add(name=fname, number=number, label=label, type=ftype)
            if type_name:
                added.type_name = type_name

    message("LabelPairAdapter", ("name", 1, opt, T.TYPE_STRING, ""), ("value", 2, opt, T.TYPE_STRING, ""))
    message("EntryAdapter", ("timestamp", 1, opt, T.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
            ("line", 2, opt, T.TYPE_STRING, ""),
            ("structuredMetadata", 3, rep, T.TYPE_MESSAGE, ".logproto.LabelPairAdapter"))
    message("StreamAdapter", ("labels", 1, opt, T.TYPE_STRING, ""),
            ("entries", 2, rep, T.TYPE_MESSAGE, ".logproto.EntryAdapter"), ("hash", 3, opt, T.TYPE_UINT64, ""))
    message("PushRequest", ("streams", 1, rep, T.TYPE_MESSAGE, ".logproto.StreamAdapter"))
    pool.Add(f)
    return GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_label_string(text: str) -> dict[str, str]:
    """``{a="1", b="x\\"y"}`` -> dict; ValueError when it is not a Prometheus label set."""
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"labels {text!r} are not a {{...}} label set")
    inner, out, pos = text[1:-1], {}, 0
    while pos < len(inner):
        m = _LABEL_PAIR.match(inner, pos)
        if not m:
            raise ValueError(f"bad label set {text!r}")
        out[m.group(1)] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), m.group(2))
        pos = m.end()
    return out


def decode(body: bytes, content_type: str) -> list[tuple[dict, list[tuple[str, str, dict]]]]:
    """Streams of a push body as ``[(labels, [(ts_string, line, metadata)])]``."""
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return [(s["stream"], [(v[0], v[1], v[2] if len(v) > 2 else {}) for v in s["values"]])
                for s in data["streams"]]
    if content_type.startswith("application/x-protobuf"):
        import cramjam

        request = _push_request_class()()
        request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
        return [(parse_label_string(s.labels),
                 [(str(e.timestamp.seconds * 10**9 + e.timestamp.nanos), e.line,
                   {p.name: p.value for p in e.structuredMetadata}) for e in s.entries])
                for s in request.streams]
    raise ValueError(f"unsupported content type {content_type!r}")


class LokiReceiver(LocalServer):
    """``mode``: "ok" (204), an int status (400, 429, 500...), "hang", "store_then_hang";
    ``refuse()``/``resume()`` the socket.

    ``script`` holds answers for the next requests (then ``mode`` applies).
    ``allowed_labels``: stream label names that may appear (None: any valid).
    """

    def __init__(self, allowed_labels: set[str] | None = None, retry_after: str | None = None) -> None:
        self.port = free_port()
        self.mode: str | int = "ok"
        self.script: list[str | int] = []
        self.retry_after = retry_after
        self.allowed_labels = allowed_labels
        self.lines: list[Line] = []
        self.requests: list[Request] = []
        self.errors: list[str] = []
        # How far (ns) a line was behind an earlier payload's line of the same stream: Loki >= 2.4 accepts
        # that within its window, but the spool must not reorder beyond thread races.
        self.out_of_order: list[int] = []
        self._last_ts: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self.release = threading.Event()  # set to end every hanging request
        self._server: ThreadingHTTPServer | None = None
        self.resume()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loki/api/v1/push"

    # -- control ------------------------------------------------------------------------------------

    def resume(self) -> None:
        """(Re)start listening on the same port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def do_GET(self) -> None:
                status, answer = (receiver.query_range(self.path) if self.path.startswith(QUERY_RANGE) else
                                  (200, {"lines": len(receiver.lines), "errors": len(receiver.errors)}))
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._listen(Handler)

    # -- the push API -------------------------------------------------------------------------------

    def _answer(self) -> str | int:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length", 0)))
        answer = self._answer()
        if answer == "store_then_hang":  # the lines are stored; the client never hears so and times out
            with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
                self._accept(body, http.headers.get("Content-Type", ""))
            answer = "hang"
        if answer == "hang":
            self.release.wait(300)
            http.close_connection = True
            with contextlib.suppress(OSError):
                http.connection.shutdown(socket.SHUT_RDWR)
            return
        status, lines = (204, 0) if answer == "ok" else (int(answer), 0)
        message = ""
        if http.path != "/loki/api/v1/push":
            status, message = 404, f"unknown path {http.path}"
        elif status == 204:
            try:
                lines = self._accept(body, http.headers.get("Content-Type", ""))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                status, message = 400, str(exc)
                self.errors.append(message)
        with self._lock:
            self.requests.append(Request(time.monotonic(), status, lines, body))
        http.send_response(status)
        if status == 429 and self.retry_after is not None:
            http.send_header("Retry-After", self.retry_after)
        http.send_header("Content-Length", str(len(message)))
        http.end_headers()
        http.wfile.write(message.encode())

    def _accept(self, body: bytes, content_type: str) -> int:
        """Validate a whole payload (all or nothing, like Loki's 400) and store its lines."""
        streams = decode(body, content_type)
        accepted: list[Line] = []
        for labels, values in streams:
            if not labels or len(labels) > MAX_LABEL_NAMES:
                raise ValueError(f"stream has {len(labels)} labels")
            for name, value in labels.items():
                if not LABEL_NAME.match(name) or not isinstance(value, str) or not value:
                    raise ValueError(f"invalid label {name}={value!r}")
                if self.allowed_labels is not None and name not in self.allowed_labels:
                    raise ValueError(f"label {name} not allowed")
            previous = 0
            for ts_text, line, metadata in values:
                if not (isinstance(ts_text, str) and ts_text.isdigit()):
                    raise ValueError(f"timestamp {ts_text!r} is not a string of nanoseconds")
                ts = int(ts_text)
                if not MIN_TS <= ts <= time.time_ns() + 3600 * 10**9:
                    raise ValueError(f"timestamp {ts} is not a plausible Unix time in nanoseconds")
                if ts < previous:
                    raise ValueError(f"timestamps out of order in stream {labels}")
                previous = ts
                if not isinstance(line, str) or len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
                    raise ValueError("line too long or not a string")
                if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
                    raise ValueError("structured metadata must be strings")
                accepted.append(Line(dict(labels), ts, line, dict(metadata)))
        with self._lock:
            for entry in accepted:
                key = tuple(sorted(entry.labels.items()))
                if entry.ts < self._last_ts.get(key, 0):
                    self.out_of_order.append(self._last_ts[key] - entry.ts)
                self._last_ts[key] = max(entry.ts, self._last_ts.get(key, 0))
            self.lines.extend(accepted)
        return len(accepted)

    # -- what was received --------------------------------------------------------------------------

    def json_lines(self) -> list[dict]:
        return [json.loads(entry.line) for entry in self.lines]

    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    def unique_lines(self) -> list[Line]:
        """One of identical entries (stream, time, line), as Loki keeps them: a push retried after a timeout
        whose first attempt the server still accepted delivers the same entries twice, and Loki drops the copy."""
        seen: set[tuple] = set()
        unique = []
        for entry in list(self.lines):
            key = (tuple(sorted(entry.labels.items())), entry.ts, entry.line)
            if key not in seen:
                seen.add(key)
                unique.append(entry)
        return unique

    def select(self, expr: str) -> list[Line]:
        """The lines a LogQL log query returns: one of identical entries, as Loki's queriers."""
        return parse_log_query(expr).select(self.unique_lines())

    def query_range(self, path: str) -> tuple[int, dict]:
        """``GET /loki/api/v1/query_range?...``: (status, body) as Loki answers a log query."""
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        now = time.time_ns()
        try:
            lines = self.select(params["query"])
            start, end = int(params.get("start", now - 3600 * 10**9)), int(params.get("end", now))
            limit = int(params.get("limit", 100))
        except (KeyError, ValueError, LogQLSubsetError) as exc:
            return 400, {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        lines = sorted((e for e in lines if start <= e.ts < end), key=lambda e: e.ts,
                       reverse=params.get("direction", "backward") == "backward")[:limit]
        streams: dict[tuple, dict] = {}
        for entry in lines:
            stream = streams.setdefault(tuple(sorted(entry.labels.items())), {"stream": entry.labels, "values": []})
            stream["values"].append([str(entry.ts), entry.line])
        return 200, {"status": "success", "data": {"resultType": "streams", "result": list(streams.values())}}

    def metric(self, expr: str, at_ns: int | None = None) -> dict[tuple[tuple[str, str], ...], float]:
        """A LogQL metric query (``count_over_time``, ``rate``, ``sum by``) at ``at_ns`` (now by default)."""
        return evaluate(expr, list(self.lines), time.time_ns() if at_ns is None else at_ns)


if __name__ == "__main__":  # a receiver in its own process (benchmarks): prints its port, serves until killed
    receiver = LokiReceiver()
    print(receiver.port, flush=True)
    threading.Event().wait()
