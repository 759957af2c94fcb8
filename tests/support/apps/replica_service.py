"""One replica of a monitored model service, for the replica test (tests/test_replicas.py).

Serves ``/metrics`` on its own 127.0.0.1 port. Right after Prometheus's first scrape
(every counter still at 0) it serves a seeded stream through ``SyntheticService``:
predictions with features (shifted by ``--shift`` standard deviations), injected
errors, then late ground truth for a share of the predictions, joined in the
replica's own SQLite prediction store, whose quality counters it exposes. It writes
what it served to ``--record`` (npz) for the test's numpy/scikit-learn reference.

While the stream is served, scrapes get 503: no scrape sees a partial state, and none
is lost to a timeout while the stream loads the CPU (a timed-out scrape would leave
Prometheus with one sample less than the replica counted). After ``--scrapes``
answered scrapes the replica retires: it answers with an empty exposition, so its
series go stale with exactly that many samples each, the first at 0
(``--scrapes 0``: never retires, as the idle standby).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.demo.workload import LateGroundTruth, Prediction, SimulatedPredictionError, SyntheticService, train
from mlscope.exposition import wsgi_app
from mlscope.instruments import instruments_for
from mlscope.quality import Quality

MODEL, VERSION = "replicas", "1"
ERROR = SimulatedPredictionError.__name__


def build_monitor(profile: str, store: str, version: str = VERSION) -> tuple[ModelMonitor, Quality, Any]:
    trained = train("breast_cancer")
    registry = CollectorRegistry()
    quality = Quality(store, registry=registry, flush_interval_s=0.01)
    monitor = ModelMonitor(MODEL, version, registry=registry, reference=profile, quality=quality,
                           classes=trained.pipeline.classes_)
    # The error counter exists from 0, as the class counters do: increase() ignores a series' first sample.
    instruments_for(registry).errors.labels(MODEL, version, ERROR)
    return monitor, quality, trained


def serve_stream(service: SyntheticService, quality: Quality, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Predictions (some failing), then their late labels; returns what was served, row by row."""
    service.faults.drift_shift_std, service.faults.error_rate = args.shift, args.error_rate
    x, y = service.sample(args.rows)
    served: list[Prediction | None] = []
    for i in range(args.rows):
        try:
            served.append(service.predict_one(x[i], y[i], request_id=f"s{args.seed}-{i}"))
        except SimulatedPredictionError:
            served.append(None)
    quality.flush()
    labels: dict[str, Any] = {}
    truth = LateGroundTruth(lambda rid, label: labels.__setitem__(rid, label), delay_s=0.0, fraction=0.8,
                            flip_rate=0.15, classes=(0, 1), seed=args.seed)
    for prediction in served:
        if prediction is not None:
            truth.schedule(prediction)
    truth.deliver_due()
    for rid, label in labels.items():
        service.monitor.record_outcome(rid, label)
    quality.flush()
    ok = [p for p in served if p is not None]
    return {"x": x, "failed": np.array([p is None for p in served]),
            "y_pred": np.array([p.y_pred for p in ok]),
            "pair_pred": np.array([p.y_pred for p in ok if p.request_id in labels]),
            "pair_true": np.array([labels[p.request_id] for p in ok if p.request_id in labels])}


class Replica:
    """The /metrics app: counts Prometheus's scrapes, starts the stream after the first, retires after N."""

    def __init__(self, monitor: ModelMonitor, quality: Quality, trained: Any, args: argparse.Namespace) -> None:
        self.metrics = wsgi_app(monitor.registry)
        self.service = SyntheticService(trained, monitor, seed=args.seed)
        self.quality, self.args = quality, args
        self.scrapes, self.feeding = 0, False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        if not environ.get("HTTP_USER_AGENT", "").startswith("Prometheus/"):
            return self.metrics(environ, start_response)
        if self.feeding:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"serving the stream"]
        if self.args.scrapes and self.scrapes >= self.args.scrapes:
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
            return [b""]  # retired: every series goes stale
        body = b"".join(self.metrics(environ, start_response))  # rendered before the stream may start
        self.scrapes += 1
        if self.scrapes == 1 and self.args.rows:
            self.feeding = True
            return _ThenRun([body], lambda: threading.Thread(target=self._feed, daemon=True).start())
        return [body]

    def _feed(self) -> None:
        try:
            np.savez(self.args.record, **serve_stream(self.service, self.quality, self.args))
        finally:
            self.feeding = False


class _ThenRun(list[bytes]):
    """A WSGI body that runs ``then`` once the server has sent it (WSGI calls ``close()`` after the response): the
    stream's CPU load cannot delay the first scrape's answer past Prometheus's scrape timeout."""

    def __init__(self, body: list[bytes], then: Any) -> None:
        super().__init__(body)
        self.then = then

    def close(self) -> None:
        self.then()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--record", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default=VERSION, help="the model version (a rerun of a scenario: a new one)")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--shift", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--scrapes", type=int, default=0)
    args = parser.parse_args(argv)
    monitor, quality, trained = build_monitor(args.profile, args.store, args.version)
    server = make_server("127.0.0.1", args.port, Replica(monitor, quality, trained, args), handler_class=_Quiet)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("ready", flush=True)
    server.serve_forever()
    quality.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
