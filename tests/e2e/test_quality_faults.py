"""Bad outcomes, store failures and restarts: counted by reason, never raised into the service."""
from __future__ import annotations

import math

from mlscope.quality import Outcome
from support.helpers import exposition, promtool_check_metrics, require_binary
from support.quality_faults import dropped, rejected, setup


def test_wrong_types_nan_targets_and_unknown_classes_are_counted_and_skipped() -> None:
    registry, quality, monitor = setup(classes=["cat", "dog"])
    for i, (output, proba) in enumerate([("cat", [0.9, 0.1]), ("dog", [0.5]), ("cat", [0.2, 0.2, 0.6]),
                                         (float("nan"), None), (["x"], None), ("dog", [float("nan"), 1.0])]):
        monitor.record_prediction(0.001, output=output, proba=proba, request_id=f"r{i}")
    quality.process_queue()
    assert dropped(registry, "invalid_output") == 2 and dropped(registry, "invalid_proba") == 2
    summary: dict[str, int] = {}
    for outcome in [Outcome(17, "cat"), Outcome(None, "cat"), Outcome("r0", ["cat"]), Outcome("r0", None),
                    Outcome("r0", float("nan")), Outcome("r0", "bird"), Outcome("r1", {"y": 1}), Outcome("r2", "dog")]:
        for key, value in quality.record_outcomes([outcome]).items():
            summary[key] = summary.get(key, 0) + value
    # 17 is a valid request id (held until its prediction comes); None is not an id.
    assert summary == {"wrong_type": 3, "invalid_request_id": 1, "pending": 1, "invalid_target": 1,
                       "unknown_class": 1, "joined": 1}
    assert rejected(registry, "unknown_class") == 1 and rejected(registry, "invalid_request_id", known=False) == 1
    assert quality.record_outcome("r0", "cat") == {"joined": 1}  # rejected outcomes do not use the id up

    reg_registry, reg_quality, reg_monitor = setup(task="regression")
    for i, value in enumerate([1.0, 2.0, 3.0]):
        reg_monitor.record_prediction(0.001, output=value, request_id=f"r{i}")
    reg_quality.process_queue()
    assert reg_quality.record_outcomes([Outcome("r0", "1.5"), Outcome("r1", math.inf), Outcome("r2", True)]) == {
        "wrong_type": 2, "invalid_target": 1}
    assert reg_quality.record_outcome("r0", 1.5) == {"joined": 1}
    for registry_ in (registry, reg_registry):
        text = exposition(registry_)
        assert "nan" not in text.lower().replace("nan_", "") and "inf\n" not in text.replace("+Inf", "")
        require_binary("promtool")
        result = promtool_check_metrics(text)
        assert result.returncode == 0, result.stdout + result.stderr
