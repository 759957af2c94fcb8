"""Generated rule files: fresh, valid for promtool, unit-tested, and with a runbook per alert."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mlscope.catalog import modelservers as msc
from mlscope.cli import main
from mlscope.rules import PROFILES, build_all, config_for, modelservers, stale_files
from mlscope.rules.config import GPUAssignment, ModelServerError
from mlscope.rules.overrides import RulesConfigError, configured
from mlscope.rules.reference import ALERT_SETTINGS, alert_rules, setting_value
from support import ROOT
from support.rules import RULE_FILES, RULES


def all_rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def test_committed_rules_are_fresh() -> None:
    assert RULE_FILES, "no generated rule files committed"
    assert stale_files(RULES) == [], "run `mlscope rules build` and commit alerting/rules/"
    assert main(["rules", "check", "--dir", str(RULES)]) == 0


def test_check_detects_stale_missing_and_extra_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    edited = rules / "mlscope-serving.yml"
    edited.write_text(edited.read_text().replace("0.05", "0.5"))
    (rules / "fast" / "mlscope-serving.yml").unlink()
    (rules / "mlscope-old.yml").write_text("groups: []\n")
    assert {p.relative_to(rules) for p in stale_files(rules)} == {
        Path("mlscope-serving.yml"), Path("fast/mlscope-serving.yml"), Path("mlscope-old.yml")}
    assert main(["rules", "check", "--dir", str(rules)]) == 1
    build_all(rules)
    assert stale_files(rules) == []
    assert not (rules / "mlscope-old.yml").exists()


RENDER_ALL = ("import json; from mlscope.rules import PROFILES, render; "
              "print(json.dumps({p: render(p) for p in PROFILES}))")


def render_in_a_fresh_interpreter(hash_seed: str) -> dict[str, dict[str, str]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", RENDER_ALL], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    return json.loads(done.stdout)


def test_generation_is_deterministic_across_processes() -> None:
    """Two interpreters with different hash seeds (set and dict order of strings differ) write the same bytes,
    and those are the committed files: ``make generate && git diff --exit-code`` cannot flap."""
    first, second = render_in_a_fresh_interpreter("1"), render_in_a_fresh_interpreter("4242")
    assert set(first) == set(PROFILES)
    assert first == second
    for profile, files in first.items():
        folder = RULES if profile == "default" else RULES / profile
        for name, text in files.items():
            assert (folder / name).read_text() == text, f"{folder / name} differs from a fresh render"


@pytest.mark.parametrize("rule", [r for r in all_rules() if "alert" in r], ids=lambda r: r["alert"])
def test_every_alert_has_annotations_and_a_runbook(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    for key in ("summary", "description", "runbook_url", "dashboard", "logs_url"):
        assert rule["annotations"].get(key), f"{rule['alert']} lacks {key}"
    runbook = ROOT / "alerting" / "runbooks" / f"{rule['alert']}.md"
    assert runbook.exists(), f"missing runbook {runbook}"
    text = runbook.read_text()
    for heading in ("## What it means", "## First checks", "## Mitigation", "## Silencing"):
        assert heading in text, f"{runbook.name} lacks {heading!r}"


def test_every_alert_is_unit_tested() -> None:
    tested = set()
    for path in (ROOT / "alerting" / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = {r["alert"] for r in all_rules() if "alert" in r}
    assert alerts - tested == set(), "alerts without a firing promtool test case"


# Alerts whose expression's value is not a measurement a person reads (a condition that holds, a constant).
NO_VALUE = {
    "MLScopeWatchdog": "always 1",
    "MLScopeTargetDown": "up == 0",
    "ModelNoPredictions": "a request rate of 0",
    "GPUThrottling": "a throttle reason's 1",
    "GPUXidErrors": "the XID code is a label",
    "ResourceCollectorDown": "collector up == 0",
}


def renderings(value: object) -> set[str]:
    """How a rule-configuration value may read in a description: 0.05 as 0.05, 5% or 5.00%; 86400 as 86400."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, int):
        return {str(value)}
    assert isinstance(value, float), value
    return {f"{value:g}", f"{value:.0%}", f"{value:.2%}"}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_description_has_its_value_and_its_threshold(profile: str) -> None:
    """A notification says by how much: the live ``$value`` and the alert's threshold (the first setting its
    expression is built from, in ALERT_SETTINGS), read from the rule configuration."""
    cfg = config_for(profile)
    for name, rules in alert_rules(profile).items():
        for rule in rules:
            description = rule["annotations"]["description"]
            if name not in NO_VALUE:
                assert "$value" in description, f"{name}: the description lacks the live value"
            settings = ALERT_SETTINGS.get(name, ())
            if not settings:
                continue
            value = setting_value(cfg, settings[0])
            if isinstance(value, tuple):  # a set of reasons: the description names the one that fired
                continue
            assert any(text in description for text in renderings(value)), (
                f"{name} ({profile}): the description does not state {settings[0]} = {value!r}: {description}")


def test_model_server_slo_thresholds_must_be_buckets_of_every_server_version() -> None:
    """The servers' SLO ratios read one bucket of each version's histogram. An application threshold between the
    servers' buckets (0.05 s: vLLM's, not SGLang's) gives the servers the nearest common bucket above it (0.1 s);
    one set under model_servers is refused in one line naming the allowed values; so are a GPU over-assigned
    (0.7 + 0.7 of one GPU) and a GPU assignment with a quote in a label."""
    cfg = config_for("fast")
    app = replace(cfg, thresholds=replace(cfg.thresholds, genai_tpot_slo_seconds=0.05, genai_ttft_slo_seconds=0.5))
    rules = {r.get("alert") or (r["record"], r.get("labels", {}).get("window")): r
             for g in modelservers.groups(app) for r in g["rules"]}
    assert 'le="0.1"' in rules[(msc.ITL_SLOW.name, "1m")]["expr"]
    assert 'le="1.0"' in rules[(msc.TTFT_SLOW.name, "1m")]["expr"]
    assert "within 0.1s" in rules["ModelServerInterTokenLatencySLOBurn"]["annotations"]["description"]
    assert "within 1s" in rules["ModelServerTimeToFirstTokenSLOBurn"]["annotations"]["description"]
    explicit = configured("fast", {"model_servers": {"tpot_slo_seconds": 0.025}})
    assert 'le="0.025"' in str(modelservers.server_rules(explicit))
    with pytest.raises(RulesConfigError, match=r"tpot_slo_seconds 0.05 .*choose one of 0.01, 0.025, 0.1, ") as err:
        configured("fast", {"model_servers": {"tpot_slo_seconds": 0.05}})
    assert "\n" not in str(err.value)
    gpu = {"model": "chat", "model_version": "2", "instance": "h:9839", "gpu": "0", "share": 0.7}
    configured("fast", {"model_servers": {"gpus": [gpu, {**gpu, "model": "embed", "share": 0.3}]}})
    with pytest.raises(RulesConfigError, match="GPU 0 of h:9839 is assigned 1.4 of itself"):
        configured("fast", {"model_servers": {"gpus": [gpu, {**gpu, "model": "embed"}]}})
    with pytest.raises(ModelServerError, match="no quotes"):
        GPUAssignment("chat", '2"', "h:9839", "0")
    with pytest.raises(ModelServerError, match="share"):
        GPUAssignment("chat", "2", "h:9839", "0", share=1.5)
