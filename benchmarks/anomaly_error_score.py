"""Across seeds: the committed error-ratio rule on the anomaly suite's history (issue 25; not a suite).

The suite replays one realisation (seed 7) in a real Prometheus. How often a 3x error ratio is found within
15 minutes depends on the realisation and on the traffic, so this numpy emulation of the committed rule (the
``errors`` settings of the default profile: the Freeman-Tukey deviate of the errors counted over the count window
against the baseline ratio x the window's requests, the baseline the median of the ratio's hourly average at the
same time each offset ago, never below the floor; judged at ``min_traffic`` expected errors, for ``for``) judges
the history of 20 seeds at the suite's two traffic levels, and prints the delays and the false error-ratio alarms
per judged week beside the Lorden bound (the least expected delay any detector can reach at one false alarm a week).
Run: ``python benchmarks/anomaly_error_score.py`` (about 10 s).
"""
from __future__ import annotations

import warnings

import numpy as np

import suite_anomaly as s

D = 1440  # minutes a day
SEEDS = range(1, 21)


def _winsum(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(x))])
    out = np.full(x.size, np.nan)
    out[w - 1:] = c[w:] - c[:-w]
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.size, np.nan)
    out[k:] = x[:-k]
    return out


def counts(seed: int, peak: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests and errors per minute of the suite's history, and where its gaps are."""
    series = s.history(0.0, seed=seed, peak=peak)
    requests_, errors = series[0][2], series[1][2]
    return np.diff(requests_, prepend=0.0), np.diff(errors, prepend=0.0), np.isnan(requests_)


def judge(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float | None, int]:
    """The incident's delay in minutes (None: missed) and the number of false alarms, under the committed rule."""
    from mlscope.rules import config_for
    from mlscope.rules.config import duration_seconds

    a = config_for("default").profile.anomaly
    e_cfg = a.errors
    w, smooth, for_m = (round(duration_seconds(d) / 60) for d in (e_cfg.count_window, a.smoothing_of(e_cfg),
                                                                  e_cfg.for_duration))
    offsets = [round(duration_seconds(o) / 60) for o in a.offsets_of(e_cfg)]
    r, e, gap = data
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        rw, ew = _winsum(r, w), _winsum(e, w)
        rw[gap] = np.nan
        ratio = ew / rw
        hour = np.convolve(np.nan_to_num(ratio), np.ones(smooth), "full")[:r.size] / np.convolve(
            (~np.isnan(ratio)).astype(float), np.ones(smooth), "full")[:r.size]
        baseline = np.maximum(np.nanmedian(np.vstack([_shift(hour, o) for o in offsets]), axis=0),
                              e_cfg.baseline_floor)
        expected = baseline * rw
        deviate = np.sqrt(ew) + np.sqrt(ew + 1) - np.sqrt(4 * expected + 1)
    active = (deviate > e_cfg.z_threshold) & (expected >= e_cfg.min_traffic)
    active[:s.WARM_DAYS * D] = False
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    fired = [b + for_m for b, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
             if end - b > for_m]
    _, onset, stop, _ = s.INCIDENTS["error ratio 3x"]
    hits = [f - onset / 60 for f in fired if onset / 60 <= f <= stop / 60 + 30]
    return (hits[0] if hits else None), len(fired) - len(hits)


def main() -> None:
    weeks = (s.DAYS - s.WARM_DAYS) / 7
    print("| peak req/s | Lorden bound | seed 7: delay | median delay | 90th pct | within 15 min "
          "| false/week (mean, max) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for peak in s.PEAKS:
        results = {seed: judge(counts(seed, peak)) for seed in SEEDS}
        delays = np.array([d if d is not None else np.inf for d, _ in results.values()])
        false = np.array([f for _, f in results.values()]) / weeks
        print(f"| {peak:g} | {s.detection_bound(peak):.1f} min | {results[7][0]} min | {np.median(delays):g} min | "
              f"{np.percentile(delays, 90):.0f} min | {np.sum(delays <= 15)} of {len(delays)} | "
              f"{false.mean():.2f}, {false.max():g} |")


if __name__ == "__main__":
    main()
