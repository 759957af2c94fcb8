"""promtool unit tests of the adaptive alerts, generated with the rules from the same configuration (fast profile).

One test case per signal, one model version per scenario, on a flat signal of level ``B`` whose effective spread
floor is ``F`` (``max(spread_floor, spread_floor_ratio x B)``; a flat residual's deviation is 0):

- ``anomaly``: a step of 3 x z_threshold x F in the signal's direction 10 minutes after warm-up: fires;
- ``drop`` (direction both): the same step the other way: fires too;
- ``warmup``: the same step before history is as old as the largest offset: silent then;
- ``lowtraffic``: the step below the signal's minimum traffic: silent;
- ``wobble``: a step of half the band (0.5 x z_threshold x F): silent;
- ``wrongway`` (one-direction signals): the step the other way: silent;
- ``gap``: B, then 2 B from half the largest offset on; one step before the largest offset the oldest offset has
  no history, so the baseline is the median of the two others (1.5 B), not of three with a 0 (which would be B).

A signal judged as a count (the error ratio) gets counters instead: requests at R/s and errors at a ratio P of
them, the errors' rate multiplied at the step by what makes the count deviate by 2 x z_threshold (``anomaly``,
``warmup``, ``lowtraffic``, where a count window expects half ``min_traffic``) or 0.5 x z_threshold (``wobble``);
``wrongway`` is a drop to a tenth, and ``gap`` doubles P where the smallest offset's copy sees it but not the
middle one's.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from math import sqrt
from typing import Any

import yaml

from ..catalog import drift as drift_cat
from ..catalog import logs as logs_cat
from ..catalog import serving as serving_cat
from ..catalog.quality import RECORDED_BY_LEVEL as QUALITY
from .anomaly import SOURCES, Source, alert_rule, enabled, setting
from .config import RuleConfig, duration_seconds

STEP_S = 20  # input sample spacing and evaluation interval of the test file


@dataclass(frozen=True)
class Inputs:
    """The input series of one signal: its value (a gauge, or a counter whose rate it is) and its traffic."""

    value: str  # series name; labels are added per scenario
    counter: bool
    level: float
    traffic: str  # "" when the signal's traffic is its own baseline
    traffic_ok: float
    traffic_low: float
    low_level: float  # the signal's level in the low-traffic scenario


def _w(window: str) -> str:
    return f'window="{window}"'


def inputs(cfg: RuleConfig, signal: str) -> tuple[Inputs, str]:
    """The signal's inputs and the extra label matcher of its series."""
    p = cfg.profile
    rate, q = serving_cat.REQUEST_RATE.name, QUALITY["model_version"]
    quality_traffic = {"quality": q["mlscope_quality_labelled:increase"].name,
                       "estimated_quality": q["mlscope_quality_expected_predictions:increase"].name}
    table = {
        "traffic": (Inputs(rate, False, 10.0, "", 0, 0, 0.2), _w(p.alert_window)),
        # 2000 req/s: the ratio's binomial noise (a spread bound) stays under its floor, which sets the band.
        "errors": (Inputs(serving_cat.ERROR_RATIO.name, False, 0.01, rate, 2000.0, 0.1, 0.01), _w(p.alert_window)),
        "latency": (Inputs(serving_cat.LATENCY_P95.name, False, 0.1, rate, 10.0, 0.1, 0.1), _w(p.alert_window)),
        "log_volume": (Inputs(logs_cat.PREDICTION_LOG_RECORDS.name, True, 2.0, "", 0, 0, 0.05), 'decision="sampled"'),
        "drift": (Inputs(drift_cat.PSI.name, False, 0.3, drift_cat.BIN_INCREASE.name, 1000.0, 10.0, 0.3),
                  _w(p.drift_windows[0])),
        "quality": (Inputs(q["mlscope_quality_accuracy:ratio"].name, False, 0.9, quality_traffic["quality"], 1000.0,
                           10.0, 0.9), _w(p.quality_windows[0])),
        "estimated_quality": (Inputs(q["mlscope_quality_estimated_accuracy:ratio"].name, False, 0.9,
                                     quality_traffic["estimated_quality"], 1000.0, 10.0, 0.9),
                              _w(p.quality_windows[0])),
    }
    spec, extra = table[signal]
    return _within(spec, getattr(p.anomaly, signal).min_traffic), extra


