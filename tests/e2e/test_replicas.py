"""Three replicas of a monitored service, each its own process and /metrics, scraped by a real Prometheus.

The recording rules sum every replica's counters, then compute traffic, drift and quality per model
version. This test shows those recorded values equal numpy / scikit-learn on the union of the three
replicas' streams.

Topology: each replica holds its own SQLite prediction store and exposes its quality counters (one
exposer per store, as the README requires); the late labels of a prediction reach the replica that served
it (routing by request id). So quality, like traffic and drift, is summed across replicas by the rules,
which is what this test is about; the shared-store topology (``expose=False`` + one quality exporter) is
exercised by tests/test_quality_exporter.py.

Why the replicas retire after exactly K scrapes: ``increase()`` extrapolates each series from its own
sample timestamps, and replicas are scraped at different phases, so summed live windows weigh the
replicas by slightly different factors (up to about one scrape interval over the covered span: ~2 % for 1m at 1 s).
Each replica answers one scrape at 0, serves its whole stream (answering 503 meanwhile), answers K-1 more
scrapes and then exposes nothing. Once every replica's series have their K samples and have gone stale, and
the window's end is past each one's extrapolation threshold (1.1 average intervals after its last sample), the
5m window holds each of them whole and every series is scaled by the same 1 + 1/(2(K-1)), which cancels in
every ratio. An idle standby replica (same profile, no traffic) keeps the reference shares alive, as a live
fleet does.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy.spatial.distance import jensenshannon

from mlscope.drift import PREDICTION, ReferenceProfile, stats
from mlscope.rules import config_for
from mlscope.rules.config import duration_seconds
from mlscope.stack.servers import free_port
from support import HERE
from support.apps.replica_service import MODEL
from support.drift_support import (
    category_shares,
    homogeneity,
    numeric_counts,
    numeric_shares,
    trained,
    workload_profile,
)
from support.helpers import wait_until
from support.prometheus import PrometheusHarness

APP = HERE / "apps" / "replica_service.py"
SCRAPES = 6  # samples every replica's series gets before it retires
SCRAPE_INTERVAL_S = 2  # and its timeout: the profile's 1 s can time out a 2,500-sample answer on a loaded machine
STREAMS = [dict(seed=1, rows=700, shift=0.0), dict(seed=2, rows=500, shift=0.3), dict(seed=3, rows=900, shift=0.8)]
ATTEMPTS = 2  # a fleet whose replica lost a scrape to a timeout (a loaded machine) is run again as a new version
TOLERANCE = 1e-9


class Replicas:
    """The replica processes; every one is stopped on exit."""

    def __init__(self, tmp: Path, profile: Path, version: str) -> None:
        self.tmp, self.profile, self.version = tmp, profile, version
        self.procs: list[subprocess.Popen[bytes]] = []
        self.targets: list[str] = []
        self.records: list[Path] = []

    def start(self, name: str, **stream: float) -> str:
        port = free_port()
        argv = [sys.executable, str(APP), "--port", str(port), "--profile", str(self.profile),
                "--store", str(self.tmp / f"{name}.sqlite"), "--version", self.version]
        if stream:
            record = self.tmp / f"{name}.npz"
            self.records.append(record)
            argv += ["--record", str(record), "--scrapes", str(SCRAPES)]
            argv += [a for k, v in stream.items() for a in (f"--{k}", str(v))]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        self.targets.append(f"127.0.0.1:{port}")
        return self.targets[-1]

    def wait_ready(self) -> None:
        for proc in self.procs:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def replicas(tmp_path: Path, prometheus: PrometheusHarness) -> Iterator[Callable[[str], Replicas]]:
    """Starts a fleet (three streams and the standby) as model version ``version``; all stopped on exit."""
    fleets: list[Replicas] = []

    def start(version: str) -> Replicas:
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        fleet = Replicas(folder, workload_profile(MODEL, version).save(folder / "reference.json"), version)
        fleets.append(fleet)
        for i, stream in enumerate(STREAMS):
            fleet.start(f"replica-{i}", **stream)
        fleet.start("standby")
        fleet.wait_ready()
        return fleet

    try:
        yield start
    finally:
        for fleet in fleets:
            prometheus.forget(*fleet.targets)
            fleet.stop()


def _served(prometheus: PrometheusHarness, fleet: Replicas) -> tuple[float, dict[str, int | None]]:
    """Scrapes ``fleet`` until its serving replicas retire; returns a moment to read the recorded series at, and
    the samples each serving replica's series got (SCRAPES unless a scrape was lost to a timeout)."""
    api = prometheus.api
    prometheus.scrape("replicas", *fleet.targets, interval=f"{SCRAPE_INTERVAL_S}s")
    serving = fleet.targets[:-1]  # the last one is the standby
    # The three streams are served, then every serving replica retires and its series go stale.
    retired = f'(up{{instance=~"{"|".join(serving)}"}} == 1) and scrape_samples_scraped == 0'  # answered, nothing
    wait_until(lambda: sorted(r["metric"]["instance"] for r in api.query(retired)) == sorted(serving), timeout=40)
    # Every recorded series read from an evaluation (and one more, for rules reading recorded series) past the
    # moment increase() stops extrapolating any serving replica's series to the window's end, at a moment the
    # standby (whose reference shares every ratio reads) answered every scrape of the last 2.5 intervals.
    settled = max(time.time(), _extrapolated_until(prometheus, fleet)) + duration_seconds(
        config_for("fast").profile.evaluation_interval)
    recorded = f'{{__name__=~"(model_version|feature):.+",{_window(fleet.version)}}}[1m]'
    standby_up = f'min_over_time(up{{instance="{fleet.targets[-1]}"}}[{2.5 * SCRAPE_INTERVAL_S:g}s]) == 1'
    chosen: list[float] = []

    def steady() -> bool:
        now = time.time()
        # The raw samples' own timestamps: timestamp() of anything but a plain selector answers the query's time.
        evaluations = [float(series["values"][-1][0]) for series in api.query(recorded, now)]
        if evaluations and min(evaluations) > settled and api.query(standby_up, now):
            chosen.append(now)
        return bool(chosen)

    wait_until(steady, timeout=30)
    at = chosen[0]
    samples = {r["metric"]["instance"]: int(float(r["value"][1])) for r in api.query(
        f'count_over_time(mlscope_predictions_total{{model="{MODEL}",model_version="{fleet.version}"}}[5m])', at)}
    return at, {t: samples.get(t) for t in serving}


