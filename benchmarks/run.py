"""mlscope benchmarks: one command, a table with ratios to references measured in the same run.

    python benchmarks/run.py            # prints the table and rewrites benchmarks/README.md
    python benchmarks/run.py --quick    # fewer repetitions, prints only

Each suite is a function returning rows; suites of later parts register below.
"""
from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from mlscope import ModelMonitor
from mlscope.catalog import serving as cat
from mlscope.ids import new_request_id

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    suite: str
    case: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    target: str = ""

    @property
    def ratio(self) -> str:
        if not self.reference_value:
            return ""
        return f"{self.value / self.reference_value:.2f}x"


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Median microseconds per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


# -- suite: the in-process monitor ------------------------------------------------------------------

def raw_prometheus_client(registry: CollectorRegistry) -> Callable[[int, float], None]:
    """The prometheus-client updates one tracked prediction needs, on pre-bound children."""
    labels = ("raw", "1")
    predictions = Counter("raw_predictions", "h", ["model", "model_version"], registry=registry).labels(*labels)
    in_flight = Gauge("raw_in_flight", "h", ["model", "model_version"], registry=registry).labels(*labels)
    latency = Histogram("raw_latency_seconds", "h", ["model", "model_version"], registry=registry,
                        buckets=cat.LATENCY_BUCKETS).labels(*labels)
    classes = Counter("raw_class", "h", ["model", "model_version", "class"], registry=registry)
    class_children = {c: classes.labels(*labels, str(c)) for c in range(3)}
    score = Histogram("raw_score", "h", ["model", "model_version"], registry=registry,
                      buckets=cat.SCORE_BUCKETS).labels(*labels)
    counter = iter(range(10**12))

    def predict(cls: int, s: float) -> None:
        in_flight.inc()
        start = time.perf_counter()
        elapsed = time.perf_counter() - start
        in_flight.dec()
        predictions.inc()
        latency.observe(elapsed, {"request_id": f"ab12cd34-{next(counter):x}"})
        class_children[cls].inc()
        score.observe(s)

    return predict


def suite_monitor(quick: bool) -> list[Row]:
    number, repeat = (20_000, 5) if quick else (100_000, 7)
    rows = []
    raw = raw_prometheus_client(CollectorRegistry())
    monitor = ModelMonitor("bench", "1", registry=CollectorRegistry())

    def tracked() -> None:
        with monitor.track() as p:
            p.output = 1
            p.score = 0.8

    def explicit() -> None:
        monitor.record_prediction(0.0123, output=1, score=0.8)

    ref = per_call_us(lambda: raw(1, 0.8), number, repeat)
    rows.append(Row("monitor", "track() per prediction (latency+exemplar, in-flight, class, score)",
                    per_call_us(tracked, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "record_prediction() per prediction",
                    per_call_us(explicit, number, repeat), "us", "raw prometheus-client, same updates", ref,
                    "<= 1.5x"))
    rows.append(Row("monitor", "new_request_id()", per_call_us(new_request_id, number, repeat), "us"))

    # Batches: cost per row of record_batch against the raw per-row updates.
    rng = np.random.default_rng(0)
    n = 100_000
    classes, scores = rng.integers(0, 3, n), rng.random(n)
    batch_monitor = ModelMonitor("bench-batch", "1", registry=CollectorRegistry())
    batch_s = min(timeit.repeat(lambda: batch_monitor.record_batch(classes, scores=scores, latency_seconds=0.1),
                                number=1, repeat=3 if quick else 5))
    class_list, score_list = classes.tolist(), scores.tolist()
    raw_batch = raw_prometheus_client(CollectorRegistry())

    def raw_rows() -> None:
        for c, s in zip(class_list, score_list):
            raw_batch(c, s)

    raw_s = min(timeit.repeat(raw_rows, number=1, repeat=1 if quick else 3))
    rows.append(Row("monitor", f"record_batch() per row ({n:,} rows, classes + scores)",
                    batch_s / n * 1e6, "us", "raw per-row updates", raw_s / n * 1e6))

    # Scrape: /metrics of 10 models x 5 versions, each with 3 classes and a score histogram.
    registry = CollectorRegistry()
    for m in range(10):
        for v in range(5):
            mon = ModelMonitor(f"model-{m}", f"{v}.0.0", registry=registry)
            mon.record_batch(np.array([0, 1, 2]), scores=np.array([0.1, 0.5, 0.9]), latency_seconds=0.01)
            mon.record_prediction(0.01, output=1)
            mon.record_error(ValueError())
    text = generate_latest(registry)
    n_series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    scrape_ms = per_call_us(lambda: generate_latest(registry), 20, 5 if quick else 10) / 1000
    rows.append(Row("monitor", f"scrape /metrics, 10 models x 5 versions ({n_series:,} series, text)",
                    scrape_ms, "ms"))
    return rows


# -- suite: structured logs shipped to Loki ---------------------------------------------------------------

class _ReceiverProcess:
    """The tests' Loki push receiver in its own process (its JSON parsing must not share our GIL)."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen([sys.executable, str(HERE.parent / "tests" / "loki_receiver.py")],
                                     stdout=subprocess.PIPE, text=True, cwd=HERE.parent / "tests")
        self.port = int(self.proc.stdout.readline())  # type: ignore[union-attr]
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
        ours = LokiHandler(rx.url, queue_lines=10**7, flush_interval=0.2, registry=CollectorRegistry())
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


SUITES: dict[str, Callable[[bool], list[Row]]] = {"monitor": suite_monitor}
SUITES["logs"] = suite_logs


def table(rows: list[Row]) -> str:
    lines = ["| suite | case | value | reference | reference value | ratio | target |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        ref_value = f"{r.reference_value:.3f} {r.unit}" if r.reference_value is not None else ""
        lines.append(f"| {r.suite} | {r.case} | {r.value:.3f} {r.unit} | {r.reference} | {ref_value} | "
                     f"{r.ratio} | {r.target} |")
    return "\n".join(lines)


def environment() -> str:
    from importlib.metadata import version

    import psutil

    return (f"Python {platform.python_version()}, prometheus-client {version('prometheus-client')}, "
            f"numpy {np.__version__}, {psutil.cpu_count()} CPUs ({platform.machine()}), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; do not rewrite README.md")
    parser.add_argument("--suite", action="append", choices=sorted(SUITES), help="run only these suites")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.suite or SUITES:
        print(f"running suite {name}...", file=sys.stderr, flush=True)
        rows += SUITES[name](args.quick)
    result = table(rows)
    print(result)
    if not args.quick and not args.suite:
        (HERE / "README.md").write_text(
            "# Benchmarks\n\nRun `make bench` (or `python benchmarks/run.py`). Medians; references measured in the "
            "same run; ratio = value / reference (lower is better for times).\n\n"
            f"Environment: {environment()}\n\n{result}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
