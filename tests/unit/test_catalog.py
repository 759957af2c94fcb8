"""One source of truth: every metric name used in code, rules and exposition is in the catalog."""
from __future__ import annotations

import re

import pytest
import yaml

from mlscope import catalog
from mlscope.catalog import MetricSpec, RecordedSpec
from mlscope.rules.promql import metric_names
from support import ROOT
from support.catalog import populated_registry
from support.helpers import series
from support.rules import RULE_FILES

NAME_IN_SOURCE = re.compile(r"""["'](mlscope_[a-z0-9_]+|[a-z_]+:mlscope_[a-z0-9_]+:[a-z0-9_]+)["'{]""")


def test_exposed_names_are_all_in_the_catalog() -> None:
    names = {name for name, _ in series(populated_registry())}
    unknown = {n for n in names if not catalog.is_known(n)}
    assert unknown == set()
    exposed_families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                        .removesuffix("_created") for n in names}
    for spec in catalog.serving.METRICS:
        base = spec.name.removesuffix("_total")
        assert base in exposed_families or spec.name in exposed_families, f"{spec.name} never exposed"


def test_exposed_labels_match_the_specs() -> None:
    registry = populated_registry()
    for (name, labels), _ in series(registry).items():
        spec = catalog.spec_of(name)
        extra = {k for k, _ in labels} - set(spec.labels) - {"le"}
        if spec.name == "mlscope_model_info":
            continue  # user metadata labels
        assert extra == set(), f"{name} exposes labels {extra} not in its spec"


def test_every_name_in_rules_is_in_the_catalog() -> None:
    used, recorded = set(), set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                used |= metric_names(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    assert used, "no metric name found in rules: the scan is broken"
    assert {n for n in used if not catalog.is_known(n)} == set()
    assert recorded - catalog.SERIES_NAMES == set()
    assert {s.name for s in catalog.RECORDED} - recorded == set(), "catalog lists series no rule records"


def test_every_name_in_source_is_in_the_catalog() -> None:
    sources = [p for folder in ("exporters", "dashboards") for p in (ROOT / folder).rglob("*.py")]
    found = {m.group(1) for p in sources for m in NAME_IN_SOURCE.finditer(p.read_text())}
    assert len(found) >= len(catalog.METRICS)
    assert {n for n in found if not catalog.is_known(n, family_names=True)} == set()


def test_the_checks_reject_unknown_names() -> None:
    assert metric_names('sum(rate(mlscope_made_up_total[5m])) / up') == {"mlscope_made_up_total", "up"}
    assert not catalog.is_known("mlscope_made_up_total")
    assert not catalog.is_known("model_version:mlscope_made_up:rate")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="other_total", kind="counter", help="h", labels=()), "start with"),
    (dict(name="mlscope_things", kind="counter", help="h", labels=()), "_total"),
    (dict(name="mlscope_things_total", kind="gauge", help="h", labels=()), "_total"),
    (dict(name="mlscope_latency_ms", kind="histogram", help="h", labels=(), unit="ms"), "unit"),
    (dict(name="mlscope_latency", kind="histogram", help="h", labels=(), unit="seconds"), "end with its unit"),
])
def test_spec_enforces_naming_rules(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricSpec(**kwargs)


def test_recorded_spec_enforces_level_metric_operations() -> None:
    with pytest.raises(ValueError, match="recorded series are named"):
        RecordedSpec("mlscope_rate", "h")
    RecordedSpec("model:mlscope_x:rate", "h")
