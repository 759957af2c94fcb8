"""Every drift number against an independent reference (numpy on the same bins, scipy) on known data."""
from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from mlscope import ModelMonitor
from mlscope.drift import build_profile, refresh_snapshots, stats
from mlscope.drift.calibrate import numeric_statistics
from support.drift_support import homogeneity, numeric_counts, numeric_shares, small_profile
from support.helpers import series

RNG = np.random.default_rng(42)
REFERENCE = RNG.normal(0, 1, 50_000)
SAME = RNG.normal(0, 1, 50_000)
SHIFTED = RNG.normal(0.5, 1, 50_000)


def test_statistics_match_scipy_on_proportions() -> None:
    p, q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.25, 0.25, 0.25, 0.25])
    assert stats.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert stats.psi(p, q) == pytest.approx(symmetric_kl(p, q), rel=1e-12)
    observed, reference = np.array([10, 20, 30, 40]), np.array([300, 200, 250, 250])
    assert stats.chi_square(observed, reference) == pytest.approx(
        scipy_stats.chi2_contingency([observed, reference], correction=False).statistic, rel=1e-12)
    # Known values: identical distributions give 0; disjoint ones the clamped maximum.
    assert stats.psi(q, q) == 0 and stats.js_distance(q, q) == 0
    assert stats.js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0, abs=1e-3)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> float:
    """PSI is the sum of the two Kullback-Leibler divergences: scipy's, on shares with no empty bin."""
    assert np.all(p > 0) and np.all(q > 0)
    return float(scipy_stats.entropy(p, q) + scipy_stats.entropy(q, p))


@pytest.mark.parametrize("bins", [2, 10, 50])
def test_psi_is_the_sum_of_both_kl_divergences(bins: int) -> None:
    rng = np.random.default_rng(bins)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(bins)), rng.dirichlet(np.full(bins, 0.5))
        p, q = np.maximum(p, 1e-3), np.maximum(q, 1e-3)  # no empty bin: the clamp must not apply
        p, q = p / p.sum(), q / q.sum()
        assert stats.psi(p, q) == pytest.approx(symmetric_kl(p, q), rel=1e-9)
        assert stats.psi(p, q) == pytest.approx(stats.psi(q, p), rel=1e-12)  # symmetric, unlike either KL


def test_epsilon_is_applied_the_stated_way() -> None:
    p, q = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    eps = stats.EPSILON
    assert stats.psi(p, q) == pytest.approx((eps - 0.5) * np.log(eps / 0.5) + 0.5 * np.log(2))


def tracker_counts(values: np.ndarray, reference: np.ndarray) -> tuple[dict, object]:
    profile = build_profile({"x": reference}, model="m", model_version="1")
    registry = CollectorRegistry()
    ModelMonitor("m", "1", registry=registry, reference=profile).record_feature_batch({"x": values})
    return series(registry), profile.features[0]


@pytest.mark.parametrize("current", [SAME, SHIFTED], ids=["same", "shifted"])
def test_binned_statistics_from_the_monitor_match_numpy_and_scipy(current: np.ndarray) -> None:
    exposed, feature = tracker_counts(current, REFERENCE)
    bins = np.array([exposed[("mlscope_feature_bin_total", (("bin", str(k)), ("feature", "x"), ("model", "m"),
                                                            ("model_version", "1")))]
                     for k in range(len(feature.reference_bins))])
    shares, cdf = numeric_shares(feature, current)
    np.testing.assert_array_equal(bins / bins.sum(), shares)  # the monitor's bins are numpy's bins, exactly
    ref = np.asarray(feature.reference_bins)
    psi = stats.psi(shares, ref)
    if current is SAME:
        assert psi < 0.001 and stats.js_distance(shares, ref) < 0.02
    else:
        # N(0.5, 1) against N(0, 1) on deciles: PSI of the true distributions, computed analytically.
        edges = np.concatenate(([-np.inf], scipy_stats.norm.ppf(np.arange(1, 10) / 10), [np.inf]))
        true_shares = np.diff(scipy_stats.norm.cdf(edges, loc=0.5))
        assert psi == pytest.approx(symmetric_kl(true_shares, np.full(10, 0.1)), rel=0.05)
    # KS at the fine edges never exceeds the exact KS and is close to it.
    exact = scipy_stats.ks_2samp(current, REFERENCE).statistic
    binned = stats.ks_on_edges(cdf, feature.reference_cdf)
    assert binned <= exact + 1e-12 and exact - binned < 0.02
    # Chi-square of the counts against the reference's counts: scipy's homogeneity statistic.
    reference = numeric_counts(feature, REFERENCE)
    chi = stats.chi_square(bins, reference)
    assert chi == pytest.approx(homogeneity(bins, reference), rel=1e-9)
    assert (chi > 1000) == (current is SHIFTED)


