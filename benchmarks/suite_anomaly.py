"""Suite `anomaly`: the adaptive alerts on four weeks of synthetic seasonal history, against today's static alerts.

History (1-minute samples, 28 days from a Monday 00:00 UTC, one model version): a request rate with a daily
(peak 14:00 UTC) and weekly (weekends at 60 %) pattern and day-to-day and Poisson noise; errors binomial at 0.1 %;
latency log-normal (median 40 ms, busier hours slower) counted into the catalog's buckets; one feature's PSI
(recorded series, around 0.03 with a daily wobble). Gaps: 3 h of nothing on day 8, 20 min on day 19. A
holiday on day 9 (-30 % all day, in history) and a mild dip on day 25 (-12 % all day: must stay silent).

Incidents (all after the two weeks of warm-up the largest offset needs), defined before measuring:
traffic drop to 50 % (day 16, 10:00, 1 h); error ratio 3x (day 18, 15:00, 1 h); latency creep +30 % over two
hours (day 20, 09:00-11:00, held to 12:00): detected once flagged within 30 min after it is 20 % above baseline
(80 min into the ramp; the delay is counted from there); PSI step 0.03 -> 0.09 (day 23, 13:00, 3 h). An alert
detects an incident when it first fires between its onset and 30 min after its end; every other firing episode
in days 14-28 is a false alarm (an episode per alert and label set). Target: each incident within 15 min,
at most 1 false alarm per simulated week.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import anomaly_harness as h
from common import Row

DAY, MINUTE = 86400.0, 60.0
DAYS = 28
WARM_DAYS = 14
BUDGET_S = 1800.0  # the replays' time budget (both traffic levels)

INCIDENTS = {  # name -> (alert names that detect it, onset s, end s, counted-from s)
    "traffic drop to 50 %": (("ModelTrafficAnomalous", "ModelNoPredictions"), 16 * DAY + 10 * 3600,
                             16 * DAY + 11 * 3600, 16 * DAY + 10 * 3600),
    "error ratio 3x": (("ModelErrorRatioAnomalous", "ModelErrorRateHigh"), 18 * DAY + 15 * 3600,
                       18 * DAY + 16 * 3600, 18 * DAY + 15 * 3600),
    "latency creep +30 % / 2 h": (("ModelLatencyAnomalous", "ModelLatencySLOBurn"), 20 * DAY + 9 * 3600,
                                  20 * DAY + 12 * 3600, 20 * DAY + 9 * 3600 + 80 * 60),
    "PSI step 0.03 -> 0.09": (("FeatureDriftAnomalous", "FeatureDriftHigh"), 23 * DAY + 13 * 3600,
                              23 * DAY + 16 * 3600, 23 * DAY + 13 * 3600),
}
MILD_DIP = (25 * DAY, 26 * DAY)
LABELS = (("model", "m"), ("model_version", "v1"))


def history(start: float, seed: int = 7, peak: float = 10.0) -> list[tuple[h.Series, np.ndarray, np.ndarray]]:
    """The synthetic raw series (counters and the PSI), timestamps from ``start``; ``peak`` requests per second at
    the busiest hour of a weekday."""
    from mlscope.catalog import drift as drift_cat
    from mlscope.catalog import serving as cat

    rng = np.random.default_rng(seed)
    t = np.arange(0, DAYS * DAY, MINUTE)
    hour, day = (t % DAY) / 3600, (t // DAY).astype(int)
    daily = 0.35 + 0.65 * np.exp(-((hour - 14) / 4.5) ** 2)
    weekly = np.where(day % 7 >= 5, 0.6, 1.0)
    day_noise = rng.normal(1.0, 0.03, DAYS)[day]
    rate = peak * daily * weekly * day_noise
    rate[day == 9] *= 0.7  # a holiday in history
    rate[(t >= MILD_DIP[0]) & (t < MILD_DIP[1])] *= 0.88  # the mild dip: must stay silent
    drop = INCIDENTS["traffic drop to 50 %"]
    rate[(t >= drop[1]) & (t < drop[2])] *= 0.5
    requests_ = rng.poisson(rate * MINUTE).astype(float)
    err_p = np.full_like(t, 0.001)
    e = INCIDENTS["error ratio 3x"]
    err_p[(t >= e[1]) & (t < e[2])] *= 3
    errors = rng.binomial(requests_.astype(int), err_p).astype(float)
    median = 0.04 * (1 + 0.15 * daily)
    c = INCIDENTS["latency creep +30 % / 2 h"]
    ramp = np.clip((t - c[1]) / 7200, 0, 1) * ((t >= c[1]) & (t < c[2]))
    median = median * (1 + 0.3 * ramp)
    bounds = np.array(cat.LATENCY_BUCKETS)
    from math import erf, sqrt
    cdf = np.vectorize(lambda x: 0.5 * (1 + erf(x / sqrt(2))))
    probs = cdf((np.log(bounds)[None, :] - np.log(median)[:, None]) / 0.4)  # P(latency <= le)
    buckets = np.floor(requests_[:, None] * probs + rng.normal(0, 0.5, probs.shape)).clip(min=0)
    buckets = np.minimum(np.maximum.accumulate(buckets, axis=1), requests_[:, None])
    psi = 0.03 + 0.006 * daily + rng.normal(0, 0.003, t.size)
    p = INCIDENTS["PSI step 0.03 -> 0.09"]
    psi[(t >= p[1]) & (t < p[2])] += 0.06
    gap = ((t >= 8 * DAY + 3 * 3600) & (t < 8 * DAY + 6 * 3600)) | ((t >= 19 * DAY) & (t < 19 * DAY + 1200))
    ts = start + t

    def keep(values: np.ndarray) -> np.ndarray:
        return np.where(gap, np.nan, values)

    out: list[tuple[h.Series, np.ndarray, np.ndarray]] = [
        ((cat.PREDICTIONS.name, LABELS), ts, keep(np.cumsum(requests_))),
        ((cat.PREDICTION_ERRORS.name, LABELS), ts, keep(np.cumsum(errors))),
        ((cat.PREDICTION_LATENCY.name + "_count", LABELS), ts, keep(np.cumsum(requests_))),
        ((cat.MODEL_INFO.name, LABELS), ts, keep(np.ones_like(t))),
    ]
    for i, le in enumerate(bounds):
        from prometheus_client.utils import floatToGoString
        out.append(((cat.PREDICTION_LATENCY.name + "_bucket", LABELS + (("le", floatToGoString(le)),)), ts,
                    keep(np.cumsum(buckets[:, i]))))
    out.append(((cat.PREDICTION_LATENCY.name + "_bucket", LABELS + (("le", "+Inf"),)), ts, keep(np.cumsum(requests_))))
    feature = LABELS + (("feature", "f1"), ("window", "1h"))
    out += [((drift_cat.PSI.name, feature), ts, keep(psi)),
            ((drift_cat.PSI_THRESHOLD.name, feature), ts, keep(np.full_like(t, 0.15))),
            ((drift_cat.BIN_INCREASE.name, feature), ts, keep(rate * 3600)),
            ((drift_cat.FEATURE_WINDOW_WARM.name, LABELS + (("domain", "drift"), ("feature", "f1"), ("window", "1h"))),
             ts, keep(np.ones_like(t)))]
    return out


def score(episodes: dict[str, list[float]], start: float) -> dict[str, Any]:
    """Detections, delays (minutes) and false alarms of one rule set: ``episodes`` = alert -> first firing times."""
    found, used = {}, set()
    for incident, (alerts, onset, end, counted) in INCIDENTS.items():
        hits = [(f, a) for a in alerts for f in episodes.get(a, []) if start + onset <= f <= start + end + 1800]
        used |= {(a, f) for f, a in hits}
        first = min((f for f, _ in hits), default=None)
        creep_ok = first is not None and (counted == onset or first <= start + counted + 1800)
        found[incident] = (first - start - counted) / 60 if first is not None and creep_ok else None
    judged = [(a, f) for a, fs in episodes.items() for f in fs if f >= start + WARM_DAYS * DAY]
    false = [(a, f) for a, f in judged if (a, f) not in used]
    dip = [x for x in false if start + MILD_DIP[0] <= x[1] < start + MILD_DIP[1] + 3600]
    return {"found": found, "false": false, "dip": dip}


def replay_all(tmp: Path, peak: float) -> tuple[dict[str, Any], dict[str, Any], int, float]:
    from mlscope.rules import render

    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    for name, text in render("default").items():
        (rules_dir / name).write_text(text)
    end = (time.time() // 3600 - 2) * 3600
    start = end - DAYS * DAY
    replay = h.Replay(tmp, start, end - MINUTE)
    replay.load(h.openmetrics(history(start, peak=peak)))
    serving = h.rules_of(rules_dir / "mlscope-serving.yml", ["mlscope-serving-recording"])
    anomaly = h.rules_of(rules_dir / "mlscope-anomaly.yml", ["mlscope-anomaly-recording"])
    began = time.perf_counter()
    h.materialise(replay, serving)
    h.materialise(replay, anomaly)
    replay_s = time.perf_counter() - began
    series = len(list(replay.range('count by (__name__, signal) ({__name__=~".+:mlscope_anomaly:.+", '
                                   'model_version="v1"})')))
    try:
        results = {}
        for label, files, groups in (
                ("adaptive", ["mlscope-anomaly.yml"], ["mlscope-anomaly-alerts"]),
                ("static", ["mlscope-serving.yml", "mlscope-drift.yml"], ["mlscope-serving-alerts",
                                                                          "mlscope-drift-alerts"])):
            episodes: dict[str, list[float]] = {}
            for f in files:
                for rule in h.rules_of(rules_dir / f, groups):
                    if "alert" not in rule:
                        continue
                    for runs in h.firing(replay, rule).values():
                        episodes.setdefault(rule["alert"], []).extend(b for b, _ in runs)
            results[label] = score(episodes, start)
    finally:
        replay.stop()
    return results["adaptive"], results["static"], series, replay_s


def _rows(name: str, result: dict[str, Any], reference: dict[str, Any] | None) -> list[Row]:
    weeks = (DAYS - WARM_DAYS) / 7
    rows = []
    for incident, delay in result["found"].items():
        ref = reference["found"][incident] if reference else None
        rows.append(Row("anomaly", f"{name}: {incident}: detection delay (min; NaN = missed)",
                        float("nan") if delay is None else delay, "min",
                        "static rules" if reference else "", None if ref is None else (ref or 1e-9),
                        "<= 15 min"))
    rows.append(Row("anomaly", f"{name}: incidents detected", sum(d is not None for d in result["found"].values()),
                    "of 4", "static rules" if reference else "",
                    sum(d is not None for d in reference["found"].values()) if reference else None, "4 of 4"))
    rows.append(Row("anomaly", f"{name}: false alarms per simulated week ({len(result['false'])} in {weeks:g} weeks;"
                    f" {len(result['dip'])} on the mild dip)", len(result["false"]) / weeks, "per week",
                    "static rules" if reference else "",
                    len(reference["false"]) / weeks if reference else None, "<= 1"))
    return rows


def detection_bound(peak: float, false_per_week: float = 1.0) -> float:
    """The least expected delay (min) of any detector of the error incident (0.1 % -> 0.3 % at its hour's request
    rate) that raises at most ``false_per_week`` false alarms: Lorden's bound ln(ARL) / KL, KL the Kullback-Leibler
    divergence per minute of the errors' Poisson counts after and before."""
    _, onset, _, _ = INCIDENTS["error ratio 3x"]
    hour = (onset % DAY) / 3600
    per_minute = peak * (0.35 + 0.65 * np.exp(-((hour - 14) / 4.5) ** 2)) * MINUTE
    before, after = 0.001 * per_minute, 0.003 * per_minute
    kl = after * np.log(after / before) - (after - before)
    return float(np.log(7 * DAY / MINUTE / false_per_week) / kl)


PEAKS = (10.0, 30.0)  # requests per second at a weekday's busiest hour: the history as defined, and 3x it


def suite_anomaly(quick: bool) -> list[Row]:
    import anomaly_cost

    rows: list[Row] = []
    for peak in PEAKS[:1] if quick else PEAKS:
        with h.temporary() as name:
            adaptive, static, series, replay_s = replay_all(Path(name), peak)
        at = f"@{peak:g} req/s"
        rows += _rows(f"adaptive {at}", adaptive, static) + _rows(f"static {at}", static, None)
        rows.append(Row("anomaly", f"{at}: least expected delay of any error-ratio detector at <= 1 false alarm a "
                        "week (Lorden bound)", detection_bound(peak), "min"))
        rows.append(Row("anomaly", f"{at}: replay of 28 days (serving + anomaly recording rules, materialised "
                        "level by level)", replay_s, "s", "", None, f"<= {BUDGET_S / len(PEAKS):g} s"))
    rows.append(Row("anomaly", "series the adaptive rules add per model version, for the 4 signals the history "
                    "feeds (9 each)", series, "series"))
    return rows + anomaly_cost.rows((10,) if quick else (10, 100))
