"""Bad input: counted and skipped, never raised, never poisoning a sum; the exposition stays valid."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

import mlscope
from mlscope import ModelMonitor
from mlscope.catalog.serving import INVALID_INPUTS, INVALID_REASONS
from mlscope.labels import INVALID
from support import ROOT
from support.helpers import exposition, series


def invalid(registry: CollectorRegistry, reason: str, model: str = "m") -> float | None:
    return registry.get_sample_value("mlscope_invalid_inputs_total",
                                     {"model": model, "model_version": "1", "reason": reason})


def test_bad_latencies_are_counted_and_skipped(registry: CollectorRegistry) -> None:
    monitor = ModelMonitor("m", "1", registry=registry)
    for bad in (float("nan"), float("inf"), -float("inf"), -1.0):
        monitor.record_prediction(bad)
    for bad in ("fast", None, object(), [1, 2]):
        monitor.record_prediction(bad)  # type: ignore[arg-type]
    monitor.record_prediction(True)  # type: ignore[arg-type]  # a bool is no latency
    monitor.record_prediction("0.25")  # type: ignore[arg-type]  # numeric strings are accepted
    monitor.record_prediction(np.float32(0.5))  # type: ignore[arg-type]
    labels = {"model": "m", "model_version": "1"}
    assert registry.get_sample_value("mlscope_predictions_total", labels) == 11
    assert registry.get_sample_value("mlscope_prediction_latency_seconds_count", labels) == 2
    assert registry.get_sample_value("mlscope_prediction_latency_seconds_sum", labels) == 0.75
    assert invalid(registry, "latency_not_finite_or_negative") == 4
    assert invalid(registry, "latency_wrong_type") == 5  # four non-numbers and a bool


def test_bad_scores_and_values(registry: CollectorRegistry) -> None:
    clf = ModelMonitor("m", "1", registry=registry)
    reg = ModelMonitor("r", "1", task="regression", registry=registry)
    clf.record_prediction(0.01, output=1, score=float("nan"))
    clf.record_prediction(0.01, output=float("nan"))
    clf.record_prediction(0.01, output=1, score="high")
    reg.record_prediction(0.01, output=float("inf"))
    reg.record_prediction(0.01, output="12.5")
    reg.record_batch([1.0, float("nan"), float("inf"), 2.0], latency_seconds=0.1)
    reg.record_batch(["a", "b"])
    clf.record_batch(None)
    clf.record_batch(rows=-3)
    assert invalid(registry, "score_not_finite") == 1
    assert invalid(registry, "score_wrong_type") == 1
    assert invalid(registry, "class_not_finite") == 1
    assert invalid(registry, "value_not_finite", "r") == 3
    assert invalid(registry, "value_wrong_type", "r") == 1
    assert invalid(registry, "batch_without_rows") == 1
    assert invalid(registry, "batch_rows_invalid") == 1
    for (name, _), v in series(registry).items():
        assert math.isfinite(v), f"{name} was poisoned: {v}"
    assert registry.get_sample_value("mlscope_prediction_value_count", {"model": "r", "model_version": "1"}) == 3


def test_huge_values_fold_into_invalid(registry: CollectorRegistry) -> None:
    monitor = ModelMonitor("m", "1", registry=registry)
    huge = "x" * 10_000
    monitor.record_prediction(0.01, output=huge, request_id="r" * 10_000)
    monitor.record_error(huge)
    assert registry.get_sample_value("mlscope_predicted_class_total",
                                     {"model": "m", "model_version": "1", "class": INVALID}) == 1
    assert registry.get_sample_value("mlscope_prediction_errors_total",
                                     {"model": "m", "model_version": "1", "error_type": INVALID}) == 1
    assert registry.get_sample_value("mlscope_label_overflow_total",
                                     {"label": "class", "reason": "invalid_value"}) == 1
    assert huge not in exposition(registry)
    om = openmetrics_latest(registry).decode()
    assert f'request_id="{"r" * 42}-' in om and "r" * 43 not in om  # shortened: trace ids fit beside it


def test_unhashable_and_odd_outputs_do_not_raise(registry: CollectorRegistry) -> None:
    monitor = ModelMonitor("m", "1", registry=registry)
    monitor.record_prediction(0.01, output=[1, 2])
    monitor.record_prediction(0.01, output={"a": 1})
    monitor.record_prediction(0.01, output=np.array([7]))
    monitor.record_prediction(0.01, output=np.int64(7))
    assert registry.get_sample_value("mlscope_predicted_class_total",
                                     {"model": "m", "model_version": "1", "class": "7"}) == 2
    assert registry.get_sample_value("mlscope_predictions_total", {"model": "m", "model_version": "1"}) == 4
    assert registry.get_sample_value("mlscope_monitor_errors_total",
                                     {"operation": "record_prediction", "exception": "TypeError"}) is None


def counted_reasons() -> set[str]:
    """Every literal reason the package hands to an invalid-input counter (wrong_type twins of not_finite too);
    the pipelines' own counter has its own reasons (tests/unit/core/test_pipelines.py)."""
    found: set[str] = set()
    package = Path(mlscope.__file__).parent
    for path in package.rglob("*.py"):
        if path.is_relative_to(package / "pipelines"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            literals = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if node.func.attr in ("_invalid", "count_invalid"):
                found.update(literals[:1])
            elif node.func.attr in ("_observe_one", "_observe_bulk"):
                found.update(r for reason in literals for r in (reason, reason.replace("not_finite", "wrong_type")))
    return found


def test_every_reason_counted_is_in_the_catalog_help_and_the_docs() -> None:
    assert counted_reasons() == set(INVALID_REASONS)
    docs = (ROOT / "docs" / "instrumenting.md").read_text()
    for reason in INVALID_REASONS:
        assert f"| `{reason}` |" in docs, reason
        assert reason in INVALID_INPUTS.help, reason
