"""Bad input: counted and skipped, never raised, never poisoning a sum; the exposition stays valid."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from mlscope import ModelMonitor
from mlscope.monitor import clean_request_id
from support.helpers import exposition, promtool_check_metrics

ODD = ['quo"te', "back\\slash", "new\nline", "ünïcødé ✓", "tab\tand spaces", "{}=,"]


@pytest.mark.parametrize("odd", ODD)
def test_odd_label_values_keep_the_exposition_valid(registry: CollectorRegistry, odd: str) -> None:
    monitor = ModelMonitor(odd, odd, registry=registry, metadata={odd: odd})
    with monitor.track(request_id=odd) as p:
        p.output = odd
    monitor.record_error(odd)
    text = exposition(registry)
    result = promtool_check_metrics(text)
    assert result.returncode == 0, result.stdout + result.stderr
    # Control characters (newline, tab) fold into __invalid__: Prometheus 2 and 3 regexes disagree on them.
    kept = odd if odd.isprintable() else "__invalid__"
    assert registry.get_sample_value("mlscope_predicted_class_total",
                                     {"model": kept, "model_version": kept, "class": kept}) == 1
    assert registry.get_sample_value("mlscope_prediction_errors_total",
                                     {"model": kept, "model_version": kept, "error_type": kept}) == 1
    # OpenMetrics (with the exemplar) parses back too.
    families = list(parse_openmetrics(openmetrics_latest(registry).decode()))
    exemplars = [s.exemplar for f in families for s in f.samples if s.exemplar]
    assert exemplars and exemplars[0].labels == {"request_id": clean_request_id(odd)}
    assert set(clean_request_id(odd)) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+=-")
