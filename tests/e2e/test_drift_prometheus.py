"""A real Prometheus scrapes a real monitor fed with a shifted sample; its recording rules match numpy and scipy."""
from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, kstwo, wasserstein_distance

from mlscope import ModelMonitor
from mlscope.drift import PREDICTION, CategoricalFeature, NumericFeature, build_profile, stats
from support.drift_support import (
    category_counts,
    category_shares,
    homogeneity,
    numeric_counts,
    numeric_shares,
)
from support.helpers import Exporter, wait_until
from support.prometheus import PrometheusHarness

# Every chunk fed is the same sample, so at every scrape each bin holds k x its count in the sample:
# rate() extrapolation scales all bins of a feature alike and the shares are exact. What remains is
# float rounding in Prometheus (and the 15-significant-digit text format).
TOLERANCE = 1e-9


def by_feature(prometheus: PrometheusHarness, expr: str, at: float | None = None) -> dict[str, float]:
    return {r["metric"]["feature"]: float(r["value"][1]) for r in prometheus.api.query(expr, at)}


def signed_data(rows: int, seed: int, shift: float) -> dict[str, np.ndarray]:
    """Numeric features centred at 0, negative only (first bin edge < 0), positive only and constant; one
    categorical. ``shift`` moves the centred and negative ones."""
    rng = np.random.default_rng(seed)
    return {"centred": rng.normal(shift, 1, rows), "negative": -1 - rng.lognormal(shift, 0.5, rows),
            "positive": rng.lognormal(0, 0.5, rows), "constant": np.full(rows, 2.5),
            "plan": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]).astype(object)}