def _within(spec: Inputs, min_traffic: float) -> Inputs:
    """``spec`` with its traffic set from the configured ``min_traffic``: half of it in the low-traffic scenario,
    at least 4x it otherwise (so the tests pass for any valid setting)."""
    if spec.traffic:
        return replace(spec, traffic_ok=max(spec.traffic_ok, 4 * min_traffic), traffic_low=min_traffic / 2)
    return replace(spec, level=max(spec.level, 4 * min_traffic), low_level=min_traffic / 2)


def _values(level: float, after: float, at_s: float, counter: bool, total_s: float) -> str:
    """promtool's expanding notation: ``level`` until ``at_s`` then ``after``, every STEP_S up to ``total_s``."""
    k, n = round(at_s / STEP_S), round(total_s / STEP_S)
    if not counter:
        return f"{level:.15g}x{k - 1} {after:.15g}x{n - k}"
    return f"0+{level * STEP_S:.15g}x{k - 1} {k * level * STEP_S:.15g}+{after * STEP_S:.15g}x{n - k}"



_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE = re.compile(r'\{\{ \$value \| printf "%\.1f" \}\}')
_SIGN = re.compile(r"\{\{ if lt \$value 0\.0 \}\}(\w+)\{\{ else \}\}(\w+)\{\{ end \}\}")


_RECORDED = re.compile(r'\{\{ with printf "\w+:mlscope_anomaly:(\w+)\{.*?\| query \}\}'
                       r'\{\{ \. \| first \| value \| printf "%\.4g" \}\}\{\{ else \}\}\?\{\{ end \}\}')


def rendered(template: str, labels: dict[str, str], value: float, recorded: dict[str, float]) -> str:
    """An annotation as Prometheus renders it, for the few template forms the anomaly alerts use; ``recorded``:
    what the queried anomaly series (by operation) hold then."""
    text = _RECORDED.sub(lambda m: f"{recorded[m.group(1)]:.4g}", template)
    text = _LABEL.sub(lambda m: labels[m.group(1)], text)
    text = _VALUE.sub(f"{value:.1f}", text)
    text = _SIGN.sub(lambda m: m.group(1) if value < 0 else m.group(2), text)
    if "{{" in text:
        raise ValueError(f"an annotation template the test generator cannot render: {template!r}")
    return text


def _labels(source: Source, version: str, extra: str) -> str:
    feature = ',feature="f"' if source.level == "feature" else ""
    return f'{{model="m",model_version="{version}"{feature},{extra}}}'


@dataclass(frozen=True)
class Case:
    """One signal's input series and what its judged scenarios should give."""

    series: list[dict[str, str]]
    z: dict[str, float]  # version -> the z-score its alert reports at the judged time
    recorded: dict[str, dict[str, float]]  # version -> operation -> its recorded value at the judged time
    settle_s: float  # from a step until the judged value holds it
    gap_at: float  # when the gap scenario's signal doubles
    level: float  # the gap scenario's level before


