"""A stack folder's own rule settings (alerting/rules-config.yml): read by `mlscope rules build|check` and
`mlscope up`, refused clearly when wrong. Before, the only way to change a threshold was the package's code."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlscope.cli import main
from mlscope.rules.overrides import RulesConfigError, configured, load
from mlscope.stack.native import NativeStack
from support import ROOT


def alert(rules_dir: Path, name: str) -> dict[str, Any]:
    rules = [r for path in rules_dir.glob("*.yml") for g in yaml.safe_load(path.read_text())["groups"]
             for r in g["rules"] if r.get("alert") == name]
    assert rules, name
    return rules[0]


def test_a_folders_settings_change_its_rules_and_only_them(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    alerting = tmp_path / "alerting"
    shutil.copytree(ROOT / "alerting" / "rules", alerting / "rules")
    (alerting / "rules-config.yml").write_text(
        "thresholds: {error_ratio: 0.02}\nprofiles:\n  fast: {for_drift: 12s, drift_windows: [2m, 5m]}\n")
    rules_dir = alerting / "rules"
    (alerting / "tests").mkdir()  # a folder with promtool tests: the generated one follows the settings
    assert main(["rules", "check", "--dir", str(rules_dir)]) == 1  # the built-in files are not these settings
    assert main(["rules", "build", "--dir", str(rules_dir)]) == 0
    capsys.readouterr()
    assert main(["rules", "check", "--dir", str(rules_dir)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and f"promtool test rules {alerting / 'tests' / 'anomaly.yml'}" in out
    for folder in (rules_dir, rules_dir / "fast"):  # thresholds hold in both profiles
        errors = alert(folder, "ModelErrorRateHigh")
        assert "> 0.02" in errors["expr"] and "(threshold 2%" in errors["annotations"]["description"]
    fast_drift, default_drift = alert(rules_dir / "fast", "FeatureDriftHigh"), alert(rules_dir, "FeatureDriftHigh")
    assert fast_drift["for"] == "12s" and 'window="2m"' in fast_drift["expr"]
    assert default_drift["for"] == "15m" and 'window="1h"' in default_drift["expr"]  # the other profile's own
    unchanged = alert(rules_dir, "ModelLatencySLOBurn")
    assert unchanged == alert(ROOT / "alerting" / "rules", "ModelLatencySLOBurn")


@pytest.mark.parametrize(("text", "says"), [
    ("thresholds: {error_rate: 0.02}", "thresholds.error_rate: unknown key; expected one of ['error_ratio'"),
    ("thresholds: {error_ratio: high}", "thresholds.error_ratio: expected a finite number, got 'high'"),
    ("thresholds: {error_ratio: .nan}", "expected a finite number"),
    ("thresholds: [1, 2]", "thresholds: expected a mapping with keys among ['error_ratio'"),
    ("profiles: {prod: {for_drift: 1m}}", "profiles: expected a mapping with keys among ['default', 'fast']"),
    ("profiles: {fast: {for_drift: 5 minutes}}", "profiles.fast.for_drift: '5 minutes' is not a Prometheus duration"),
    ("profiles: {fast: {drift_windows: []}}", "profiles.fast.drift_windows: expected a non-empty list"),
    ("profiles: {fast: {name: default}}", "profiles.fast.name: unknown key"),
    ("profiles: {fast: {warmup: {drift: {min_age: 1}}}}", "profiles.fast.warmup.drift.min_age: unknown key"),
    ("profile: {for_drift: 1m}", "profile: unknown key"),
    ("links: {grafana_base_url: 3000}", "links.grafana_base_url: expected a str, got 3000"),
    ("- a list", "expected a mapping of sections"),
])
def test_a_wrong_setting_is_refused_with_its_path(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "rules-config.yml"
    path.write_text(text)
    with pytest.raises(RulesConfigError) as raised:
        configured("fast", load(path), str(path))
    assert says in str(raised.value)


def test_the_commands_say_what_is_wrong_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules-config.yml").write_text("thresholds: {error_rate: 0.02}\n")
    assert main(["rules", "build", "--dir", str(tmp_path / "rules")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlscope: ") and "thresholds.error_rate: unknown key" in err and err.count("\n") == 1
    assert not (tmp_path / "rules").exists()  # nothing written from a half-read configuration
    elsewhere = tmp_path / "mine.yml"
    elsewhere.write_text("profiles: {default: {anomaly: {traffic: {z_threshold: 0}}}}\n")
    assert main(["rules", "build", "--dir", str(tmp_path / "rules"), "--config", str(elsewhere)]) == 1
    assert capsys.readouterr().err.startswith(f"mlscope: {elsewhere}: profiles.default.anomaly.traffic")


def test_the_shipped_example_changes_nothing() -> None:
    assert load(ROOT / "alerting" / "rules-config.yml") == {}  # every line a comment


def test_mlscope_up_in_a_stack_folder_uses_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stack"
    assert main(["init", str(folder)]) == 0
    (folder / "alerting" / "rules-config.yml").write_text("thresholds: {error_ratio: 0.03}\n")
    monkeypatch.chdir(folder)
    stack = NativeStack(folder / ".state")
    assert stack.rule_config().thresholds.error_ratio == 0.03
    written = stack._write_rules()
    assert any("> 0.03" in path.read_text() for path in written)


def test_the_shipped_examples_are_valid_settings() -> None:
    """alerting/rules-config.yml's commented examples (model_servers included), uncommented, are accepted."""
    lines = (ROOT / "alerting" / "rules-config.yml").read_text().splitlines()
    start = lines.index("# thresholds:")
    data = yaml.safe_load("\n".join(line[2:] for line in lines[start:]))
    assert {"thresholds", "links", "model_servers", "profiles"} <= set(data)
    cfg = configured("fast", data)
    assert cfg.model_servers.tpot_slo_seconds == 0.025 and cfg.model_servers.gpus[0].model == "chat"
    anomaly = configured("default", data).profile.anomaly
    assert anomaly.offsets[-1] == "3w" and anomaly.traffic.min_traffic == 0.2
