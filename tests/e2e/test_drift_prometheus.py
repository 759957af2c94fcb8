"""A real Prometheus scrapes a real monitor fed with a shifted sample; its recording rules match numpy."""
from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from mlscope import ModelMonitor
from mlscope.drift import PREDICTION, stats
from support.drift_support import category_shares, numeric_shares, shifted_service, workload_profile
from support.helpers import Exporter, wait_until
from support.prometheus import PrometheusHarness

# Every chunk fed is the same sample, so at every scrape each bin holds k x its count in the sample:
# rate() extrapolation scales all bins of a feature alike and the shares are exact. What remains is
# float rounding in Prometheus (and the 15-significant-digit text format).
TOLERANCE = 1e-9


def by_feature(prometheus: PrometheusHarness, expr: str, at: float | None = None) -> dict[str, float]:
    return {r["metric"]["feature"]: float(r["value"][1]) for r in prometheus.api.query(expr, at)}


def test_recording_rules_match_numpy_on_a_shifted_sample(prometheus: PrometheusHarness,
                                                         exporter: Exporter) -> None:
    profile = workload_profile("e2e-drift", "1")
    monitor = ModelMonitor("e2e-drift", "1", registry=exporter.registry, reference=profile)
    service = shifted_service(monitor, shift_std=0.5)
    x, _ = service.sample(400)
    predicted = service.trained.pipeline.predict(x)
    prometheus.scrape("e2e-drift", exporter.target)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        monitor.record_batch(predicted, features=x, latency_seconds=0.01)
        time.sleep(0.5)
    sel = '{model="e2e-drift",window="1m"}'
    wait_until(lambda: by_feature(prometheus, f"feature:mlscope_feature_bin:psi{sel}"), timeout=30)
    # Read every recorded series at one instant a few evaluations back: a query that lands while the rule
    # group is being evaluated could otherwise pair one rule's new value with another's previous one.
    time.sleep(3)
    at = time.time() - 2
    psi = by_feature(prometheus, f"feature:mlscope_feature_bin:psi{sel}", at)
    js = by_feature(prometheus, f"feature:mlscope_feature_bin:js_distance{sel}", at)
    ks = by_feature(prometheus, f"feature:mlscope_feature_value_bucket:ks{sel}", at)
    chi_per_value = by_feature(prometheus, f"feature:mlscope_feature_bin:chi_square{sel} / on(model, "
                                           f"model_version, feature, window) feature:mlscope_feature_bin:increase", at)
    assert set(psi) == {f.name for f in profile.features} | {PREDICTION}
    assert set(ks) == {f.name for f in profile.features}  # KS: numeric features only
    for j, feature in enumerate(profile.features):
        shares, cdf = numeric_shares(feature, x[:, j])
        ref = np.asarray(feature.reference_bins)
        assert psi[feature.name] == pytest.approx(stats.psi(shares, ref), rel=TOLERANCE, abs=TOLERANCE)
        assert js[feature.name] == pytest.approx(stats.js_distance(shares, ref), rel=TOLERANCE, abs=TOLERANCE)
        if shares.min() > stats.EPSILON and ref.min() > stats.EPSILON:  # no clamping: scipy's value exactly
            assert js[feature.name] == pytest.approx(jensenshannon(shares, ref, base=2), rel=1e-7)
        assert ks[feature.name] == pytest.approx(np.abs(cdf - feature.reference_cdf).max(), abs=TOLERANCE)
        chi_ref = ((shares - np.maximum(ref, stats.EPSILON)) ** 2 / np.maximum(ref, stats.EPSILON)).sum()
        assert chi_per_value[feature.name] == pytest.approx(chi_ref, rel=TOLERANCE, abs=TOLERANCE)
    # Prediction drift: the predicted classes' shares against the reference's.
    output = profile.output
    shares = category_shares(output, [str(int(c)) for c in predicted])
    expected = stats.psi(shares, np.asarray(output.reference_bins))
    assert psi[PREDICTION] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
    prediction = prometheus.api.query('model_version:mlscope_feature_bin:prediction_psi{model="e2e-drift",'
                                      'window="1m"}')
    assert float(prediction[0]["value"][1]) == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
    # A 0.5 sigma shift on every feature is a real drift: most features exceed their thresholds.
    assert sum(v > 0.1 for k, v in psi.items() if k != PREDICTION) > len(profile.features) // 2
    threshold = by_feature(prometheus, f"feature:mlscope_feature_bin:psi_threshold{sel}")
    assert set(threshold) == set(psi)
    assert all(threshold[f.name] == pytest.approx(f.thresholds["psi"]) for f in profile.features)


# FeatureDriftHigh firing through a real Prometheus and Alertmanager, once its window is warm: tests/e2e/test_soak.py.
