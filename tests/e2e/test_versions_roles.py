"""Roles declared in the rule configuration, through promtool: the configuration wins over the monitors, a role
for a version no monitor registers and replicas that disagree are recorded series, not silently used."""
from __future__ import annotations

from pathlib import Path

import yaml

from mlscope.rules.config import RoleDeclaration, RuleConfig, VersionRules, config_for
from mlscope.rules.generate import FILES
from support.helpers import require_binary, run_promtool

ROLES = VersionRules(roles=(RoleDeclaration("m", "1", "stable"), RoleDeclaration("m", "9", "canary")))


def test_configured_roles_win_and_unknown_versions_and_conflicts_are_reported(tmp_path: Path) -> None:
    require_binary("promtool")
    cfg = RuleConfig(profile=config_for("fast").profile, versions=ROLES)
    rules = []
    for name in ("mlscope-serving.yml", "mlscope-versions.yml"):
        (tmp_path / name).write_text(yaml.safe_dump({"groups": FILES[name](cfg)}, sort_keys=False, width=10**6))
        rules.append(name)

    def series(name: str, value: str) -> dict[str, str]:
        return {"series": name, "values": value}

    def expect(expr: str, *samples: tuple[str, float]) -> dict:
        return {"expr": expr, "eval_time": "20s",
                "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}

    test = {"rule_files": rules, "evaluation_interval": "1s", "tests": [{
        "interval": "1s",
        "input_series": [
            series('mlscope_model_info{model="m",model_version="1",role="canary"}', "1x30"),  # the config says stable
            series('mlscope_model_info{model="m",model_version="2",role="canary",instance="a"}', "1x30"),
            series('mlscope_model_info{model="m",model_version="2",role="shadow",instance="b"}', "1x30"),
            series('mlscope_predictions_total{model="m",model_version="1"}', "0+10x30"),
            series('mlscope_predictions_total{model="m",model_version="2"}', "0+10x30"),
        ],
        "promql_expr_test": [
            expect("model_version:mlscope_version_role:declared",
                   ('model_version:mlscope_version_role:declared{model="m",model_version="1",role="stable"}', 1),
                   ('model_version:mlscope_version_role:declared{model="m",model_version="9",role="canary"}', 1)),
            expect("model_version:mlscope_version_role:unknown_version",
                   ('model_version:mlscope_version_role:unknown_version{model="m",model_version="9",role="canary"}',
                    1)),
            expect("model_version:mlscope_version_role:conflict",
                   ('model_version:mlscope_version_role:conflict{model="m",model_version="2"}', 2)),
            # The conflicting version is undeclared: a candidate of the configured stable version.
            expect("model_version:mlscope_version_role:effective",
                   ('model_version:mlscope_version_role:effective{model="m",model_version="1",role="stable",'
                    'baseline_version="1"}', 1),
                   ('model_version:mlscope_version_role:effective{model="m",model_version="2",role="canary",'
                    'baseline_version="1"}', 1)),
        ]}]}
    path = tmp_path / "roles_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = run_promtool("test", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
