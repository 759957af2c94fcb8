"""Across seeds: the committed error-ratio rule on the anomaly suite's history (issue 25; not a suite).

The suite replays one realisation (seed 7) in a real Prometheus. How often a 3x error ratio is found within
15 minutes depends on the realisation and on the traffic, so this numpy emulation of the committed rule (the
``errors`` settings of the default profile: the Freeman-Tukey deviate of the errors counted over the count window
against the baseline ratio x the window's requests, the baseline the median of the ratio's hourly average at the
same time each offset ago, never below the floor; judged at ``min_traffic`` expected errors, for ``for``) judges
the history of 20 seeds at the suite's two traffic levels, and prints the delays and the false error-ratio alarms
per judged week beside two references for what any detector could do: the Lorden bound (the least expected delay at
one false alarm a week) and an oracle CUSUM on the same counts (Page's test of the known 0.1 % against 0.3 %, the
real ratio and the incident's size given to it, alarming while its score is above a threshold, the lowest threshold
whose false alarms average at most one a week over the seeds).
Run: ``python benchmarks/anomaly_error_score.py`` (about 5 s).
"""
from __future__ import annotations

import warnings

import numpy as np

import suite_anomaly as s

D = 1440  # minutes a day
SEEDS = range(1, 21)
ORACLE_THRESHOLDS = np.arange(4.0, 12.01, 0.5)  # CUSUM thresholds (nats) tried, lowest first
Result = tuple[float | None, int]  # the incident's delay in minutes (None: missed), the false alarms


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


def judge(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Result:
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
    return _episodes((deviate > e_cfg.z_threshold) & (expected >= e_cfg.min_traffic), for_m)


def _episodes(active: np.ndarray, for_m: int) -> Result:
    """The incident's delay (None: missed) and the false alarms of the firing episodes of ``active`` in the judged
    weeks, each firing once it has lasted ``for_m`` minutes."""
    active = active.copy()
    active[:s.WARM_DAYS * D] = False
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    fired = [b + for_m for b, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
             if end - b > for_m]
    _, onset, stop, _ = s.INCIDENTS["error ratio 3x"]
    hits = [f - onset / 60 for f in fired if onset / 60 <= f <= stop / 60 + 30]
    return (hits[0] if hits else None), len(fired) - len(hits)


def oracle_score(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Page's CUSUM of the log-likelihood ratio of 0.3 % against 0.1 % errors, minute by minute, from the judged
    weeks' start (gaps add nothing): the optimal detector of this incident when its size and the true ratio are
    known, which no rule can know."""
    r, e, gap = data
    before = 0.001 * np.nan_to_num(r)
    step = np.where(gap, 0.0, np.nan_to_num(e) * np.log(3.0) - 2.0 * before)
    score, out = 0.0, np.zeros(r.size)
    for t in range(s.WARM_DAYS * D, r.size):
        score = max(0.0, score + step[t])
        out[t] = score
    return out


def oracle(datas: list[tuple[np.ndarray, np.ndarray, np.ndarray]], weeks: float) -> tuple[float, list[Result]]:
    """The oracle CUSUM's threshold (the lowest whose false alarms average <= 1 a week) and its results per seed."""
    scores = [oracle_score(d) for d in datas]
    for threshold in ORACLE_THRESHOLDS:
        results = [_episodes(score > threshold, 0) for score in scores]
        if np.mean([f for _, f in results]) / weeks <= 1.0:
            return float(threshold), results
    raise RuntimeError("no oracle threshold keeps false alarms under one a week")


def _summary(results: list[Result], weeks: float) -> tuple[np.ndarray, np.ndarray]:
    delays = np.array([d if d is not None else np.inf for d, _ in results])
    return delays, np.array([f for _, f in results]) / weeks


def main() -> None:
    weeks = (s.DAYS - s.WARM_DAYS) / 7
    print("| peak req/s | detector | seed 7: delay | median delay | 90th pct | within 15 min "
          "| false/week (mean, max) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for peak in s.PEAKS:
        datas = [counts(seed, peak) for seed in SEEDS]
        threshold, oracle_results = oracle(datas, weeks)
        for name, results in ((f"committed rule (Lorden bound {s.detection_bound(peak):.1f} min)",
                               [judge(d) for d in datas]),
                              (f"oracle CUSUM, threshold {threshold:g}", oracle_results)):
            delays, false = _summary(results, weeks)
            print(f"| {peak:g} | {name} | {results[list(SEEDS).index(7)][0]} min | {np.median(delays):g} min | "
                  f"{np.percentile(delays, 90):.0f} min | {np.sum(delays <= 15)} of {len(delays)} | "
                  f"{false.mean():.2f}, {false.max():g} |")


if __name__ == "__main__":
    main()
