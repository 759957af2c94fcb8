"""The exact snapshot statistics (numpy only) against scipy on the same raw values."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlscope.drift.exact import exact_statistics, kolmogorov_sf, ks_pvalue


@pytest.mark.parametrize("seed", range(12))
def test_ks_and_wasserstein_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.choice([50, 300, 2000])), int(rng.choice([200, 1000]))
    current, reference = rng.normal(rng.uniform(0, 0.4), 1.0, n), rng.normal(0, 1.0, m)
    if seed % 3 == 0:  # ties within and across the samples
        current, reference = np.round(current, 1), np.round(reference, 1)
    ks, pvalue, distance, values = exact_statistics(current, reference)
    expected = stats.ks_2samp(current, reference, method="asymp")
    assert ks == pytest.approx(expected.statistic, abs=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, abs=5e-4)
    assert distance == pytest.approx(stats.wasserstein_distance(current, reference), rel=1e-9, abs=1e-12)
    assert values == n


@pytest.mark.parametrize("n", [30, 100, 1000, 5000])
def test_pvalue_tracks_the_one_sample_distribution_scipy_uses(n: int) -> None:
    # scipy's asymp two-sample p-value is kstwo.sf(D, round(m k / (m + k))): here m = k = 2n gives n.
    grid = np.linspace(0.005, 0.4, 200)
    ours = np.array([ks_pvalue(d, 2 * n, 2 * n) for d in grid])
    reference = stats.kstwo.sf(grid, n)
    assert np.max(np.abs(ours - reference)) < 5e-4
    if n >= 100:  # relative error where a test at 0.05, 0.01 or 0.001 decides
        decisive = (reference > 1e-3) & (reference < 0.5)
        assert np.all(np.abs(ours[decisive] / reference[decisive] - 1) < 0.03)


def test_kolmogorov_distribution_equals_scipy_limit() -> None:
    grid = np.linspace(0.0, 3.0, 301)
    assert [kolmogorov_sf(x) for x in grid] == pytest.approx(stats.kstwobign.sf(grid), abs=1e-12)