def _gauge_case(cfg: RuleConfig, source: Source, onset: float, early: float, total: float) -> Case:
    s, a = setting(cfg, source), cfg.profile.anomaly
    spec, extra = inputs(cfg, source.signal)
    sign = -1.0 if s.direction == "down" else 1.0

    def step(level: float, factor: float) -> float:
        return sign * factor * s.z_threshold * max(s.spread_floor, s.spread_floor_ratio * level)

    b = spec.level
    scenarios = {"anomaly": (b, b + step(b, 3), onset), "warmup": (b, b + step(b, 3), early),
                 "lowtraffic": (spec.low_level, spec.low_level + step(spec.low_level, 3), onset),
                 "wobble": (b, b + step(b, 0.5), onset), "gap": (b, 2 * b, early)}
    # The other way, at most down to a tenth of B (a rate stays positive).
    scenarios["drop" if s.direction == "both" else "wrongway"] = (b, max(b - step(b, 3), 0.1 * b), onset)
    series = []
    for version, (level, after, at_s) in scenarios.items():
        series.append({"series": spec.value + _labels(source, version, extra),
                       "values": _values(level, after, at_s, spec.counter, total)})
        if spec.traffic:
            traffic = spec.traffic_low if version == "lowtraffic" else spec.traffic_ok
            series.append({"series": spec.traffic + _labels(source, version, extra),
                           "values": _values(traffic, traffic, early, False, total)})
    floor = {v: max(s.spread_floor, s.spread_floor_ratio * level) for v, (level, _, _) in scenarios.items()}
    z = {v: (after - level) / floor[v] for v, (level, after, _) in scenarios.items()}
    recorded = {v: _band("smoothed", after, level, s.z_threshold * floor[v])
                for v, (level, after, _) in scenarios.items()}
    return Case(series, z, recorded, duration_seconds(a.smoothing_of(s)), early, b)


def _band(judged: str, value: float, baseline: float, half_width: float) -> dict[str, float]:
    return {judged: value, "baseline": baseline, "upper": baseline + half_width,
            "lower": max(baseline - half_width, 0.0)}


def deviate(observed: float, expected: float) -> float:
    """The Freeman-Tukey deviate the count-judged rules compute."""
    return float(sqrt(observed) + sqrt(observed + 1) - sqrt(4 * expected + 1))


def count_band(expected: float, z: float, trials: float) -> dict[str, float]:
    """The ratios whose counts deviate by exactly ``z`` from ``expected`` (as the rules draw the band)."""
    def count(c: float) -> float:
        return ((c - 1 / c) / 2) ** 2

    root = sqrt(4 * expected + 1)
    return {"upper": count(root + z) / trials, "lower": count(max(root - z, 1.0)) / trials}


def _multiple_for(expected: float, target: float) -> float:
    """The multiple of ``expected`` whose observed count deviates by ``target`` (as the rules compute it)."""
    m = 1.0
    while deviate(m * expected, expected) < target:
        m += 0.01
    return m


def _count_case(cfg: RuleConfig, source: Source, onset: float, early: float, total: float) -> Case:
    """A signal judged as a count (the error ratio): counters of requests at ``R``/s and errors at ``P`` x R,
    the errors multiplied at the step; in the low-traffic scenario a count window expects half ``min_traffic``."""
    s, a = setting(cfg, source), cfg.profile.anomaly
    # P = 1/q (at least 10x the baseline floor), and q requests a step per unit of R: whole errors a step, so
    # the judged ratios (and the gap's baseline, compared exactly) are exact.
    q = min(100, max(1, math.floor(1 / (10 * s.baseline_floor)))) if s.baseline_floor else 100
    ratio, window = 1 / q, duration_seconds(s.count_window)
    ok_rate = q / STEP_S * math.ceil(max(100.0, 40 * s.min_traffic / (ratio * window)) * STEP_S / q)
    low_rate = s.min_traffic / 2 / (ratio * window)
    # The errors' rate multiple at the step and how far the count deviates then, per scenario.
    fire = 2 * s.z_threshold
    multiples = {"anomaly": (ok_rate, _multiple_for(ok_rate * ratio * window, fire), onset),
                 "warmup": (ok_rate, _multiple_for(ok_rate * ratio * window, fire), early),
                 "lowtraffic": (low_rate, _multiple_for(low_rate * ratio * window, fire), onset),
                 "wobble": (ok_rate, _multiple_for(ok_rate * ratio * window, 0.5 * s.z_threshold), onset),
                 "wrongway": (ok_rate, 0.1, onset)}
    settle = duration_seconds(a.smoothing_of(s)) + window
    smallest = min(duration_seconds(o) for o in a.offsets_of(s))
    largest = max(duration_seconds(o) for o in a.offsets_of(s))
    # Doubled once the smallest offset's copy has settled on it, still single at the middle offset's.
    multiples["gap"] = (ok_rate, 2.0, largest - smallest - STEP_S - settle)
    _, extra = inputs(cfg, source.signal)
    # No requests at all: the ratio is NaN, and the warm-up series still reads 0 (not NaN).
    series = [{"series": serving_cat.PREDICTIONS.name + _labels(source, "idle", extra),
               "values": _values(0.0, 0.0, early, True, total)}]
    for version, (rate, multiple, at_s) in multiples.items():
        labels = _labels(source, version, extra)
        series += [{"series": serving_cat.PREDICTIONS.name + labels,
                    "values": _values(rate, rate, at_s, True, total)},
                   {"series": serving_cat.PREDICTION_ERRORS.name + labels,
                    "values": _values(rate * ratio, rate * ratio * multiple, at_s, True, total)}]
    z = {v: deviate(m * r * ratio * window, r * ratio * window) for v, (r, m, _) in multiples.items()}
    recorded = {v: {"value": m * ratio, "baseline": ratio, **count_band(ratio * r * window, s.z_threshold, r * window)}
                for v, (r, m, _) in multiples.items()}
    return Case(series, z, recorded, settle, multiples["gap"][2], ratio)


