"""The dashboards against Grafana's own TypeScript types: ``@grafana/schema`` of the pinned Grafana, tsc --strict."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.compose import compose
from support.dashboards import FIXTURES, committed
from support.grafana_types import available, schema_version, typecheck


@pytest.fixture(scope="module")
def types_installed() -> None:
    if not available():
        message = "node and .node-schema/node_modules/@grafana/schema are needed (make setup installs them)"
        if os.environ.get("MLSCOPE_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_schema_version_is_the_pinned_grafanas(types_installed: None) -> None:
    pinned = compose()["x-images"]["grafana"].rpartition(":")[2]
    assert schema_version() == pinned


def test_every_dashboard_has_grafanas_dashboard_type(types_installed: None, tmp_path: Path) -> None:
    report = typecheck(committed(), tmp_path)
    assert report.structural == []
    # Enum fields written as JSON strings: Grafana's enums accept no string literal; listed, not failed.
    print(f"enum-literal mismatches (not structural): {report.noise()}")
    assert {enum for _, enum in report.enum_literals} <= {"ThresholdsMode", "FieldColorModeId"}


def test_the_check_finds_each_structural_defect_and_tells_enum_noise_apart(types_installed: None,
                                                                            tmp_path: Path) -> None:
    bad = json.loads((FIXTURES / "grafana_types_bad.json").read_text())
    report = typecheck({"bad": bad}, tmp_path)
    found = "\n".join(report.structural)
    for defect in ("Type 'string' is not assignable",                      # steps: ""
                   "Property 'value' is missing",                          # base step without value: null
                   "missing the following properties",                     # incomplete panel link
                   "'\"palette-clasic\"' is not assignable",               # no value of FieldColorModeId
                   "'\"time_options\"' does not exist",                    # deprecated time picker field
                   "'\"tags\"' does not exist"):                           # variable option with tags
        assert defect in found, found
    assert len(report.structural) == 6, found
    assert report.enum_literals == {("absolute", "ThresholdsMode"): 3, ("palette-classic", "FieldColorModeId"): 1}
