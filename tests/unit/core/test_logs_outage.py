"""No line lost across a real Loki outage and its recovery: the disk spool carries them.

The outage is 6 s by default: refused connections (3 s), then 503s (1.5 s), then hanging pushes (1.5 s), each
several backoffs long (at most 0.5 s each, a hanging push times out after 0.5 s), so the handler spools and
retries for each reason (asserted below). ``MLSCOPE_LOKI_OUTAGE_S=60`` runs the one-minute outage of the
original requirement with the same assertions.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from mlscope.logs import HttpTransport
from support.logs_helpers import sample
from support.loki_receiver import LokiReceiver

OUTAGE_S = float(os.environ.get("MLSCOPE_LOKI_OUTAGE_S", "6"))
RATE = 50  # lines per second, from two threads


@pytest.mark.slow
def test_no_line_lost_across_an_outage(receiver: LokiReceiver, make_handler, tmp_path: Path) -> None:
    handler, logger, registry = make_handler(
        HttpTransport(receiver.url, read_timeout=0.5), spool_dir=tmp_path, memory_bytes=4_096, batch_lines=50,
        flush_interval=0.2, min_backoff=0.1, max_backoff=0.5)
    stop = threading.Event()
    sent: list[str] = []
    peak_spool = [0.0]

    def produce(worker: int) -> None:
        i = 0
        while not stop.is_set():
            seq = f"{worker}-{i}"
            logger.info("tick", extra={"model": "m", "model_version": "1", "seq": seq})
            sent.append(seq)
            i += 1
            peak_spool[0] = max(peak_spool[0], sample(registry, "mlscope_log_spool_bytes", handler="loki"))
            time.sleep(2 / RATE)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    time.sleep(1)                      # healthy
    receiver.refuse()                  # Loki down: connections refused...
    time.sleep(OUTAGE_S * 0.5)
    receiver.resume()
    receiver.mode = 503                # ...then up but not ready...
    time.sleep(OUTAGE_S * 0.25)
    receiver.mode = "hang"             # ...then hanging (pushes time out)
    time.sleep(OUTAGE_S * 0.25)
    receiver.mode = "ok"               # recovered
    receiver.release.set()
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    assert handler.drain(60), "spool not drained within 60 s of recovery"

    delivered = [json.loads(entry.line)["seq"] for entry in receiver.lines]
    assert len(sent) > RATE * OUTAGE_S * 0.8
    assert sorted(delivered) == sorted(sent), "lost or duplicated lines"
    assert receiver.errors == []
    # Two producer threads may race by microseconds around a batch boundary; an outage must not reorder.
    assert all(lag < 10**6 for lag in receiver.out_of_order), receiver.out_of_order
    assert peak_spool[0] > 0, "the outage never reached the disk spool"
    assert sample(registry, "mlscope_log_spool_bytes", handler="loki") == 0
    retries = {r: sample(registry, "mlscope_log_push_retries_total", handler="loki", reason=r)
               for r in ("connection", "http_5xx", "timeout")}
    assert sum(retries.values()) > 3 and all(retries.values()), retries  # every phase of the outage was met
    dropped = registry.get_sample_value("mlscope_log_lines_dropped_total", {"handler": "loki", "reason": "queue_full"})
    assert dropped is None
