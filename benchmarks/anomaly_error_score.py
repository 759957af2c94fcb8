"""Offline study of an error-count score for the adaptive error-ratio alert (issue 25 follow-up; not a suite).

On the anomaly suite's synthetic history (``suite_anomaly.history``, one seed per run), a numpy emulation of
z = (observed errors - expected errors) / sqrt(expected errors) over a count window of W minutes, expected =
baseline ratio x requests in the window (baseline: median of the 5-minute error ratio averaged over 1 h at the same
time 1d, 1w and 2w ago), judged when expected >= ``min_expected`` errors, for ``for_m`` minutes. Prints, per
setting, the error-ratio incident's delay (min) and the false error-ratio alarms per judged week, for the seed the
suite uses (7) and eight others. Run: ``python benchmarks/anomaly_error_score.py`` (about 1 min).
"""
from __future__ import annotations

import warnings

import numpy as np

import suite_anomaly as s

D = 1440  # minutes a day
OFFSETS = (D, 7 * D, 14 * D)


def _winsum(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(x))])
    out = np.full(x.size, np.nan)
    out[w - 1:] = c[w:] - c[:-w]
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.size, np.nan)
    out[k:] = x[:-k]
    return out


def counts(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests and errors per minute of the suite's history, and where its gaps are."""
    series = s.history(0.0, seed=seed)
    requests_, errors = series[0][2], series[1][2]
    return np.diff(requests_, prepend=0.0), np.diff(errors, prepend=0.0), np.isnan(requests_)


def judge(data: tuple[np.ndarray, np.ndarray, np.ndarray], w: int, for_m: int, z: float,
          min_expected: float) -> tuple[float | None, int]:
    """The incident's delay (None: missed) and the number of false alarms of one setting."""
    r, e, gap = data
    rw, ew = _winsum(r, w), _winsum(e, w)
    rw[gap] = np.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ratio5 = _winsum(e, 5) / _winsum(r, 5)
        hour = np.convolve(np.nan_to_num(ratio5), np.ones(60), "full")[:r.size] / np.convolve(
            (~np.isnan(ratio5)).astype(float), np.ones(60), "full")[:r.size]
        baseline = np.nanmedian(np.vstack([_shift(hour, o) for o in OFFSETS]), axis=0)
        expected = baseline * rw
        score = (ew - expected) / np.sqrt(expected)
    active = (score > z) & (expected >= min_expected)
    active[:s.WARM_DAYS * D] = False
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    fired = [b + for_m for b, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
             if end - b > for_m]
    _, onset, stop, _ = s.INCIDENTS["error ratio 3x"]
    hits = [f - onset / 60 for f in fired if onset / 60 <= f <= stop / 60 + 30]
    return (hits[0] if hits else None), len(fired) - len(hits)


def main() -> None:
    weeks = (s.DAYS - s.WARM_DAYS) / 7
    data = {seed: counts(seed) for seed in range(1, 10)}
    print("| W | for | z | min expected | seed 7: delay | seed 7: false/week | 8 other seeds: median delay "
          "| detected <= 15 min | false/week |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w, for_m, z, min_expected in ((10, 2, 4.0, 3), (12, 1, 4.0, 3), (12, 2, 3.5, 3), (10, 1, 3.0, 3),
                                      (12, 2, 3.0, 3)):
        seven = judge(data[7], w, for_m, z, min_expected)
        other = [judge(data[k], w, for_m, z, min_expected) for k in data if k != 7]
        delays = [d if d is not None else np.inf for d, _ in other]
        print(f"| {w} | {for_m} | {z:g} | {min_expected:g} | {seven[0]} | {seven[1] / weeks:.1f} | "
              f"{np.median(delays):g} | {sum(d <= 15 for d in delays)} of 8 | "
              f"{sum(f for _, f in other) / len(other) / weeks:.2f} |")


if __name__ == "__main__":
    main()
