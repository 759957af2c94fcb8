"""A pipeline run's edges: names past the label caps, bad input logged, no share without records read, steps
after the end, small batches, the Pushgateway address, the exit status, a scoring job's owner."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlscope.pipelines import LOGGER, PipelineMonitor, check_batch
from mlscope.pipelines.push import gateway_url
from mlscope.pipelines.runs import RunEndedError
from mlscope.rules.config import Thresholds, WarmUp
from support.drift_support import small_profile
from support.helpers import series

PROFILE = small_profile("runs", "1")


class Fields(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.append(dict(vars(record)) | {"message": record.getMessage()})

    def events(self, event: str) -> list[dict]:
        return [f for f in self.fields if f.get("event") == event]


@pytest.fixture
def lines() -> Iterator[Fields]:
    handler, logger = Fields(), logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def labels_of(registry: CollectorRegistry, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls), _ in series(registry).items() if n == name}


def test_past_the_caps_labels_fold_but_log_lines_keep_the_real_names(lines: Fields) -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("wide", registry=registry)
    with monitor.run("b") as run:
        for i in range(52):
            run.record_step(f"step-{i}", duration_seconds=0.01, read=10, rejected={f"reason-{i}": 1})
        run.step("step-late").end(ValueError("bad"))
    steps = labels_of(registry, "mlscope_pipeline_steps_total", "step")
    assert len(steps) == 51 and "__overflow__" in steps and "step-51" not in steps  # the label cap: 50
    ends = lines.events("pipeline_step_end")
    assert [f["step"] for f in ends][50:] == ["step-50", "step-51", "step-late"]
    assert ends[51]["records_rejected"] == {"reason-51": 1}
    assert lines.events("pipeline_run_end")[0]["failed_steps"] == ["step-late"]


def test_bad_input_is_logged_and_a_step_without_records_read_has_no_share(lines: Fields) -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("bad-input", registry=registry)
    with monitor.run("b") as run, run.step("parse") as step:
        step.records(read=-5, rejected={"ok": 2})
    invalid = lines.events("pipeline_invalid_input")
    assert [(f["reason"], f["step"], f["argument"], f["value"]) for f in invalid] == [
        ("records_negative", "parse", "read", "-5")]
    assert invalid[0]["levelno"] == logging.WARNING and invalid[0]["run_id"] == run.run_id
    (end,) = lines.events("pipeline_step_end")
    # No valid read count: the line says none (not 0) and names the bad value; no kind="in" series, so the
    # rejected-share alert has no denominator (never +Inf).
    assert (end["records_in"], end["records_rejected"], end["invalid_inputs"]) == (
        None, {"ok": 2}, {"records_negative": 1})
    kinds = labels_of(registry, "mlscope_pipeline_last_records", "kind")
    assert kinds == {"rejected"}
    # A later run that does count its records read has the share again, and one that does not loses it.
    with monitor.run("c") as run, run.step("parse") as step:
        step.records(read=10, rejected={"ok": 1})
    assert labels_of(registry, "mlscope_pipeline_last_records", "kind") == {"in", "rejected"}
    with monitor.run("d") as run, run.step("parse") as step:
        step.records(rejected={"ok": 1})
    assert labels_of(registry, "mlscope_pipeline_last_records", "kind") == {"rejected"}


def test_a_negative_epoch_is_counted_not_published(lines: Fields) -> None:
    registry = CollectorRegistry()
    training = PipelineMonitor("train", registry=registry).training_run("m", dataset_version="v", fingerprint="x")
    training.epoch(3, loss=0.5)
    training.epoch(-1, loss=0.4)
    training.epoch(2.5, loss=0.3)  # type: ignore[arg-type]
    training.end()
    values = {n: v for (n, ls), v in series(registry).items()}
    assert values["mlscope_training_last_epoch"] == 3
    assert values["mlscope_pipeline_invalid_inputs_total"] == 2
    assert [f["value"] for f in lines.events("pipeline_invalid_input")] == ["-1", "2.5"]


def test_a_step_after_the_run_ended_is_refused() -> None:
    monitor = PipelineMonitor("ended", registry=CollectorRegistry())
    run = monitor.run("b")
    assert run.end() == "success"
    with pytest.raises(RunEndedError, match="started after run .* ended"):
        run.step("late")
    with pytest.raises(RunEndedError):
        run.record_step("late", duration_seconds=1.0)
    assert run.steps == []


def test_small_batches_skip_the_data_quality_checks_and_say_why(lines: Fields) -> None:
    rng = np.random.default_rng(11)
    rows = 72
    holdout = {"income": rng.lognormal(10, 0.5, rows), "age": rng.normal(40, 10, rows),
               "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1]).astype(object)}
    holdout["income"][:4] = 1e9  # 4 of 72 beyond the reference's maximum: 5.6 %, above the 5 % ratio
    income = next(f for f in PROFILE.features if f.name == "income")
    beyond = float(np.mean(holdout["income"] > income.max))  # type: ignore[attr-defined,operator]
    assert beyond == pytest.approx(4 / 72) and beyond > Thresholds().data_quality_ratio
    assert rows < WarmUp().data_quality.min_count
    check = check_batch(PROFILE, holdout)
    assert check.passed and check.failures["out_of_range"] == ()
    assert "72 rows, fewer than the data-quality warm-up's 100" in check.skipped["out_of_range"]
    assert check_batch(PROFILE, holdout, min_rows=50).failures["out_of_range"] == ("income",)  # judged: fails
    monitor = PipelineMonitor("holdout", registry=CollectorRegistry(), reference=PROFILE)
    with monitor.run("b") as run:
        run.check_batch(holdout)
    (line,) = lines.events("pipeline_batch_check")
    assert line["passed"] and set(line["skipped"]) >= {"missing", "out_of_range", "drift"}
    assert "skipped" in line["message"]


@pytest.mark.parametrize("given, url", [
    ("localhost", "http://localhost:9091"), ("127.0.0.1:9091", "http://127.0.0.1:9091"),
    ("http://gw:8080/", "http://gw:8080"), ("https://push.example.com", "https://push.example.com"),
    ("[::1]", "http://[::1]:9091")])
def test_a_pushgateway_without_a_port_is_on_9091(given: str, url: str) -> None:
    assert gateway_url(given) == url
    assert PipelineMonitor("addr", registry=CollectorRegistry(), pushgateway=given).pushgateway == url


@pytest.mark.parametrize("bad", ["", "ftp://gw", "host:port", "http://"])
def test_a_pushgateway_address_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="pushgateway="):
        PipelineMonitor("addr", registry=CollectorRegistry(), pushgateway=bad)


def test_the_exit_code_tells_a_failed_run_and_a_failed_push() -> None:
    registry = CollectorRegistry()
    with PipelineMonitor("ok", registry=registry).run() as ok:
        pass
    failed = PipelineMonitor("failed", registry=registry).run()
    failed.end("KeyError")
    unpushed = PipelineMonitor("unpushed", registry=registry, pushgateway="127.0.0.1:1", push_timeout=0.5).run()
    unpushed.end()
    assert (ok.exit_code, failed.exit_code, unpushed.exit_code) == (0, 1, 75)


def test_a_scoring_jobs_model_monitor_carries_the_pipelines_owner() -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("scoring", registry=registry, owner="data-eng")
    monitor.model_monitor("runs", "1", reference=PROFILE)
    monitor.model_monitor("churn", "1", metadata={"owner": "growth"})
    owners = {dict(ls)["model"]: dict(ls).get("owner") for (n, ls), _ in series(registry).items()
              if n == "mlscope_model_info"}
    assert owners == {"runs": "data-eng", "churn": "growth"}


def test_the_last_error_type_is_the_last_failures_only() -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("errors", registry=registry)
    for error in ("KeyError", None, "OSError"):
        monitor.run().end(error)
    assert labels_of(registry, "mlscope_pipeline_last_error_info", "error_type") == {"OSError"}


def test_a_model_monitor_on_another_registry_is_warned_never_pushed(lines: Fields) -> None:
    monitor = PipelineMonitor("elsewhere", registry=CollectorRegistry(), pushgateway="127.0.0.1:1")
    other = CollectorRegistry()
    monitor.model_monitor("m", "1", registry=other)
    (warning,) = [f for f in lines.fields if f["levelno"] == logging.WARNING]
    assert "its pushes do not carry it" in warning["message"]
    assert labels_of(other, "mlscope_model_info", "model") == {"m"}
    assert labels_of(monitor.registry, "mlscope_model_info", "model") == set()