def test_case(cfg: RuleConfig, source: Source) -> dict[str, Any]:
    a, s = cfg.profile.anomaly, setting(cfg, source)
    oldest = max(duration_seconds(o) for o in a.offsets_of(s))
    onset, early, total = oldest + 300, oldest / 2, oldest + 600
    counted = bool(s.count_window and source.counts)
    case = (_count_case if counted else _gauge_case)(cfg, source, onset, early, total)
    firing = ["anomaly"] + (["drop"] if s.direction == "both" else [])
    feature = {"feature": "f"} if source.level == "feature" else {}

    rule = alert_rule(cfg, source)

    def expected(version: str) -> dict[str, Any]:
        labels = {"severity": "warning", "signal": source.signal, "model": "m", "model_version": version, **feature}
        return {"exp_labels": labels,
                "exp_annotations": {k: rendered(v, labels, case.z[version], case.recorded[version])
                                    for k, v in rule["annotations"].items()}}

    window_s = case.settle_s + duration_seconds(s.for_duration)  # a step fires after this
    judged_at = onset + window_s + 60
    gap = {"model": "m", "model_version": "gap", "signal": source.signal, **feature}
    gap_labels, baseline = ",".join(f'{k}="{v}"' for k, v in sorted(gap.items())), source.spec("baseline")
    ready = source.spec("history_ready")
    return {
        "interval": f"{STEP_S}s",
        "input_series": case.series,
        "alert_rule_test": [
            {"eval_time": f"{round(early + window_s + 2 * STEP_S)}s", "alertname": source.alert, "exp_alerts": []},
            {"eval_time": f"{round(judged_at)}s", "alertname": source.alert,
             "exp_alerts": [expected(v) for v in firing]},
        ],
        "promql_expr_test": [{"expr": f'{baseline}{{signal="{source.signal}",model_version="gap"}}',
                              "eval_time": f"{round(oldest - STEP_S)}s",
                              "exp_samples": [{"labels": baseline + "{" + gap_labels + "}",
                                               "value": 1.5 * case.level}]}] + (
            [{"expr": f'{ready}{{signal="{source.signal}",model_version="idle"}}', "eval_time": f"{round(early)}s",
              "exp_samples": [{"labels": ready + "{" + gap_labels.replace('"gap"', '"idle"') + "}", "value": 0}]}]
            if counted else []),
    }


def render(cfg: RuleConfig) -> str:
    """The test file of the fast profile's anomaly rules (alerting/tests/anomaly.yml)."""
    doc = {"rule_files": ["../rules/fast/mlscope-anomaly.yml"], "evaluation_interval": f"{STEP_S}s",
           "tests": [test_case(cfg, s) for s in enabled(cfg)]}
    return ("# Generated by `mlscope rules build` (mlscope.rules.anomaly_tests) from the fast profile's anomaly "
            "section. Do not edit.\n# Run: promtool test rules alerting/tests/*.yml\n"
            + yaml.safe_dump(doc, sort_keys=False, width=10**6))


__all__ = ["SOURCES", "render", "test_case"]
