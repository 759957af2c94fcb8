"""Drift thresholds with a stated false-alarm rate, from a reference's bin counts.

The promise: a window of at least ``window_values`` values drawn from the
reference's distribution exceeds a feature's threshold with probability at most
``rate`` (1 % by default). The alert rules judge only windows holding that many
values (the drift warm-up guard's ``warmup.drift.min_count`` in ``mlscope.rules.config``); larger windows
are less noisy, so the promise holds for them too. Each threshold is the larger
of two ``1 - rate`` quantiles, both computed for windows of ``window_values``:

* **leave-one-chunk-out**: the reference, in its row order, is cut into chunks
  of ``window_values`` rows and each chunk is compared with the *rest* of the
  reference (its counts minus the chunk's). It sees variation over time that
  independent draws do not, and is used when there are at least ``1 / rate``
  chunks (so that the quantile is an observed chunk, not an extrapolation);
* **simulation from the counts**: ``simulations`` windows, each drawn from bin
  probabilities the reference's counts make plausible (the posterior
  ``Dirichlet(counts + 1/2)``: for quantile bins of continuous data this is
  exactly how the true probabilities of the bins vary between references),
  compared with the reference's shares through the same statistic (epsilon
  clamp and empty bins included). It counts the reference's own sampling
  error, so it holds for small references where the chunks are too few. Its
  quantile is taken at ``rate`` minus the one-sided 95 % binomial margin of
  ``simulations`` draws, so the simulation's own noise does not break the promise.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import stats

Statistics = Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]]
"""(window counts [k, bins], reference counts [k, bins]) -> statistic name -> k values."""


@dataclass(frozen=True)
class Calibration:
    """How thresholds are calibrated (stored in the profile's settings)."""

    rate: float = 0.01
    window_values: int = 100
    simulations: int = 4000

    def __post_init__(self) -> None:
        if not 0 < self.rate < 0.5:
            raise ValueError(f"false_alarm_rate must be in (0, 0.5), got {self.rate}")
        if self.window_values < 10:
            raise ValueError(f"window_values must be at least 10, got {self.window_values}")
        if self.simulations * self.rate < 20:
            raise ValueError(f"simulations x false_alarm_rate must be at least 20, got {self.simulations}")

    @property
    def min_chunks(self) -> int:
        """Chunks the leave-one-chunk-out quantile needs (at least one chunk above it)."""
        return math.ceil(1 / self.rate)


def chunk_counts(rows_of_values: np.ndarray, bins: np.ndarray, n_bins: int, rows: int,
                 chunk_size: int) -> np.ndarray:
    """Bin counts per consecutive chunk of ``chunk_size`` rows (the incomplete last chunk dropped)."""
    n_chunks = rows // chunk_size
    chunk = rows_of_values // chunk_size
    keep = chunk < n_chunks
    flat = np.bincount(chunk[keep] * n_bins + bins[keep], minlength=n_chunks * n_bins)
    counts = flat.reshape(n_chunks, n_bins)
    return counts[counts.sum(axis=1) > 0]


def thresholds(reference: np.ndarray, chunks: np.ndarray, statistics: Statistics, cfg: Calibration,
               rng: np.random.Generator) -> tuple[dict[str, float], bool]:
    """Threshold per statistic, and whether leave-one-chunk-out took part (enough chunks)."""
    reference = np.asarray(reference, dtype=np.int64)
    plausible = rng.dirichlet(reference + 0.5, size=cfg.simulations)
    windows = rng.multinomial(cfg.window_values, plausible)
    same = np.broadcast_to(reference, windows.shape)
    strict = cfg.rate - 1.645 * math.sqrt(cfg.rate * (1 - cfg.rate) / cfg.simulations)
    out = {name: _quantile(values, strict) for name, values in statistics(windows, same).items()}
    loo = chunks.shape[0] >= cfg.min_chunks
    if loo:
        rest = reference[None, :] - chunks
        for name, values in statistics(chunks, rest).items():
            out[name] = max(out[name], _quantile(values, cfg.rate))
    return out, loo


def _quantile(values: np.ndarray, rate: float) -> float:
    """The ``1 - rate`` quantile, rounded up to an observed value (a threshold exceeded at most ``rate``)."""
    return float(np.quantile(values, 1.0 - rate, method="higher"))


def numeric_statistics(to_psi: np.ndarray, n_psi: int) -> Statistics:
    """PSI and JS distance on the PSI bins, KS on the fine edges, from fine-bin counts."""
    def compute(window: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
        p, q = _coarse(window, to_psi, n_psi), _coarse(reference, to_psi, n_psi)
        return {"psi": stats.psi(p, q), "js_distance": stats.js_distance(p, q),
                "ks": stats.ks_on_edges(stats.cumulative(window), stats.cumulative(reference))}
    return compute


def categorical_statistics(window: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """PSI and JS distance on the category bins."""
    p, q = stats.proportions(window), stats.proportions(reference)
    return {"psi": stats.psi(p, q), "js_distance": stats.js_distance(p, q)}


def _coarse(fine: np.ndarray, to_psi: np.ndarray, n_psi: int) -> np.ndarray:
    """Shares in the PSI bins of counts in the fine bins (rows of ``fine``).

    Summed by index, not by a product with a 0/1 matrix: a BLAS product from a model service's threads can hang in
    OpenBLAS's thread pool (numpy issue 17752; seen here as a profile build stuck for over 30 s on 2 loaded cores).
    """
    fine = np.asarray(fine, dtype=np.float64)
    merged = np.zeros(fine.shape[:-1] + (n_psi,))
    np.add.at(merged.T, to_psi, fine.T)  # the last axis first: a fine bin adds to its PSI bin
    return stats.proportions(merged)