def test_chi_square_is_the_homogeneity_test_of_the_two_count_rows() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        window, reference = rng.poisson(rng.uniform(0, 30, 12)), rng.poisson(rng.uniform(0, 300, 12))
        window[:2] = reference[:2] = 0  # bins empty in both: left out of the table
        table = np.stack([window, reference])[:, 2:]
        assert stats.chi_square(window, reference) == pytest.approx(
            scipy_stats.chi2_contingency(table, correction=False).statistic, rel=1e-10)
    # Many windows at once, along the last axis.
    windows = rng.poisson(20, (5, 6))
    np.testing.assert_allclose(stats.chi_square(windows, np.full(6, 100)),
                               [stats.chi_square(w, np.full(6, 100)) for w in windows], rtol=1e-12)
    # An unchanged constant feature scores 0 (it scored about 5 with the reference share clamped at 1e-4).
    assert stats.chi_square(np.array([50_000, 0]), np.array([6_000, 0])) == 0
    # A new category (none in the reference) is bounded by n + N, not millions; no row, no statistic.
    new_category = stats.chi_square(np.array([380, 20]), np.array([6_000, 0]))
    assert new_category == pytest.approx(scipy_stats.chi2_contingency([[380, 20], [6_000, 0]],
                                                                      correction=False).statistic)
    assert 100 < new_category < 6_400
    assert np.isnan(stats.chi_square(np.zeros(3), np.ones(3)))


def test_exact_snapshot_matches_scipy() -> None:
    profile = small_profile()
    registry = CollectorRegistry()
    monitor = ModelMonitor("small", "1", registry=registry, reference=profile, task="regression")
    recent = np.random.default_rng(3).lognormal(10.3, 0.5, 3000)
    monitor.record_feature_batch({"income": recent})
    refresh_snapshots(registry)  # what the background thread does every snapshot_interval
    exposed = series(registry)
    key = (("feature", "income"), ("model", "small"), ("model_version", "1"))
    window = recent[-2000:]  # the ring keeps the last 2,000 values
    feature = profile.features[0]
    sample = np.asarray(feature.sample)  # 500 quantiles standing for the reference's 2,000 values
    ks = scipy_stats.ks_2samp(window, sample, method="asymp")
    assert exposed[("mlscope_drift_snapshot_ks_statistic", key)] == pytest.approx(ks.statistic, rel=1e-9)
    # scipy's asymptotic p-value (kstwo at the effective size), with the reference counted as 2,000 values.
    effective = round(window.size * feature.present / (window.size + feature.present))
    assert exposed[("mlscope_drift_snapshot_ks_pvalue", key)] == pytest.approx(
        scipy_stats.kstwo.sf(ks.statistic, effective), abs=5e-4)
    assert exposed[("mlscope_drift_snapshot_wasserstein", key)] == pytest.approx(
        scipy_stats.wasserstein_distance(window, sample), rel=1e-9)
    assert exposed[("mlscope_drift_snapshot_values", key)] == 2000
    assert exposed[("mlscope_drift_snapshot_ks_pvalue", key)] < 1e-6  # a 0.3 log-shift is detected


def test_calibration_merges_fine_bins_of_every_window_into_psi_bins() -> None:
    """The calibration's PSI and JS on rows of fine-bin counts (windows x bins) equal scipy's on each row's counts
    summed into its PSI bins one by one."""
    rng = np.random.default_rng(7)
    to_psi = np.sort(np.concatenate([np.arange(5), rng.integers(0, 5, 35)]))  # every PSI bin holds a fine bin
    windows, reference = rng.integers(1, 50, (6, 40)), rng.integers(1, 50, 40)
    got = numeric_statistics(to_psi, 5)(windows, reference)
    q = np.array([reference[to_psi == j].sum() for j in range(5)]) / reference.sum()
    for row, window in enumerate(windows):
        p = np.array([window[to_psi == j].sum() for j in range(5)]) / window.sum()
        assert got["psi"][row] == pytest.approx(symmetric_kl(p, q), rel=1e-12)
        assert got["js_distance"][row] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
