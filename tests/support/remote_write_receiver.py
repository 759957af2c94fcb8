"""A Prometheus remote-write receiver for tests: snappy-compressed protobuf ``prometheus.WriteRequest``s in, series out.

The protobuf decoder is hand-written for the few messages of the remote-write 1.0 wire format
(prometheus/prompb/remote.proto and types.proto), so the tests need no generated code and no protoc:

    WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; repeated Exemplar exemplars = 3;
                   repeated Histogram histograms = 4; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }            // milliseconds
    Exemplar     { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }

Unknown fields are skipped by wire type, as protobuf requires; a truncated or malformed message raises ValueError.
"""
from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cramjam

from mlscope.stack import servers

Labels = tuple[tuple[str, str], ...]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of every field of one message: ints, 8/4 raw bytes, or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {number})")
        if pos > len(buf):
            raise ValueError(f"field {number} runs past the end of the message")
        yield number, wire, value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _double(raw: bytes) -> float:
    return float(struct.unpack("<d", raw)[0])


def _label(buf: bytes) -> tuple[str, str]:
    name = value = ""
    for number, _, raw in fields(buf):
        if number == 1:
            name = raw.decode()
        elif number == 2:
            value = raw.decode()
    return name, value


@dataclass
class Series:
    labels: dict[str, str]
    samples: list[tuple[int, float]] = field(default_factory=list)  # (ms, value)
    exemplars: list[tuple[dict[str, str], float, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.labels["__name__"]


def decode_write_request(body: bytes) -> list[Series]:
    """The time series of one (uncompressed) WriteRequest."""
    out = []
    for number, wire, raw in fields(body):
        if number != 1 or wire != 2:
            continue
        series = Series({})
        for n, w, value in fields(raw):
            if n == 1 and w == 2:
                name, label_value = _label(value)
                series.labels[name] = label_value
            elif n == 2 and w == 2:
                sample = {k: v for k, _, v in fields(value)}
                series.samples.append((_int64(sample.get(2, 0)), _double(sample.get(1, b"\0" * 8))))
            elif n == 3 and w == 2:
                ex_labels, ex_value, ex_ts = {}, 0.0, 0
                for k, _, v in fields(value):
                    if k == 1:
                        key, label_value = _label(v)
                        ex_labels[key] = label_value
                    elif k == 2:
                        ex_value = _double(v)
                    elif k == 3:
                        ex_ts = _int64(v)
                series.exemplars.append((ex_labels, ex_value, ex_ts))
        if "__name__" not in series.labels:
            raise ValueError("a time series without __name__")
        out.append(series)
    return out


class RemoteWriteReceiver:
    """``POST /receive`` on 127.0.0.1: keeps every decoded series and the request headers; 400 on a bad body."""

    def __init__(self) -> None:
        self.port = servers.free_port()
        self.series: dict[Labels, Series] = {}
        self.headers: list[Message] = []  # case-insensitive look-ups (Go sends X-Scope-Orgid)
        self.rejected = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    if self.headers.get("Content-Encoding") != "snappy":
                        raise ValueError("not snappy-encoded")
                    received = decode_write_request(bytes(cramjam.snappy.decompress_raw(body)))
                except Exception:
                    outer.rejected += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                outer._add(self.headers, received)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _add(self, headers: Message, received: list[Series]) -> None:
        with self._lock:
            self.headers.append(headers)
            for series in received:
                key = tuple(sorted(series.labels.items()))
                known = self.series.setdefault(key, Series(dict(series.labels)))
                known.samples += series.samples
                known.exemplars += series.exemplars

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receive"

    def find(self, name: str, **labels: str) -> list[Series]:
        with self._lock:
            return [s for s in self.series.values()
                    if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def names(self) -> set[str]:
        with self._lock:
            return {s.name for s in self.series.values()}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
