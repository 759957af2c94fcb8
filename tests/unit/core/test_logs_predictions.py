"""The per-prediction log: sampling, errors and slow requests, run-time levels, request ids shared with exemplars."""
from __future__ import annotations

import os
import re
import time
import zlib
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from mlscope import ModelMonitor
from mlscope.cli import main
from mlscope.logs import LogLevels, PredictionLog
from mlscope.logs.sampling import sampled
from support.logs_helpers import JsonLines


def setup(name: str, **kwargs) -> tuple[JsonLines, PredictionLog, CollectorRegistry]:
    lines = JsonLines()
    return lines, PredictionLog(lines.logger(name), **kwargs), CollectorRegistry()


def decisions(registry: CollectorRegistry, model: str, version: str) -> dict[str, float]:
    return {d: registry.get_sample_value("mlscope_prediction_log_records_total",
                                         {"model": model, "model_version": version, "decision": d}) or 0.0
            for d in ("error", "slow", "sampled", "debug", "counted")}


def test_every_error_and_slow_request_plus_a_sample(request) -> None:
    lines, plog, registry = setup(request.node.name, sample_rate=0.1, slow_seconds=0.5)
    monitor = ModelMonitor("m", "1", registry=registry, prediction_log=plog)
    ids = [monitor.record_prediction(0.01, output=1) for _ in range(3000)]
    for i in range(20):
        monitor.record_prediction(0.75, output=0, request_id=f"slow-{i}")
        monitor.record_error(TimeoutError(), request_id=f"err-{i}")
    expected_sample = {rid for rid in ids if zlib.crc32(rid.encode()) / 2**32 < 0.1}  # reference: the definition
    logged = [line for line in lines.lines if line["event"] == "prediction"]
    assert {line["request_id"] for line in logged} == expected_sample
    assert 0.07 < len(expected_sample) / 3000 < 0.13
    assert sorted(line["request_id"] for line in lines.lines if line["event"] == "prediction_slow") == \
        sorted(f"slow-{i}" for i in range(20))
    errors = [line for line in lines.lines if line["event"] == "prediction_error"]
    assert len(errors) == 20 and all(e["level"] == "error" and e["error_type"] == "TimeoutError" for e in errors)
    counts = decisions(registry, "m", "1")
    assert counts == {"error": 20, "slow": 20, "sampled": len(expected_sample), "debug": 0,
                      "counted": 3000 - len(expected_sample)}
    assert sum(counts.values()) == registry.get_sample_value(
        "mlscope_predictions_total", {"model": "m", "model_version": "1"})


def test_sampling_is_the_same_decision_everywhere_for_a_request_id() -> None:
    assert all(sampled(f"id-{i}", 0.3) == sampled(f"id-{i}", 0.3) for i in range(100))
    assert not sampled("x", 0.0) and sampled("x", 1.0)


def test_record_fields_and_request_id_shared_with_the_exemplar(request) -> None:
    lines, plog, registry = setup(request.node.name, sample_rate=1.0)
    monitor = ModelMonitor("m", "2", registry=registry, prediction_log=plog)
    with monitor.track() as p:
        p.output, p.score = 1, 0.875
        p.log_fields = {"data_batch_id": "batch-9", "message": "reserved keys are ignored"}
    (line,) = lines.lines
    assert (line["model"], line["model_version"], line["prediction"], line["score"], line["outcome"],
            line["data_batch_id"], line["level"]) == ("m", "2", 1, 0.875, "ok", "batch-9", "info")
    assert 0 <= line["latency_seconds"] < 1
    exemplars = re.findall(r'# \{request_id="([^"]+)"\}', generate_latest(registry).decode())
    assert exemplars == [line["request_id"]]


def test_level_raised_for_one_version_at_run_time(request) -> None:
    levels = LogLevels()
    lines, plog, registry = setup(request.node.name, sample_rate=0.0, levels=levels)
    v1 = ModelMonitor("m", "1", registry=registry, prediction_log=plog)
    v2 = v1.for_version("2")
    for monitor in (v1, v2):
        monitor.record_prediction(0.01)
    assert lines.lines == []
    levels.set("m", "2", "debug")  # no restart, same monitors
    for monitor in (v1, v2):
        monitor.record_prediction(0.01)
    assert [(line["model_version"], line["level"]) for line in lines.lines] == [("2", "debug")]
    levels.set("m", "*", "error")  # every version of m: errors only (v2's own setting still wins)
    v1.record_prediction(2.0)
    v1.record_error(ValueError())
    assert [line["event"] for line in lines.lines[1:]] == ["prediction_error"]
    assert decisions(registry, "m", "1")["counted"] == 3


def test_level_file_changed_by_the_cli_applies_without_restart(request, tmp_path: Path) -> None:
    path = tmp_path / "levels.json"
    levels = LogLevels(path=path, poll_seconds=0.0)
    lines, plog, registry = setup(request.node.name, sample_rate=0.0, levels=levels)
    monitor = ModelMonitor("m", "3", registry=registry, prediction_log=plog)
    monitor.record_prediction(0.01)
    assert main(["logs", "level", "--file", str(path), "m", "3", "debug"]) == 0
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even on coarse-grained filesystems
    monitor.record_prediction(0.01)
    assert [line["level"] for line in lines.lines] == ["debug"]
    assert main(["logs", "level", "--file", str(path), "m", "3", "--reset"]) == 0
    os.utime(path, (time.time() + 10, time.time() + 10))
    monitor.record_prediction(0.01)
    assert len(lines.lines) == 1
    assert main(["logs", "level", "--file", str(path), "m", "3", "loud"]) == 2


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_rate must be within"):
        PredictionLog(sample_rate=1.5)
    with pytest.raises(ValueError, match="unknown log level"):
        LogLevels("loud")
