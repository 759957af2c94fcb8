"""`mlscope k8s render`: manifests validated against the published schemas vendored in tests/fixtures/k8s-schemas/
(prometheus-operator CRDs, Kubernetes ConfigMap), rules identical to the generated rule files, promtool-clean."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlscope.stack import k8s
from support import ROOT
from support.helpers import require_binary, run_promtool
from support.k8s import by_kind


@pytest.mark.parametrize("profile", ["default", "fast"])
def test_prometheus_rules_are_the_generated_rule_files(tmp_path: Path, profile: str) -> None:
    rules_dir = ROOT / "alerting" / "rules" / ("" if profile == "default" else profile)
    rules = by_kind(k8s.render(profile), "PrometheusRule")
    assert set(rules) == {p.stem for p in rules_dir.glob("mlscope-*.yml")}
    for name, manifest in rules.items():
        assert manifest["spec"]["groups"] == yaml.safe_load((rules_dir / f"{name}.yml").read_text())["groups"]
        assert manifest["metadata"]["annotations"]["mlscope.io/rule-profile"] == profile
    require_binary("promtool")
    for name, manifest in rules.items():  # what the operator hands Prometheus: promtool-clean
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
        result = run_promtool("check", "rules", path)
        assert result.returncode == 0, result.stdout + result.stderr
