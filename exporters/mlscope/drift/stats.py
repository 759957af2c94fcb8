"""Binned drift statistics in numpy: the exact arithmetic of the PromQL recording rules.

Conventions shared with ``mlscope.rules.drift`` (and the tests' references):
natural log for PSI, Jensen-Shannon as a *distance* in base 2 (the square root
of the divergence, in [0, 1]), and every proportion clamped from below at
``EPSILON`` (not renormalised) before a log or a division, so empty bins give
finite values. All functions work along the last axis, so many chunks or
features are computed at once.
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


def chi_square(observed: np.ndarray, reference: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Pearson's chi-square statistic of observed counts against reference proportions."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = observed.sum(axis=-1, keepdims=True) * np.maximum(reference, eps)
    return np.sum((observed - expected) ** 2 / expected, axis=-1)


def cumulative(counts: np.ndarray) -> np.ndarray:
    """Per-bin counts (last bin open-ended) -> CDF at each finite edge (the last bin is dropped)."""
    return np.cumsum(proportions(counts), axis=-1)[..., :-1]
