"""The estimated-quality alert on an uncalibrated random forest whose realised accuracy is above its baseline.

The quality counters the service stores for the forest's production predictions (digits, as in
tests/unit/test_quality_calibration.py) are replayed into promtool with the generated fast rules, 599
predictions a second: with the profile's calibration the estimate stays near the realised accuracy, above the
baseline, and nothing fires; the same predictions estimated from the raw probabilities (the code before
calibration), with the same calibration published, fire ModelEstimatedQualityBelowBaseline.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import quality as cat
from mlscope.drift import build_profile
from mlscope.quality import Quality, baseline_metrics
from support import ROOT
from support.calibration_data import split
from support.helpers import require_binary, run_promtool, series

# The estimate, its baseline and calibration, and what the warm-up guard of the estimated window reads.
FAMILIES = {cat.EXPECTED_CONFUSION.name, cat.EXPECTED_CORRECT.name, cat.BASELINE.name, cat.CALIBRATION_ERROR.name,
            cat.PREDICTIONS_STORED.name}


def _input_series(version: str, calibrated: bool) -> list[dict[str, str]]:
    """The service's counters after one batch of production predictions, as series growing by that each second."""
    s = split("digits", "random_forest")
    classes = [int(c) for c in s["model"].classes_]
    profile = build_profile(s["x_ref"][:, :2], columns=["a", "b"], model="rf", model_version=version,
                            labels=s["y_ref"], proba=s["p_ref"], classes=classes)
    registry = CollectorRegistry()
    quality = Quality(registry=registry, start=False)
    monitor = ModelMonitor("rf", version, registry=registry, quality=quality, classes=classes,
                           reference=profile if calibrated else None)
    quality.set_baseline("rf", version, baseline_metrics("classification", s["y_ref"], s["model"].predict(s["x_ref"]),
                                                     s["p_ref"], classes))
    monitor.record_batch(s["predicted"], request_ids=[f"r{i}" for i in range(len(s["predicted"]))],
                         proba=s["p_prod"])
    quality.process_queue()
    found = series(registry)
    assert profile.calibration is not None and profile.calibration.error_calibrated is not None
    found[(cat.CALIBRATION_ERROR.name, (("model", "rf"), ("model_version", version), ("scores", "calibrated")))] = \
        profile.calibration.error_calibrated  # published by both: only the estimate differs
    out = []
    for (name, labels), value in sorted(found.items()):
        if name in FAMILIES:
            text = "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
            out.append({"series": name + text, "values": f"0+{value!r}x150" if name.endswith("_total")
                        else f"{value!r}x150"})
    return out


def test_estimated_quality_alert_is_silent_on_a_calibrated_forest_above_baseline(tmp_path: Path) -> None:
    require_binary("promtool")
    s = split("digits", "random_forest")
    realised = float(np.mean(s["predicted"] == s["y_prod"]))
    baseline = float(np.mean(s["model"].predict(s["x_ref"]) == s["y_ref"]))
    assert realised > baseline - 0.02  # the forest is as good in production as on its reference
    tests = {"rule_files": [str(ROOT / "alerting" / "rules" / "fast" / "mlscope-quality.yml")],
             "evaluation_interval": "1s",
             "tests": [{"interval": "1s",
                        "input_series": _input_series("calibrated", True) + _input_series("raw", False),
                        "alert_rule_test": [{"eval_time": f"{t}s", "alertname": "ModelEstimatedQualityBelowBaseline",
                                             "exp_alerts": []} for t in (90, 120, 140)]}]}  # warm 1m window
    path = tmp_path / "calibration.yml"
    path.write_text(yaml.safe_dump(tests))
    result = run_promtool("test", "rules", path)
    output = result.stdout + result.stderr
    # promtool lists the alerts it got where none was expected: the raw estimate (0.69, far below the baseline)
    # fires, as it did before calibration, at every evaluation; the calibrated one never does.
    assert output.count('model="rf", model_version="raw"') == 3, output
    assert 'model_version="calibrated"' not in output, output