def broken(window: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The window with data-quality issues: missing, infinite, out of range, a new category."""
    window = {k: v.copy() for k, v in window.items()}
    window["centred"][:10] = np.nan
    window["negative"][10:12] = np.inf
    window["positive"][12:15] = 100.0
    window["plan"][15:35] = "z"
    window["plan"][35:40] = None
    return window


def test_every_statistic_of_every_feature_matches_numpy_and_scipy(prometheus: PrometheusHarness,
                                                                  exporter: Exporter) -> None:
    reference = signed_data(6000, 0, 0.0)
    outputs = np.random.default_rng(2).integers(0, 2, 6000)
    profile = build_profile(reference, model="e2e-drift", model_version="1", output=outputs)
    monitor = ModelMonitor("e2e-drift", "1", registry=exporter.registry)
    monitor.attach_profile(profile, snapshot_interval=0.5)
    window = broken(signed_data(400, 1, 0.3))
    predicted = np.random.default_rng(3).integers(0, 2, 400) | (window["centred"] > 1)
    prometheus.scrape("e2e-drift", exporter.target)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        monitor.record_batch(predicted, features=window, latency_seconds=0.01)
        time.sleep(0.5)
    sel = '{model="e2e-drift",window="1m"}'
    wait_until(lambda: by_feature(prometheus, f"feature:mlscope_feature_bin:psi{sel}"), timeout=30)
    # Read every recorded series at one instant a few evaluations back: a query that lands while the rule
    # group is being evaluated could otherwise pair one rule's new value with another's previous one.
    time.sleep(3)
    at = time.time() - 2

    def read(name: str, labels: str = sel) -> dict[str, float]:
        return by_feature(prometheus, name + labels, at)

    psi, js, ks = read("feature:mlscope_feature_bin:psi"), read("feature:mlscope_feature_bin:js_distance"), \
        read("feature:mlscope_feature_value_bucket:ks")
    chi, counted = read("feature:mlscope_feature_bin:chi_square"), read("feature:mlscope_feature_bin:increase")
    snapshot = {name: read(f"mlscope_drift_snapshot_{name}", '{model="e2e-drift"}')
                for name in ("ks_statistic", "ks_pvalue", "wasserstein", "values")}
    numeric = {f.name for f in profile.features if isinstance(f, NumericFeature)}
    assert numeric == {"centred", "negative", "positive", "constant"}
    everything = {f.name for f in profile.features} | {PREDICTION}
    assert set(psi) == set(js) == set(chi) == everything
    assert set(ks) == numeric  # binned KS: every numeric feature, whatever the sign of its first edge
    assert all(set(values) == numeric for values in snapshot.values()), snapshot
    for feature in profile.features:
        if isinstance(feature, NumericFeature):
            counts = numeric_counts(feature, window[feature.name])
            reference_counts = numeric_counts(feature, reference[feature.name])
            _, cdf = numeric_shares(feature, window[feature.name])
            assert ks[feature.name] == pytest.approx(np.abs(cdf - feature.reference_cdf).max(), abs=TOLERANCE)
            present = window[feature.name][np.isfinite(window[feature.name])]
            recent = np.tile(present, 10)[-2000:]  # the ring: the last 2,000 present values of the stream
            sample = np.asarray(feature.sample)
            exact = ks_2samp(recent, sample).statistic
            assert snapshot["ks_statistic"][feature.name] == pytest.approx(exact, rel=1e-9, abs=1e-12)
            # scipy's asymptotic p-value at the effective size, the sample standing for every reference value.
            effective = round(recent.size * feature.present / (recent.size + feature.present))
            assert snapshot["ks_pvalue"][feature.name] == pytest.approx(kstwo.sf(exact, effective), abs=5e-4)
            assert snapshot["wasserstein"][feature.name] == pytest.approx(
                wasserstein_distance(recent, sample), rel=1e-9, abs=1e-12)
            assert snapshot["values"][feature.name] == 2000
        else:
            counts = category_counts(feature, list(window[feature.name]))
            reference_counts = category_counts(feature, list(reference[feature.name]))
        shares, ref = counts / counts.sum(), np.asarray(feature.reference_bins)
        np.testing.assert_allclose(ref, reference_counts / reference_counts.sum(), rtol=1e-12)
        assert psi[feature.name] == pytest.approx(stats.psi(shares, ref), rel=TOLERANCE, abs=TOLERANCE)
        assert js[feature.name] == pytest.approx(stats.js_distance(shares, ref), rel=TOLERANCE, abs=TOLERANCE)
        if shares.min() > stats.EPSILON and ref.min() > stats.EPSILON:  # no clamping: scipy's value exactly
            assert js[feature.name] == pytest.approx(jensenshannon(shares, ref, base=2), rel=1e-7)
        # Chi-square: scipy on the window's counts (n as Prometheus' increase() counted them) vs the reference's.
        expected = homogeneity(shares * counted[feature.name], reference_counts)
        assert chi[feature.name] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE), feature.name
    assert psi["constant"] == js["constant"] == ks["constant"] == chi["constant"] == 0  # unchanged: exactly 0
    assert snapshot["ks_statistic"]["constant"] == snapshot["wasserstein"]["constant"] == 0
    # 20 new-category values in 400 against none in 6,000: large, yet within the statistic's bound n + N (the
    # reference share clamped at 1e-4 gave about 25 n).
    assert 100 < chi["plan"] < counted["plan"] + 6000
    # Data quality: each issue's share of the rows, for every feature.
    issues = {(r["metric"]["feature"], r["metric"]["issue"]): float(r["value"][1]) for r in prometheus.api.query(
        f"feature_issue:mlscope_feature_issues:ratio_rate{sel}", at)}
    expected_issues = {("plan", "missing"): sum(v is None for v in window["plan"]),
                       ("plan", "new_category"): sum(v not in set(reference["plan"]) for v in window["plan"] if v)}
    for name in numeric:
        v, r = window[name], reference[name]
        finite = v[np.isfinite(v)]
        expected_issues |= {(name, "missing"): np.isnan(v).sum(), (name, "infinite"): np.isinf(v).sum(),
                            (name, "out_of_range"): ((finite < r.min()) | (finite > r.max())).sum()}
    assert expected_issues[("plan", "new_category")] == 20 and expected_issues[("centred", "missing")] == 10
    assert expected_issues[("negative", "infinite")] == 2 and expected_issues[("positive", "out_of_range")] >= 3
    assert {k for k in issues if k[0] != PREDICTION} >= set(expected_issues)
    for (feature_name, issue), ratio in issues.items():
        if feature_name != PREDICTION:
            assert ratio == pytest.approx(expected_issues.get((feature_name, issue), 0) / 400, abs=TOLERANCE)
    # Prediction drift: the predicted classes' shares against the reference's.
    output = profile.output
    assert isinstance(output, CategoricalFeature)
    expected = stats.psi(category_shares(output, [str(int(c)) for c in predicted]), np.asarray(output.reference_bins))
    assert psi[PREDICTION] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
    prediction = prometheus.api.query('model_version:mlscope_feature_bin:prediction_psi{model="e2e-drift",'
                                      'window="1m"}', at)
    assert float(prediction[0]["value"][1]) == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
    # The 0.3 sigma shift is a drift of the centred and negative features, and of them only.
    assert psi["centred"] > 0.05 and psi["negative"] > 0.05 and psi["positive"] < 0.05
    threshold = read("feature:mlscope_feature_bin:psi_threshold")
    assert all(threshold[f.name] == pytest.approx(f.thresholds["psi"]) for f in profile.features if f.thresholds)


# FeatureDriftHigh firing through a real Prometheus and Alertmanager, once its window is warm: tests/e2e/test_soak.py.
