"""False alarms without drift: windows drawn from the distribution a reference came from.

Shared by the unit tests (few windows) and ``benchmarks/suite_drift_thresholds.py`` (thousands).
Windows are raw values binned with ``np.digitize`` (right-closed, like Prometheus' ``le``), their
statistics computed with the formulas the tests check against scipy; the exact snapshot's p-value
is compared with ``scipy.stats.ks_2samp`` against the *whole* reference where scipy is available.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mlscope.drift import build_profile, stats
from mlscope.drift.exact import exact_statistics
from mlscope.drift.profile import NumericFeature

Draw = Callable[[np.random.Generator, int], np.ndarray]

DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(0.0, 1.0, n),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 1.0, n),
    "poisson(3)": lambda rng, n: rng.poisson(3.0, n).astype(np.float64),
}
STATISTICS = ("psi", "js_distance", "ks")


def margin(rate: float, windows: int) -> float:
    """Half-width of the 95 % normal-approximation binomial interval of a share ``rate`` over ``windows``."""
    return 1.96 * math.sqrt(rate * (1 - rate) / windows)


def window_statistics(feature: NumericFeature, windows: np.ndarray) -> dict[str, np.ndarray]:
    """PSI, JS distance and binned KS of each row of ``windows`` (raw values) against the reference."""
    psi_index = np.digitize(windows, feature.psi_edges, right=True)
    n_psi = len(feature.reference_bins)
    psi_counts = np.stack([np.bincount(row, minlength=n_psi) for row in psi_index])
    shares, ref = stats.proportions(psi_counts), np.asarray(feature.reference_bins)
    cdf = np.stack([(windows <= e).mean(axis=1) for e in feature.fine_edges], axis=1)
    return {"psi": stats.psi(shares, ref), "js_distance": stats.js_distance(shares, ref),
            "ks": stats.ks_on_edges(cdf, np.asarray(feature.reference_cdf))}


@dataclass(frozen=True)
class Flagged:
    """Windows above their threshold, per statistic, pooled over references."""

    distribution: str
    reference_rows: int
    window_values: int
    windows: int
    flagged: dict[str, int]
    worst_reference: dict[str, float]  # the highest share flagged among the references

    def share(self, statistic: str) -> float:
        return self.flagged[statistic] / self.windows


def threshold_false_alarms(distribution: str, reference_rows: int, window_sizes: Sequence[int], *,
                           references: int, windows_per_reference: int, seed: int = 0,
                           **settings: object) -> list[Flagged]:
    """For each window size: windows drawn from ``distribution`` whose statistic exceeds the threshold."""
    draw = DISTRIBUTIONS[distribution]
    flagged = {n: dict.fromkeys(STATISTICS, 0) for n in window_sizes}
    worst = {n: dict.fromkeys(STATISTICS, 0.0) for n in window_sizes}
    for r in range(references):
        rng = np.random.default_rng([seed, r])
        profile = build_profile({"x": draw(rng, reference_rows)}, model="null", model_version="1",
                                seed=seed * 1000 + r, **settings)  # type: ignore[arg-type]
        feature = profile.features[0]
        assert isinstance(feature, NumericFeature)
        for n in window_sizes:
            values = draw(rng, n * windows_per_reference).reshape(windows_per_reference, n)
            for name, statistic in window_statistics(feature, values).items():
                above = int(np.count_nonzero(statistic > feature.thresholds[name]))
                flagged[n][name] += above
                worst[n][name] = max(worst[n][name], above / windows_per_reference)
    total = references * windows_per_reference
    return [Flagged(distribution, reference_rows, n, total, flagged[n], worst[n]) for n in window_sizes]


def snapshot_false_alarms(distribution: str, reference_rows: int, window_values: int, *, seeds: Sequence[int],
                          windows_per_seed: int, alpha: float = 0.05,
                          **settings: object) -> dict[int, float]:
    """Per seed: the share of unshifted windows whose exact snapshot p-value is below ``alpha``."""
    draw = DISTRIBUTIONS[distribution]
    out = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        profile = build_profile({"x": draw(rng, reference_rows)}, model="null", model_version="1", seed=seed,
                                **settings)  # type: ignore[arg-type]
        feature = profile.features[0]
        assert isinstance(feature, NumericFeature)
        sample = np.asarray(feature.sample)
        flagged = 0
        for _ in range(windows_per_seed):
            _, pvalue, _, _ = exact_statistics(draw(rng, window_values), sample, feature.present)
            flagged += pvalue < alpha
        out[seed] = flagged / windows_per_seed
    return out
