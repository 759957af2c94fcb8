"""Versions compared, through a real Prometheus and Alertmanager.

One stack for the module (the committed fast rules), one service registry serving two models, each with a
stable and a canary version (``for_version``):

* ``cmp``: every half second the same fixed chunk of requests per version (errors, latencies, classes, ground
  truth, a categorical feature). Rates of one target scale every counter alike, so each recorded comparison
  equals numpy and scikit-learn on one chunk's counts.
* ``roll``: requests routed by a :class:`TrafficSplit` with a 50/50 split; the canary fails half of its requests.
  ModelCandidateWorseThanBaseline fires, Alertmanager notifies the real alert receiver, whose command is
  ``mlscope rollback`` against the service's control endpoint: the canary's traffic drops to 0.
"""
from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sklearn.metrics import accuracy_score, f1_score

from mlscope import ModelMonitor
from mlscope.drift import CategoricalFeature, build_profile
from mlscope.exposition import start_metrics_server
from mlscope.quality import Quality
from mlscope.rules.config import duration_seconds
from mlscope.stack.alertreceiver import AlertCommand, AlertReceiver
from mlscope.stack.servers import free_port
from mlscope.versions import TrafficSplit, serve_control
from support import alerting_stack
from support.drift_support import category_counts
from support.helpers import require_binary, wait_until

W = alerting_stack.FAST.traffic_windows[0]  # the committed fast rules: 1m windows
TOKEN = "e2e-control-token"
WORSE = "ModelCandidateWorseThanBaseline"
EPSILON = 1e-4
TOLERANCE = 1e-9
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Chunk:
    """What one version serves every half second: (latency, predicted class or None for an error, truth, plan)."""

    rows: tuple[tuple[float, str | None, str, str], ...]

    @property
    def served(self) -> list[tuple[float, str | None, str, str]]:
        return [r for r in self.rows if r[1] is not None]


def chunk(seed: int, n: int, errors: int, classes: list[str], p: list[float], latency: float, plans: list[float]
          ) -> Chunk:
    rng = np.random.default_rng(seed)
    predicted = rng.choice(classes, n, p=p)
    truth = np.where(rng.random(n) < 0.8, predicted, rng.choice(classes, n))
    plan = rng.choice(["basic", "plus", "pro"], n, p=plans)
    rows = [(float(rng.lognormal(np.log(latency), 0.6)), None if i < errors else str(predicted[i]), str(truth[i]),
             str(plan[i])) for i in range(n)]
    return Chunk(tuple(rows))


CHUNKS = {"1": chunk(1, 20, 1, ["a", "b", "c"], [0.75, 0.2, 0.05], 0.01, [0.5, 0.3, 0.2]),
          "2": chunk(2, 10, 3, ["a", "b", "d"], [0.3, 0.5, 0.2], 0.04, [0.2, 0.3, 0.5])}


def p95(latencies: list[float]) -> float:
    """Prometheus's histogram_quantile(0.95) on the latency buckets of ``latencies`` (linear within a bucket)."""
    bounds = np.array(LATENCY_BUCKETS)
    cumulative = np.array([np.sum(np.asarray(latencies) <= b) for b in bounds], dtype=float)
    rank = 0.95 * len(latencies)
    i = int(np.searchsorted(cumulative, rank))
    lower, below = (0.0, 0.0) if i == 0 else (bounds[i - 1], cumulative[i - 1])
    return float(lower + (bounds[i] - lower) * (rank - below) / (cumulative[i] - below))


def psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, EPSILON), np.maximum(q, EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


def js(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, EPSILON), np.maximum(q, EPSILON)
    m = (p + q) / 2
    return float(np.sqrt(np.sum(0.5 * p * np.log2(p / m) + 0.5 * q * np.log2(q / m))))


class Service:
    """The two models' four versions on one registry, fed in the background, and the ``roll`` split's control."""

    def __init__(self, tmp: Path) -> None:
        self.registry = r = CollectorRegistry()
        windows = {w: duration_seconds(w) for w in alerting_stack.FAST.quality_windows}
        self.quality = Quality(registry=r, windows=windows, flush_interval_s=0.02)
        reference = {"plan": np.array(["basic"] * 50 + ["plus"] * 30 + ["pro"] * 20, dtype=object)}
        self.profiles = {v: build_profile(reference, model="cmp", model_version=v) for v in CHUNKS}
        # Classes registered: every quality counter exists from 0 (a class never predicted correctly included).
        stable = ModelMonitor("cmp", "1", registry=r, quality=self.quality, role="stable", reference=self.profiles["1"],
                              classes=["a", "b", "c", "d"])
        self.cmp = {"1": stable, "2": stable.for_version("2", role="canary", reference=self.profiles["2"])}
        roll = ModelMonitor("roll", "1", registry=r, role="stable")
        self.roll = {"1": roll, "2": roll.for_version("2", role="canary")}
        self.split = TrafficSplit("roll", {"1": 0.5, "2": 0.5}, registry=r, seed=7)
        self.control = serve_control({"roll": self.split}, TOKEN, free_port())
        self.server, _ = start_metrics_server(free_port(), registry=r)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._feed_cmp, daemon=True),
                         threading.Thread(target=self._feed_roll, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _feed_cmp(self) -> None:
        n = 0
        while not self._stop.wait(0.5):
            for version, monitor in self.cmp.items():
                for latency, output, truth, plan in CHUNKS[version].rows:
                    n += 1
                    if output is None:
                        monitor.record_error("Injected", latency_seconds=latency)
                        continue
                    rid = monitor.record_prediction(latency, output=output, request_id=f"cmp-{n}",
                                                    features={"plan": plan})
                    monitor.record_outcome(rid, truth)

    def _feed_roll(self) -> None:
        n = 0
        while not self._stop.wait(0.01):
            n += 1
            version = self.split.pick()
            if version == "2" and n % 2:
                self.roll[version].record_error("Defect", latency_seconds=0.01)
            else:
                self.roll[version].record_prediction(0.01, output="ok")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control.server_port}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for server in (self.server, self.control):
            server.shutdown()
            server.server_close()
        self.quality.close()


@dataclass
class Stack:
    service: Service
    alerting: alerting_stack.AlertingStack
    output: io.StringIO
    started_wall: float


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("versions")
    started_wall = time.time()
    service = Service(tmp)
    token = tmp / "control-token"
    token.write_text(TOKEN)
    rollback = (sys.executable, "-m", "mlscope.cli", "rollback", "--url", service.control_url, "--token-file",
                str(token))
    output = io.StringIO()
    receiver = AlertReceiver(registry=CollectorRegistry(), output=output, commands={WORSE: AlertCommand(rollback, 30)})
    alerting = alerting_stack.AlertingStack(tmp, [service.target], receiver=alerting_stack.TestReceiver(receiver))
    try:
        yield Stack(service, alerting.start(), output, started_wall)
    finally:
        alerting.stop()
        service.stop()


def values(stack: Stack, expr: str, at: float, key: str = "model_version") -> dict[str, float]:
    return {r["metric"].get(key, ""): float(r["value"][1]) for r in stack.alerting.api.query(expr, at)}