def _extrapolated_until(prometheus: PrometheusHarness, fleet: Replicas) -> float:
    """Until when increase() extrapolates a retired replica's series to the window's end: its last sample plus 1.1
    average intervals between its samples (Prometheus's threshold). The average includes the gap of the stream's
    503s, so it grows with the machine's load."""
    serving = set(fleet.targets[:-1])
    until = []
    for series in prometheus.api.query(f'mlscope_predictions_total{{model="{MODEL}",'
                                       f'model_version="{fleet.version}"}}[5m]'):
        if series["metric"]["instance"] in serving:
            stamps = [float(at) for at, _ in series["values"]]
            until.append(stamps[-1] + 1.1 * (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1))
    return max(until)


def _window(version: str) -> str:
    return f'model="{MODEL}",model_version="{version}",window="5m"'


def test_recorded_series_across_replicas_equal_numpy_and_sklearn_on_the_union(
        prometheus: PrometheusHarness, replicas: Callable[[str], Replicas]) -> None:
    api = prometheus.api
    for attempt in range(1, ATTEMPTS + 1):
        fleet = replicas(str(attempt))
        at, samples = _served(prometheus, fleet)
        whole = samples == dict.fromkeys(fleet.targets[:-1], SCRAPES)
        if whole:
            break
        prometheus.forget(*fleet.targets)
    failed = 'count_over_time(up{service="replicas"}[5m]) - sum_over_time(up{service="replicas"}[5m])'
    assert whole, ("a replica lost a scrape in every attempt: its samples; every replica's failed scrapes",
                   samples, api.query(failed))
    window = _window(fleet.version)
    profile = ReferenceProfile.load(fleet.profile)
    records = [dict(np.load(r)) for r in fleet.records]
    union = {k: np.concatenate([r[k] for r in records]) for k in ("x", "failed", "y_pred", "pair_pred", "pair_true")}

    def one(expr: str) -> float:
        result = api.query(expr, at)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def by(label: str, expr: str) -> dict[str, float]:
        return {r["metric"][label]: float(r["value"][1]) for r in api.query(expr, at)}

    # Traffic: raw totals, the error ratio, and the request rate with Prometheus's documented extrapolation.
    rows, errors = len(union["failed"]), int(union["failed"].sum())
    assert 0 < errors < rows
    assert one(f'sum(last_over_time(mlscope_predictions_total{{{window.rsplit(",", 1)[0]}}}[5m]))') == rows
    assert one(f"model_version:mlscope_prediction_errors:ratio_rate{{{window}}}") == pytest.approx(
        errors / rows, rel=TOLERANCE)
    assert one(f"model_version:mlscope_predictions:rate{{{window}}}") * 300 == pytest.approx(
        rows * (1 + 1 / (2 * (SCRAPES - 1))), rel=TOLERANCE)

    # Drift per feature: PSI, JS distance, KS at the fine edges, chi-square against the reference's counts.
    psi = by("feature", f"feature:mlscope_feature_bin:psi{{{window}}}")
    js = by("feature", f"feature:mlscope_feature_bin:js_distance{{{window}}}")
    ks = by("feature", f"feature:mlscope_feature_value_bucket:ks{{{window}}}")
    chi = by("feature", f"feature:mlscope_feature_bin:chi_square{{{window}}}")
    counted = by("feature", f"feature:mlscope_feature_bin:increase{{{window}}}")
    reference = trained().x_train
    assert set(psi) == {f.name for f in profile.features} | {PREDICTION}
    alone = 0
    for j, feature in enumerate(profile.features):
        shares, cdf = numeric_shares(feature, union["x"][:, j])
        ref = np.asarray(feature.reference_bins)
        expected = stats.psi(shares, ref)
        assert psi[feature.name] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE), feature.name
        assert js[feature.name] == pytest.approx(stats.js_distance(shares, ref), rel=TOLERANCE, abs=TOLERANCE)
        if shares.min() > stats.EPSILON and ref.min() > stats.EPSILON:
            assert js[feature.name] == pytest.approx(jensenshannon(shares, ref, base=2), rel=1e-7)
        assert ks[feature.name] == pytest.approx(np.abs(cdf - feature.reference_cdf).max(), abs=TOLERANCE)
        expected_chi = homogeneity(shares * counted[feature.name], numeric_counts(feature, reference[:, j]))
        assert chi[feature.name] == pytest.approx(expected_chi, rel=TOLERANCE, abs=TOLERANCE), feature.name
        own = [stats.psi(numeric_shares(feature, r["x"][:, j])[0], ref) for r in records]
        alone += all(abs(p - expected) > 1e-3 for p in own)
    assert alone > len(profile.features) // 2, "the union's drift must differ from every single replica's"
    output_shares = category_shares(profile.output, [str(int(c)) for c in union["y_pred"]])
    assert one(f"model_version:mlscope_feature_bin:prediction_psi{{{window}}}") == pytest.approx(
        stats.psi(output_shares, np.asarray(profile.output.reference_bins)), rel=TOLERANCE, abs=TOLERANCE)

    # Quality on the union of joined pairs (each replica joined its own).
    y_true, y_pred = union["pair_true"].astype(str), union["pair_pred"].astype(str)
    assert one(f"model_version:mlscope_quality_labelled:increase{{{window}}}") == pytest.approx(
        len(y_true) * (1 + 1 / (2 * (SCRAPES - 1))), rel=TOLERANCE)
    assert one(f"model_version:mlscope_quality_accuracy:ratio{{{window}}}") == pytest.approx(
        skm.accuracy_score(y_true, y_pred), rel=TOLERANCE)
    labels = sorted(set(y_true) | set(y_pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        got = by("class", f"model_version_class:mlscope_quality_{name}:ratio{{{window}}}")
        expected = fn(y_true, y_pred, labels=labels, average=None, zero_division=0)
        assert got == pytest.approx(dict(zip(labels, expected, strict=True)), rel=TOLERANCE), name
        assert one(f"model_version:mlscope_quality_{name}:macro{{{window}}}") == pytest.approx(
            fn(y_true, y_pred, average="macro", zero_division=0), rel=TOLERANCE), name
    accuracies = [skm.accuracy_score(r["pair_true"], r["pair_pred"]) for r in records]
    assert max(accuracies) - min(accuracies) > 0.01, "streams of distinct quality make the union's meaningful"
