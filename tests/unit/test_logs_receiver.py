"""The test receiver itself: it accepts what Loki accepts and rejects what Loki rejects."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from mlscope.logs.payload import encode_protobuf
from support.helpers import post_status
from support.logql_subset import LogQLSubsetError, evaluate, parse_log_query
from support.loki_receiver import Line, LokiReceiver, parse_label_string

NOW = time.time_ns()


def post(receiver: LokiReceiver, body: bytes, content_type: str = "application/json") -> int:
    return post_status(receiver.url, body, {"Content-Type": content_type})


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


def stored(labels: dict, entries: list[tuple[int, str, dict]]) -> list[Line]:
    return [Line(dict(labels), ts, line, metadata) for ts, line, metadata in entries]


def test_logql_subset_selects_by_json_field_label_filter_and_structured_metadata() -> None:
    app = {"app": "mlscope", "level": "info"}
    lines = stored(app, [(NOW + i, json.dumps({"request_id": rid, "n": {"k": i}, "level": "x"}), md)
                         for i, (rid, md) in enumerate([("abc-1", {"request_id": "abc-1"}), ("abc-10", {}),
                                                        ("xabc-1", {}), ("abc-1", {})])])
    lines += stored({"app": "other"}, [(NOW, '{"request_id":"abc-1"}', {})])
    lines += stored(app, [(NOW + 9, "not json abc-1", {})])

    def sel(expr: str) -> list[int]:
        return [lines.index(e) for e in parse_log_query(expr).select(lines)]

    assert sel('{app="mlscope"} |= "abc-1"') == [0, 1, 2, 3, 5]                # a substring: other ids too
    assert sel('{app="mlscope"} | json | request_id="abc-1"') == [0, 3]        # the field, exactly
    assert sel('{app="mlscope"} | json | request_id=`abc-1` | n_k="3"') == [3]  # nested keys joined with _
    assert sel('{app="mlscope"} | json | request_id=~"abc-1.*"') == [0, 1, 3]  # regexes anchored
    assert sel('{app="mlscope"} | json | request_id!="abc-1"') == [1, 2, 5]
    assert sel('{app="mlscope"} | request_id="abc-1"') == [0]                  # structured metadata, no parser
    assert sel('{app="mlscope"} | json | level_extracted="x"') == [0, 1, 2, 3]  # a stream label's name clashes
    assert sel('{app="mlscope"} | json | __error__="JSONParserErr"') == [5]
    assert sel('{app=~"mlscope|other"} != "xabc" |~ "abc-1\\"" | json | request_id="abc-1"') == [0, 3, 4]
    assert sel('{app!="mlscope"}') == [4]


def test_logql_subset_counts_and_rates_over_a_range() -> None:
    start = NOW - 60 * 10**9
    lines = stored({"app": "a", "level": "info"}, [(start + i * 10**7, "x", {}) for i in range(1, 6001)])  # 100/s
    lines += stored({"app": "a", "level": "error"}, [(start + i * 10**9, "y", {}) for i in range(1, 61)])  # 1/s
    at = start + 60 * 10**9  # ranges are (at - range, at], as Loki's
    assert evaluate('sum by (level) (count_over_time({app="a"} [30s]))', lines, at) == {
        (("level", "info"),): 3000, (("level", "error"),): 30}
    assert evaluate('sum by (level) (rate({app="a"} [30s]))', lines, at) == {
        (("level", "info"),): 100, (("level", "error"),): 1}
    assert evaluate('sum(rate({app="a"} |= "y" [1m]))', lines, at) == {(): 1}


@pytest.mark.parametrize("expr", ['{app="a"} | logfmt', 'bytes_over_time({app="a"}[1m])', '{}', 'up',
                                  '{app="a"} | json | n > 3', '{app="a"} |= "x" extra'])
def test_logql_subset_refuses_what_it_does_not_evaluate(expr: str) -> None:
    run = (lambda: evaluate(expr, [], NOW)) if "_over_time" in expr else (lambda: parse_log_query(expr))
    with pytest.raises(LogQLSubsetError):
        run()


def test_a_push_stored_then_hung_lands_and_times_out(rx: LokiReceiver) -> None:
    rx.script = ["store_then_hang"]
    request = urllib.request.Request(rx.url, data=payload({"app": "a"}, [[str(NOW), "x"]]),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(request, timeout=0.3)
    assert [e.line for e in rx.lines] == ["x"]
    assert post(rx, payload({"app": "a"}, [[str(NOW), "x"]])) == 204  # the client's retry: stored twice
    assert len(rx.lines) == 2 and len(rx.select('{app="a"}')) == 1   # log queries merge identical entries
    assert rx.metric('count_over_time({app="a"}[1h])', NOW + 1) == {(("app", "a"),): 2}  # metric queries do not
