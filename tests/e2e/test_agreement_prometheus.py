"""Shadow agreement and feature attributions through a real Prometheus (the session's, on the committed fast
rules): the recorded agreement ratio and mean |attribution| equal numpy on the data fed, and the rank-agreement
gauge equals scipy's Spearman correlation.

Every half second the same chunk is fed, so every counter grows by the same multiple of its chunk count between
scrapes: increase() extrapolation scales a ratio's numerator and denominator alike and the ratios are exact. A
scrape never sees half a chunk: the exporter serves the monitor's registry under the lock each chunk holds.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from scipy.stats import spearmanr

from mlscope import ModelMonitor
from mlscope.attributions import TOP_K, refresh_attributions
from mlscope.drift import build_profile
from support.helpers import Exporter
from support.prometheus import PrometheusHarness

TOLERANCE = 1e-9
FEATURES = [f"f{i}" for i in range(12)]
MODEL = "e2e-agree"


class Locked(Collector):
    """A collector serving ``registry`` while holding ``lock``."""

    def __init__(self, registry: CollectorRegistry, lock: threading.Lock) -> None:
        self.registry, self.lock = registry, lock

    def collect(self) -> Iterable[Metric]:
        with self.lock:
            return list(self.registry.collect())


def test_agreement_attribution_means_and_rank_agreement_equal_numpy_and_scipy(prometheus: PrometheusHarness,
                                                                             exporter: Exporter) -> None:
    rng = np.random.default_rng(7)
    reference_rows = rng.normal(0, 1, (400, len(FEATURES)))
    weights = np.linspace(3.0, 0.25, len(FEATURES))
    profile = build_profile(reference_rows, columns=FEATURES, model=MODEL, model_version="1",
                            attributions=reference_rows * weights)
    registry, lock = CollectorRegistry(), threading.Lock()
    exporter.registry.register(Locked(registry, lock))
    monitor = ModelMonitor(MODEL, "1", registry=registry, reference=profile, shadow_pending=1000,
                           attribution_window_s=60.0)
    n = 40
    served = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    shadow = np.where(rng.random(n) < 0.75, served, rng.choice(["a", "b", "c"], n))
    # The chunk's attributions: another order of importance than the reference's, a few NaN (counted, skipped).
    chunk = rng.normal(0, 1, (n, len(FEATURES))) * weights[::-1] ** 0.5 * rng.uniform(0.5, 1.5, len(FEATURES))
    chunk[3, 2] = np.nan
    prometheus.scrape(MODEL, exporter.target)
    deadline, fed = time.monotonic() + 5, 0
    while time.monotonic() < deadline:
        with lock:
            for i in range(n):
                rid = f"r{fed}-{i}"
                monitor.record_prediction(0.01, output=str(served[i]), request_id=rid,
                                          attributions=dict(zip(FEATURES, chunk[i].tolist(), strict=True)))
                monitor.shadow(rid, version="2", prediction=str(shadow[i]))
        fed += 1
        time.sleep(0.5)
    refresh_attributions(registry)
    sel = f'{{model="{MODEL}",window="1m"}}'

    agreement = prometheus.api.wait_for(f"model_version:mlscope_shadow_agreement:ratio{sel}", timeout=30)
    assert agreement[0]["metric"]["shadow_version"] == "2"
    assert abs(float(agreement[0]["value"][1]) - np.mean(served == shadow)) < TOLERANCE

    means = {r["metric"]["feature"]: float(r["value"][1]) for r in prometheus.api.wait_for(
        f"feature:mlscope_feature_attribution_abs:mean{sel}", lambda r: len(r) == len(FEATURES), timeout=30)}
    expected = np.nanmean(np.abs(chunk), axis=0)
    assert np.allclose([means[f] for f in FEATURES], expected, rtol=TOLERANCE, atol=0)

    reference = np.array([profile.attributions[f] for f in FEATURES]) if profile.attributions else np.array([])
    assert np.allclose(reference, np.abs(reference_rows * weights).mean(axis=0))
    top = np.argsort(-reference)[:TOP_K]
    rho = spearmanr(reference[top], expected[top]).statistic
    gauge = prometheus.api.wait_for(f'mlscope_attribution_rank_agreement{{model="{MODEL}"}}', timeout=30)
    assert gauge[0]["metric"]["window"] == "1m"
    assert abs(float(gauge[0]["value"][1]) - rho) < 1e-12
    assert rho < 0.9  # the chunk's order differs: the check can tell
    invalid = prometheus.api.query(f'mlscope_invalid_inputs_total{{model="{MODEL}",reason="attribution_not_finite"}}')
    assert float(invalid[0]["value"][1]) == fed
