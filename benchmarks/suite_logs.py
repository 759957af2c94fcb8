"""Suite `logs`: caller cost of a shipped log record against the standard library, and delivery rate."""
from __future__ import annotations

import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from common import Row, per_call_us
from mlscope import ModelMonitor

HERE = Path(__file__).resolve().parent


class _ReceiverProcess:
    """The tests' Loki push receiver in its own process (its JSON parsing must not share our GIL)."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-m", "support.loki_receiver"],
                                     stdout=subprocess.PIPE, text=True, cwd=HERE.parent / "tests")
        assert self.proc.stdout is not None  # stdout=PIPE
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/loki/api/v1/push"

    def lines(self) -> int:
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as response:
            stats = json.load(response)
        if stats["errors"]:
            raise RuntimeError(f"the receiver rejected {stats['errors']} payloads")
        return int(stats["lines"])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"mlscope.bench.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def suite_logs(quick: bool) -> list[Row]:
    import json
    import queue
    from logging.handlers import QueueHandler, QueueListener

    from logging_loki import LokiHandler as UpstreamLokiHandler

    from mlscope.logs import LokiHandler, PredictionLog

    class StdlibJson(logging.Formatter):
        """The reference: the same keys, formatted with the standard library only."""

        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({"ts": self.formatTime(record), "level": record.levelname.lower(),
                               "event": record.msg, "model": record.model, "model_version": record.model_version,
                               "request_id": record.request_id, "data_batch_id": None,
                               "message": record.getMessage(), "latency_seconds": record.latency_seconds})

    number, repeat = (2_000, 5) if quick else (5_000, 9)
    extra = {"model": "churn", "model_version": "3.2.0", "request_id": "ab12cd34-1f", "latency_seconds": 0.0123}
    rx = _ReceiverProcess()
    rows: list[Row] = []
    try:
        # Queue and in-memory spool large enough for the whole burst: the delivery row measures throughput, not
        # the bounded-memory policy (which drops the oldest bodies beyond `memory_bytes`, counted).
        ours = LokiHandler(rx.url, queue_lines=10**7, memory_bytes=512 << 20, flush_interval=0.2,
                           registry=CollectorRegistry())
        ours_log = _logger("ours", ours)

        q: queue.Queue = queue.Queue()
        stdlib = QueueHandler(q)
        stdlib.setFormatter(StdlibJson())
        stdlib_log = _logger("stdlib", stdlib)
        listener = QueueListener(q, logging.NullHandler())
        listener.start()

        def drain_queue() -> None:
            while not q.empty():
                time.sleep(0.001)

        def chunk(logger: logging.Logger) -> float:
            start = time.perf_counter()
            for _ in range(number):
                logger.info("scored", extra=extra)
            return (time.perf_counter() - start) / number * 1e6

        # Chunks alternate between the two handlers (machine load hits both alike); each chunk's backlog
        # is delivered before the next, so every chunk starts from an empty queue.
        ours_runs, ref_runs = [], []
        for _ in range(repeat):
            ours_runs.append(chunk(ours_log))
            ours.drain(60)
            ref_runs.append(chunk(stdlib_log))
            drain_queue()
        listener.stop()
        ours_us, ref_us = statistics.median(ours_runs), statistics.median(ref_runs)
        rows.append(Row("logs", "LokiHandler: caller cost of one shipped record (JSON formatting included)",
                        ours_us, "us", "stdlib QueueHandler + JSON formatter", ref_us, "<= 1.0x"))

        upstream = UpstreamLokiHandler(rx.url, tags={"app": "bench"}, version="1")
        upstream_log = _logger("upstream", upstream)
        up_number = 100 if quick else 300
        up_us = per_call_us(lambda: upstream_log.info("scored", extra=extra), up_number, 3)
        rows.append(Row("logs", "python-logging-loki LokiHandler (sync POST per record), caller cost",
                        up_us, "us", "mlscope LokiHandler", ours_us))

        # Delivery: records per second from the first log call to the last line acknowledged by the receiver.
        total = 20_000 if quick else 100_000
        before = rx.lines()
        start = time.perf_counter()
        for _ in range(total):
            ours_log.info("scored", extra=extra)
        if not ours.drain(120):
            raise RuntimeError("delivery did not finish")
        elapsed = time.perf_counter() - start
        if rx.lines() - before != total:
            raise RuntimeError(f"receiver got {rx.lines() - before} of {total} lines")
        rows.append(Row("logs", f"records/s delivered to the local receiver ({total:,} records, JSON push)",
                        total / elapsed, "rec/s"))
        ours.close()

        # The monitor's per-prediction log on the request path: 1 % of requests sampled, to a NullHandler.
        bare = ModelMonitor("bench-log", "1", registry=CollectorRegistry())
        plog = PredictionLog(_logger("plog", logging.NullHandler()), sample_rate=0.01)
        logged = ModelMonitor("bench-log", "1", registry=CollectorRegistry(), prediction_log=plog)

        def track(monitor: ModelMonitor) -> Callable[[], None]:
            def run() -> None:
                with monitor.track() as p:
                    p.output = 1
            return run

        n = 20_000 if quick else 100_000
        rows.append(Row("logs", "track() with the prediction log (1 % sampled, counts for the rest)",
                        per_call_us(track(logged), n, repeat), "us", "track() without prediction log",
                        per_call_us(track(bare), n, repeat), "<= 1.5x"))
    finally:
        rx.stop()
    return rows


