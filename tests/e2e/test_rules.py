"""Generated rule files: fresh, valid for promtool, unit-tested, and with a runbook per alert."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import ROOT
from support.helpers import require_binary, run_promtool
from support.rules import RULE_FILES, RULES


def test_promtool_check_rules() -> None:
    require_binary("promtool")
    result = run_promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


UNIT_TESTS = sorted((ROOT / "alerting" / "tests").glob("*.yml"))


def test_there_are_promtool_unit_tests() -> None:
    assert UNIT_TESTS


@pytest.mark.parametrize("test_file", UNIT_TESTS, ids=[p.stem for p in UNIT_TESTS])
def test_promtool_unit_tests(test_file: Path) -> None:
    """One promtool run per file (versions.yml alone takes ~12 s): pytest-xdist spreads them over its workers."""
    require_binary("promtool")
    result = run_promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A wrong expectation must make promtool fail, so the suite above is not vacuous."""
    require_binary("promtool")
    source = (ROOT / "alerting" / "tests" / "serving.yml").read_text()
    broken = source.replace("severity: critical", "severity: warning", 1)
    assert broken != source
    (tmp_path / "rules").symlink_to(RULES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "serving.yml").write_text(broken)
    result = run_promtool("test", "rules", tmp_path / "tests" / "serving.yml")
    assert result.returncode != 0 and "severity" in result.stdout + result.stderr


def test_generated_anomaly_tests_pass_with_a_changed_configuration(tmp_path: Path) -> None:
    """The documented setting change (a lower traffic z_threshold and min_traffic) still gives passing tests, as
    do the error ratio's count settings (a min_traffic of 2 once wrote inexact counters: the gap case failed)."""
    import yaml

    from mlscope.rules import anomaly, anomaly_tests
    from mlscope.rules.overrides import configured
    require_binary("promtool")
    cfg = configured("fast", {"profiles": {"fast": {"anomaly": {
        "traffic": {"z_threshold": 3, "min_traffic": 0.2}, "latency": {"min_traffic": 40},
        "errors": {"min_traffic": 2, "z_threshold": 3, "count_window": "2m", "baseline_floor": 0.004}}}}})
    rules = yaml.safe_dump({"groups": anomaly.groups(cfg)})
    for path, text in ((tmp_path / "rules" / "fast" / "mlscope-anomaly.yml", rules),
                       (tmp_path / "tests" / "anomaly.yml", anomaly_tests.render(cfg))):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    result = run_promtool("test", "rules", tmp_path / "tests" / "anomaly.yml")
    assert result.returncode == 0, result.stdout + result.stderr
