"""Loki push bodies: the push API's JSON (batched, record timestamps, structured metadata) and snappy protobuf.

The JSON shape is the one python-logging-loki's ``LokiEmitterV1`` sends for a
single line (the tests compare with it); here a push carries many lines, each
stamped with its record's time instead of the send time, optionally with
structured metadata, and Loki's own protobuf encoding is available too.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

Labels = tuple[tuple[str, str], ...]
Metadata = tuple[tuple[str, str], ...]
Entry = tuple[int, str, Metadata]  # (unix ns, line, structured metadata)
Encoding = Literal["json", "protobuf"]

CONTENT_TYPES: dict[str, str] = {"json": "application/json", "protobuf": "application/x-protobuf"}


def group(entries: Iterable[tuple[Labels, Entry]]) -> dict[Labels, list[Entry]]:
    """Entries by stream, each stream sorted by timestamp (stable: equal times keep their order)."""
    streams: dict[Labels, list[Entry]] = {}
    for labels, entry in entries:
        streams.setdefault(labels, []).append(entry)
    for values in streams.values():
        values.sort(key=lambda e: e[0])
    return streams


_string = json.encoder.encode_basestring  # the C JSON string encoder (no ASCII escaping)


def encode_json(streams: Mapping[Labels, Sequence[Entry]]) -> bytes:
    """``{"streams": [{"stream": {labels}, "values": [["<ns>", "<line>"(, {metadata})]]}]}``.

    Written by hand around the C string encoder: the lines dominate the body
    and need nothing but string escaping, so no per-entry lists are built.
    """
    parts = []
    for labels, values in streams.items():
        entries = ",".join(
            f'["{ts}",{_string(line)},{json.dumps(dict(md), ensure_ascii=False)}]' if md
            else f'["{ts}",{_string(line)}]'
            for ts, line, md in values)
        parts.append(f'{{"stream":{json.dumps(dict(labels), ensure_ascii=False)},"values":[{entries}]}}')
    return ('{"streams":[' + ",".join(parts) + "]}").encode("utf-8")  # valid UTF-8 or an error, as protobuf


# -- protobuf (logproto.PushRequest), hand-encoded: four small messages need no protobuf runtime ----------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def label_string(labels: Labels) -> str:
    """The Prometheus label-set text Loki's protobuf push expects: ``{a="1", b="x\\"y"}``."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ", ".join(f'{k}="{esc(v)}"' for k, v in labels) + "}"


def encode_protobuf(streams: Mapping[Labels, Sequence[Entry]]) -> bytes:
    """A snappy-compressed ``logproto.PushRequest`` (needs the ``cramjam`` package)."""
    import cramjam

    out = bytearray()
    for labels, values in streams.items():
        stream = bytearray(_field(1, label_string(labels).encode()))
        for ts, line, md in values:
            timestamp = _int_field(1, ts // 1_000_000_000) + _int_field(2, ts % 1_000_000_000)
            entry = _field(1, timestamp) + _field(2, line.encode())
            for name, value in md:
                entry += _field(3, _field(1, name.encode()) + _field(2, value.encode()))
            stream += _field(2, entry)
        out += _field(1, bytes(stream))
    return bytes(cramjam.snappy.compress_raw(bytes(out)))


def encode(streams: Mapping[Labels, Sequence[Entry]], encoding: Encoding) -> bytes:
    return encode_json(streams) if encoding == "json" else encode_protobuf(streams)


# -- Loki's line size limit (limits_config.max_line_size, 256 KB by default) -------------------------------

OversizeAction = Literal["truncate", "split"]


def _cut(data: bytes, size: int) -> str:
    """The longest prefix of UTF-8 ``data`` within ``size`` bytes that does not split a character."""
    return data[:size].decode("utf-8", "ignore")


def fit_line(line: str, max_bytes: int, action: OversizeAction) -> list[str]:
    """``line`` as one or more lines of at most ``max_bytes`` UTF-8 bytes.

    ``truncate`` keeps the start and appends ``…[truncated N bytes]``;
    ``split`` cuts it into consecutive parts (concatenated in order they give
    the original line back; the parts of a JSON line are not JSON each).
    """
    if len(line) * 4 <= max_bytes:  # cannot be over the limit, whatever the characters
        return [line]
    data = line.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return [line]
    if action == "truncate":
        marker = f"…[truncated {len(data)} bytes]"
        return [_cut(data, max_bytes - len(marker.encode())) + marker]
    parts = []
    while data:
        part = _cut(data, max_bytes)
        parts.append(part)
        data = data[len(part.encode("utf-8", "surrogatepass")):]
    return parts
