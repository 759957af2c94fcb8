"""The test receiver itself: it accepts what Loki accepts and rejects what Loki rejects."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from mlscope.logs.payload import encode_protobuf
from support.loki_receiver import LokiReceiver, parse_label_string

NOW = time.time_ns()


def post(receiver: LokiReceiver, body: bytes, content_type: str = "application/json") -> int:
    request = urllib.request.Request(receiver.url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def payload(labels: dict, values: list) -> bytes:
    return json.dumps({"streams": [{"stream": labels, "values": values}]}).encode()


@pytest.fixture
def rx():
    r = LokiReceiver(allowed_labels={"app", "level"})
    yield r
    r.close()


def test_accepts_a_valid_json_push(rx: LokiReceiver) -> None:
    assert post(rx, payload({"app": "a", "level": "info"}, [[str(NOW), "x"], [str(NOW + 1), "y", {"k": "v"}]])) == 204
    assert [(e.line, e.metadata) for e in rx.lines] == [("x", {}), ("y", {"k": "v"})]


@pytest.mark.parametrize("labels, values, reason", [
    ({"app": "a", "request_id": "r"}, [[str(NOW), "x"]], "not allowed"),
    ({"app": "a", "bad-name": "x"}, [[str(NOW), "x"]], "invalid label"),
    ({}, [[str(NOW), "x"]], "0 labels"),
    ({"app": "a"}, [[str(NOW // 10**9), "x"]], "plausible"),          # seconds, not nanoseconds
    ({"app": "a"}, [[NOW, "x"]], "string of nanoseconds"),             # a number, not a string
    ({"app": "a"}, [[str(NOW), "x"], [str(NOW - 1), "y"]], "out of order"),
    ({"app": "a"}, [[str(NOW), "x" * (256 * 1024 + 1)]], "too long"),
])
def test_rejects_what_loki_rejects(rx: LokiReceiver, labels: dict, values: list, reason: str) -> None:
    assert post(rx, payload(labels, values)) == 400
    assert reason in rx.errors[-1]
    assert rx.lines == []


def test_decodes_protobuf_with_an_independent_decoder(rx: LokiReceiver) -> None:
    body = encode_protobuf({(("app", 'a"b'), ("level", "info")): [(NOW, "é line", (("request_id", "r1"),))]})
    assert post(rx, body, "application/x-protobuf") == 204
    (entry,) = rx.lines
    assert (entry.labels, entry.ts, entry.line, entry.metadata) == (
        {"app": 'a"b', "level": "info"}, NOW, "é line", {"request_id": "r1"})


def test_answers_as_told_and_refuses_connections(rx: LokiReceiver) -> None:
    good = payload({"app": "a"}, [[str(NOW), "x"]])
    rx.script = [429, 500, 400]
    assert [post(rx, good) for _ in range(4)] == [429, 500, 400, 204]
    rx.refuse()
    with pytest.raises(urllib.error.URLError):
        post(rx, good)
    rx.resume()
    assert post(rx, good) == 204


def test_parse_label_string() -> None:
    assert parse_label_string('{a="1", b="x\\"y"}') == {"a": "1", "b": 'x"y'}
    with pytest.raises(ValueError, match="are not a"):
        parse_label_string('a="1"')
