"""Per-record guarantees of the Loki handler: one timestamp per record, and a bad record costs only itself."""
from __future__ import annotations

import calendar
import json
import logging
import os
import random
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from mlscope.logs import HttpTransport
from support.logs_helpers import sample
from support.loki_receiver import LokiReceiver

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nearest_us(created: float) -> int:
    """The reference: the microsecond nearest to the float's exact value (exact rational arithmetic)."""
    return round(Fraction(created) * 10**6)


def rfc3339_us(text: str) -> int:
    """Microseconds since the epoch of ``YYYY-mm-ddTHH:MM:SS.ffffffZ``, parsed by the standard library."""
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(parsed.timetuple()) * 10**6 + parsed.microsecond


def record(created: float, seq: int) -> logging.LogRecord:
    rec = logging.LogRecord("mlscope.test.ts", logging.INFO, __file__, 1, "at", (), None)
    rec.created, rec.seq = created, seq  # type: ignore[attr-defined]
    return rec


def test_line_ts_and_entry_timestamp_are_one_rounding_of_the_record_time(receiver: LokiReceiver,
                                                                         make_handler) -> None:
    rng = random.Random(18)
    now = time.time() - 600
    created = [now + rng.uniform(0, 300) for _ in range(2000)]
    created += [float(int(now)) + f for f in (0.9999996, 0.9999995, 0.0000004, 0.0000005, 0.5)]  # carries, ties
    handler, _, _ = make_handler(batch_lines=10_000)
    for seq, value in enumerate(created):
        handler.handle(record(value, seq))
    assert handler.drain(10) and len(receiver.lines) == len(created)
    mismatched = 0
    for entry in receiver.lines:
        line = json.loads(entry.line)
        expected = nearest_us(created[line["seq"]])
        mismatched += rfc3339_us(line["ts"]) * 1000 != entry.ts
        assert (rfc3339_us(line["ts"]), entry.ts) == (expected, expected * 1000), (created[line["seq"]], line["ts"])
        assert line["ts"] == (EPOCH + timedelta(microseconds=expected)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert mismatched == 0


CTX = {"model": "churn", "model_version": "3.2.0"}
FILE = os.fsdecode(b"batch-\xff.csv")       # 'batch-\udcff.csv': what os.listdir() gives for a non-UTF-8 name
REQUEST = os.fsdecode(b"req-\xfe")
MODEL = os.fsdecode(b"churn-\xfd")


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_a_record_with_lone_surrogates_costs_no_other_record(receiver: LokiReceiver, make_handler,
                                                             encoding: str) -> None:
    handler, logger, registry = make_handler(HttpTransport(receiver.url, encoding=encoding), batch_lines=1000,
                                             structured_metadata=("request_id",), flush_interval=60)
    for i in range(501):
        extra = {**CTX, "request_id": f"r-{i}", "seq": i}
        if i == 100:
            extra["file"] = FILE
        elif i == 200:
            extra["request_id"] = REQUEST
        elif i == 300:
            extra["model"] = MODEL
        logger.info("read", extra=extra)
    assert handler.drain(10)
    assert len(receiver.lines) == 501 and receiver.errors == []  # one batch, every line
    for entry in receiver.lines:  # what went out is valid UTF-8 (the strict codec is the reference)
        entry.line.encode("utf-8")
        for text in [*entry.labels.values(), *entry.metadata.values()]:
            text.encode("utf-8")
    lines = {line["seq"]: line for line in receiver.json_lines()}
    assert (lines[100]["file"], lines[200]["request_id"], lines[300]["model"]) == (FILE, REQUEST, MODEL)  # lossless
    by_seq = {json.loads(e.line)["seq"]: e for e in receiver.lines}
    assert by_seq[200].metadata == {"request_id": "req-\ufffd"}
    # A model label that is not valid text folds into the label guard's __invalid__, as on /metrics.
    assert by_seq[300].labels["model"] == "__invalid__"
    assert sample(registry, "mlscope_log_lines_escaped_total", handler="loki", reason="lone_surrogate") == 3
    assert sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="encode_error") == 0
    assert sample(registry, "mlscope_log_lines_sent_total", handler="loki") == 501


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_an_entry_that_cannot_be_encoded_is_dropped_alone(receiver: LokiReceiver, make_handler,
                                                          encoding: str) -> None:
    handler, logger, registry = make_handler(HttpTransport(receiver.url, encoding=encoding), batch_lines=1000,
                                             flush_interval=60)
    for i in range(250):
        logger.info("before", extra={"seq": i})
    labels = (("app", "mlscope"), ("level", "info"))
    handler._queue.append((labels, (time.time_ns(), "past the formatter \udcff", ())))  # no formatter escaped it
    for i in range(250, 500):
        logger.info("after", extra={"seq": i})
    assert handler.drain(10)
    assert sorted(line["seq"] for line in receiver.json_lines()) == list(range(500))
    assert sample(registry, "mlscope_log_lines_dropped_total", handler="loki", reason="encode_error") == 1
