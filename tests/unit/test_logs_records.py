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
