"""Binned drift statistics in numpy: the exact arithmetic of the PromQL recording rules.

Conventions shared with ``mlscope.rules.drift`` (and the tests' references):
natural log for PSI, Jensen-Shannon as a *distance* in base 2 (the square root
of the divergence, in [0, 1]), and every proportion clamped from below at
``EPSILON`` (not renormalised) before a log or a division, so empty bins give
finite values; chi-square is a homogeneity test of counts (no clamping). All
functions work along the last axis, so many chunks or features are computed at once.
"""
from __future__ import annotations

import numpy as np

EPSILON = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    """Counts along the last axis as shares of their total (zeros where the total is zero)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def psi(current: np.ndarray, reference: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Population stability index: sum over bins of (p - q) * ln(p / q)."""
    p, q = np.maximum(current, eps), np.maximum(reference, eps)
    return np.sum((p - q) * np.log(p / q), axis=-1)


def js_distance(current: np.ndarray, reference: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Jensen-Shannon distance in base 2 (``scipy.spatial.distance.jensenshannon(p, q, base=2)``)."""
    p, q = np.maximum(current, eps), np.maximum(reference, eps)
    m = (p + q) / 2
    divergence = np.sum(0.5 * p * np.log2(p / m) + 0.5 * q * np.log2(q / m), axis=-1)
    return np.sqrt(np.maximum(divergence, 0.0))


def ks_on_edges(current_cdf: np.ndarray, reference_cdf: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov statistic restricted to the bin edges: max |F_current(e) - F_reference(e)|."""
    return np.max(np.abs(np.asarray(current_cdf) - np.asarray(reference_cdf)), axis=-1)


def chi_square(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pearson's chi-square homogeneity statistic of two count vectors (along the last axis).

    The statistic of ``scipy.stats.chi2_contingency([current, reference], correction=False)`` on
    the 2 x k table of the window's counts and the reference's counts, bins empty in both left
    out (k - 1 degrees of freedom, k the bins left); NaN when either row is empty. Written as
    ``sum (o_i N - r_i n)^2 / (n N (o_i + r_i))`` (n, N the row totals), the recording rules' form.
    """
    o, r = np.asarray(current, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    n, big_n = o.sum(axis=-1, keepdims=True), r.sum(axis=-1, keepdims=True)
    both = o + r
    terms = np.divide((o * big_n - r * n) ** 2, n * big_n * both, out=np.zeros(np.broadcast(o, r).shape),
                      where=(both > 0) & (n > 0) & (big_n > 0))
    return np.where((n[..., 0] > 0) & (big_n[..., 0] > 0), terms.sum(axis=-1), np.nan)


def cumulative(counts: np.ndarray) -> np.ndarray:
    """Per-bin counts (last bin open-ended) -> CDF at each finite edge (the last bin is dropped)."""
    return np.cumsum(proportions(counts), axis=-1)[..., :-1]
