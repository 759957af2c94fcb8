"""The rule configuration's anomaly section: defaults fit the retention, bad values are refused by name, and the
generated rules read what it says."""
from __future__ import annotations

import pytest

from mlscope.rules import PROFILES, anomaly, config_for
from mlscope.rules.config import RETENTION, AnomalySignal, duration_seconds
from mlscope.rules.overrides import RulesConfigError, configured


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_largest_offset_and_its_smoothing_fit_the_stacks_retention(profile: str) -> None:
    a = config_for(profile).profile.anomaly
    assert duration_seconds(a.history_needed) + duration_seconds(a.smoothing) < duration_seconds(RETENTION)


@pytest.mark.parametrize("change, message", [
    ({"errors": {"direction": "sideways"}}, "direction must be one of"),
    ({"traffic": {"z_threshold": 0}}, "z_threshold must be positive"),
    ({"offsets": ["1d", "a week"]}, "not a Prometheus duration"),
    ({"drift": {"spread_flor": 0.1}}, "unknown key"),
    ({"offsets": ["1d", "1w", "2w", "4w"]}, r"offsets: 4w \+ smoothing 10m exceeds .* retention 22d"),
    ({"latency": {"offsets": ["1d", "3w"], "smoothing": "2d"}}, r"latency\.offsets: 3w \+ smoothing 2d"),
    ({"smoothing": "1h", "offsets": ["30m"]}, "smoothing: 1h must be shorter than the smallest offset 30m"),
    ({"smoothing": "1h", "offsets": ["1d"], "spread_window": "10m"}, "spread_window: 10m must be longer"),
    ({"errors": {"count_window": "1d"}}, "errors.count_window: 1d must be shorter than the smallest offset 1d"),
    ({"errors": {"baseline_floor": -0.1}}, "baseline_floor must be at least 0, got -0.1"),
    ({"traffic": {"z_threshold": 0}}, "z_threshold must be positive, got 0"),
    ({"offsets": ["1w", "1d", "1d"]}, "offsets: each at most once, got 1w, 1d, 1d"),
    ({"latency": {"offsets": ["1d", "24h"]}}, "latency.*offsets: each at most once"),
    ({"errors": {"count_window": "ten minutes"}}, "not a Prometheus duration"),
])
def test_bad_settings_are_refused_with_their_path(change: dict, message: str) -> None:
    with pytest.raises(RulesConfigError, match=message) as err:
        configured("default", {"profiles": {"default": {"anomaly": change}}})
    assert "profiles.default.anomaly" in str(err.value)


def test_the_rules_read_the_configured_offsets_floors_direction_and_for() -> None:
    cfg = configured("default", {"profiles": {"default": {"anomaly": {
        "offsets": ["1d", "1w", "2w", "3w"],
        "latency": {"spread_floor": 0.0123, "direction": "both", "for_duration": "7m"},
        "log_volume": {"enabled": False}}}}})
    source = next(s for s in anomaly.SOURCES if s.signal == "latency")
    recorded = {r["record"].rsplit(":", 1)[1]: r["expr"] for r in anomaly.recording_rules(cfg, source)}
    assert all(f"offset {o}" in recorded["baseline"] for o in ("1d", "1w", "2w", "3w"))
    assert "offset 3w" in recorded["history_ready"] and "0.0123" in recorded["spread"]
    rule = anomaly.alert_rule(cfg, source)
    assert rule["for"] == "7m" and "> 4 or" in rule["expr"] and "< -4" in rule["expr"]
    assert "log_volume" not in {s.signal for s in anomaly.enabled(cfg)}
    assert AnomalySignal().direction == "up"


def test_composes_default_retention_is_the_rule_configurations() -> None:
    from pathlib import Path
    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    assert f"retention.time=${{PROMETHEUS_RETENTION:-{RETENTION}}}" in compose


CHANGED = {"profiles": {"fast": {"anomaly": {"traffic": {"z_threshold": 3, "min_traffic": 0.2},
                                             "latency": {"min_traffic": 40}}}}}


def test_the_generated_promtool_tests_follow_the_configured_min_traffic() -> None:
    """The low-traffic case sits below the configured min_traffic, the judged cases above it."""
    import yaml

    from mlscope.rules import anomaly_tests
    serving = anomaly_tests.serving_cat
    cases = {case["input_series"][0]["series"].split("{")[0]: case["input_series"]
             for case in yaml.safe_load(anomaly_tests.render(configured("fast", CHANGED)))["tests"]}

    def rates(signal: str, version: str) -> list[float]:
        return [float(v.split("x")[0]) for s in cases[signal] if s["series"].startswith(serving.REQUEST_RATE.name)
                and f'model_version="{version}"' in s["series"] for v in s["values"].split()]

    assert max(rates(serving.REQUEST_RATE.name, "lowtraffic")[:1]) == 0.1  # the baseline: half of 0.2
    assert max(rates(serving.LATENCY_P95.name, "lowtraffic")) == 20 and min(rates(serving.LATENCY_P95.name,
                                                                                    "anomaly")) >= 160


def test_the_error_ratio_is_judged_as_a_count_over_the_configured_window() -> None:
    """The z-score is the errors' count against the baseline ratio x the requests of the count window; below
    min_traffic expected errors it is not judged; the baseline never drops under its floor."""
    cfg = configured("default", {"profiles": {"default": {"anomaly": {
        "errors": {"count_window": "7m", "baseline_floor": 0.0021, "min_traffic": 5}}}}})
    source = next(s for s in anomaly.SOURCES if s.signal == "errors")
    recorded = {r["record"].rsplit(":", 1)[1]: r["expr"] for r in anomaly.recording_rules(cfg, source)}
    assert "increase(mlscope_prediction_errors_total[7m])" in recorded["value"]
    assert recorded["zscore"].count("increase(mlscope_predictions_total[7m])") == 3
    assert recorded["baseline"].startswith("clamp_min(") and recorded["baseline"].endswith(", 0.0021)")
    rule = anomaly.alert_rule(cfg, source)
    assert "increase(mlscope_predictions_total[7m]))) >= 5" in rule["expr"]
    assert "the last 7m against the baseline ratio" in rule["annotations"]["description"]
    # Without a count window it is a smoothed ratio with the counting noise as a spread bound, as before.
    plain = configured("default", {"profiles": {"default": {"anomaly": {"errors": {"count_window": ""}}}}})
    spread = next(r for r in anomaly.recording_rules(plain, source) if r["record"].endswith(":spread"))["expr"]
    assert '"bound", "noise"' in spread and "increase(" not in spread


@pytest.mark.parametrize("expected", [3, 6, 10, 30, 100, 1000])
def test_the_count_deviate_raises_no_more_false_alarms_than_a_normal_tail(expected: float) -> None:
    """The Freeman-Tukey deviate's exact Poisson tail past the threshold is at most the normal one (scipy), at
    any expected count; the plain (k - m) / sqrt(m) raises 1.5x to 6x more below 100 expected errors."""
    import numpy as np
    from scipy.stats import norm, poisson

    from mlscope.rules.anomaly_tests import deviate
    z = config_for("default").profile.anomaly.errors.z_threshold
    counts = np.arange(0, 10 * expected + 100)
    first = counts[np.array([deviate(k, expected) for k in counts]) > z][0]
    gaussian = counts[(counts - expected) / np.sqrt(expected) > z][0]
    assert 0.05 < poisson.sf(first - 1, expected) / norm.sf(z) <= 1.0
    assert poisson.sf(gaussian - 1, expected) / norm.sf(z) > (1.5 if expected <= 100 else 1.0)