def test_every_comparison_equals_numpy_and_scikit_learn(stack: Stack) -> None:
    api = stack.alerting.api
    sel = f'{{model="cmp",window="{W}"}}'
    names = ("error_ratio:difference", "latency_p95:ratio", "predicted_class:psi", "predicted_class:js_distance",
             "accuracy:difference", "f1_macro:difference")
    every = [f"model_version:mlscope_versions_{n}{sel}" for n in names] + [
        f"feature:mlscope_versions_feature_psi:difference{sel}"]
    deadline = time.monotonic() + 60
    while len(found := [e for e in every if api.query(e)]) < len(every) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found == every
    time.sleep(2)
    at = time.time() - 1.5  # one instant, a few evaluations back: every rule of the group from one evaluation

    def read(name: str, level: str = "model_version") -> float:
        found = values(stack, f"{level}:mlscope_versions_{name}{sel}", at, "baseline_version")
        assert list(found) == ["1"], (name, found)  # compared with the stable version
        return found["1"]

    base, cand = CHUNKS["1"], CHUNKS["2"]
    errors = {v: sum(r[1] is None for r in c.rows) / len(c.rows) for v, c in CHUNKS.items()}
    assert read("error_ratio:difference") == pytest.approx(errors["2"] - errors["1"], abs=TOLERANCE)
    latency = {v: p95([r[0] for r in c.rows]) for v, c in CHUNKS.items()}
    assert read("latency_p95:ratio") == pytest.approx(latency["2"] / latency["1"], rel=TOLERANCE)
    classes = sorted({r[1] for c in CHUNKS.values() for r in c.served})  # a, b, c, d: each version lacks one
    shares = {v: np.array([sum(r[1] == k for r in c.served) for k in classes]) / len(c.served)
              for v, c in CHUNKS.items()}
    assert read("predicted_class:psi") == pytest.approx(psi(shares["2"], shares["1"]), rel=TOLERANCE)
    assert read("predicted_class:js_distance") == pytest.approx(js(shares["2"], shares["1"]), rel=TOLERANCE)
    truth = {v: ([r[2] for r in c.served], [r[1] for r in c.served]) for v, c in CHUNKS.items()}
    accuracy = {v: accuracy_score(*t) for v, t in truth.items()}
    f1 = {v: f1_score(*t, average="macro", zero_division=0) for v, t in truth.items()}
    assert read("accuracy:difference") == pytest.approx(accuracy["2"] - accuracy["1"], abs=TOLERANCE)
    assert read("f1_macro:difference") == pytest.approx(f1["2"] - f1["1"], abs=TOLERANCE)
    feature = next(f for f in stack.service.profiles["1"].features if isinstance(f, CategoricalFeature))
    reference = np.asarray(feature.reference_bins)
    plan_psi = {v: psi(category_counts(feature, [r[3] for r in c.served]) / len(c.served), reference)
                for v, c in CHUNKS.items()}
    assert read("feature_psi:difference", "feature") == pytest.approx(plan_psi["2"] - plan_psi["1"], abs=TOLERANCE)
    # The roles and guards behind them, as series.
    roles = {r["metric"]["model_version"]: r["metric"]["role"] for r in
             api.query('model_version:mlscope_version_role:effective{model="cmp"}', at)}
    assert roles == {"1": "stable", "2": "canary"}
    guards = values(stack, f'model_version:mlscope_versions_guard:bool{{model="cmp",window="{W}"}}', at, "domain")
    assert guards == {"traffic": 1, "drift": 1, "labels": 1, "estimated": 0}  # no probabilities: no estimate
    share = values(stack, f'model_version:mlscope_predictions:traffic_share{sel}', at)
    assert share == pytest.approx({"1": len(base.rows) / 30, "2": len(cand.rows) / 30}, rel=TOLERANCE)


def test_a_worse_canary_is_rolled_back_through_alertmanager_and_the_receiver(stack: Stack) -> None:
    api, receiver = stack.alerting.api, stack.alerting.receiver
    wait_until(lambda: stack.service.split.shares()["2"] == 0, timeout=60, interval=0.2)
    rolled_back_s = stack.service.split.changes[-1].at - stack.started_wall
    received_at, notified = next((t, a) for t, a in receiver.alerts(WORSE, "firing") if a["labels"]["model"] == "roll")
    assert notified["labels"]["baseline_version"] == "1" and notified["labels"]["signal"] == "errors"
    # Traffic back on the baseline: Prometheus sees no canary request over the last 3 s, and its weight at 0.
    api.wait_for('sum(rate(mlscope_predictions_total{model="roll",model_version="2"}[3s])) == 0', timeout=20)
    assert api.query('mlscope_traffic_weight_ratio{model="roll",model_version="2"} == 0')
    assert float(api.query('sum(rate(mlscope_predictions_total{model="roll",model_version="1"}[3s]))')[0]
                 ["value"][1]) > 50
    receiver.receiver.wait_for_commands()
    lines = [json.loads(x) for x in stack.output.getvalue().splitlines()]
    done = [x for x in lines if x["event"] == "alert_command" and x["labels"]["model"] == "roll"]
    assert [(x["result"], x["fingerprint"]) for x in done] == [("done", notified["fingerprint"])]
    assert json.loads(done[0]["output"])["changed"] is True
    # The other model's canary is worse too, but no split of this service routes it: not applicable, reported.
    other = wait_until(lambda: [x for x in map(json.loads, stack.output.getvalue().splitlines())
                                if x["event"] == "alert_command" and x["labels"]["model"] == "cmp"], timeout=30)
    assert {x["result"] for x in other} == {"not_applicable"}
    print(f"notified {received_at - stack.started_wall:.1f} s after the stack started (first scrape, guard, `for`, "
          f"Alertmanager), canary rolled back {rolled_back_s:.1f} s in")
