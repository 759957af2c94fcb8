"""The pipeline monitor: what a run records, bad input counted, batch checks against numpy, pushes that never hang."""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import pipelines as cat
from mlscope.drift import build_profile
from mlscope.logs import JsonFormatter
from mlscope.pipelines import LOGGER, PipelineMonitor, check_batch, training_data_fingerprint
from mlscope.rules.config import Thresholds
from support.drift_support import small_profile
from support.helpers import series
from support.pipelines import unanswering_port

PROFILE = small_profile("batch", "1")


class Lines(logging.Handler):
    """The JSON fields of every pipeline log line, as the Loki handler's formatter writes them."""

    def __init__(self) -> None:
        super().__init__()
        self.formatter_ = JsonFormatter()
        self.fields: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.append(self.formatter_.fields(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    wanted = tuple(sorted(labels.items()))
    found = [v for (n, ls), v in series(registry).items() if n == name and all(kv in ls for kv in wanted)]
    return sum(found) if found else None


def test_a_run_records_its_steps_records_bytes_and_freshness(lines: Lines) -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("features", registry=registry, owner="data-eng", expected_interval_s=3600)
    newest = time.time() - 120
    before = time.time()
    with monitor.run("batch-2026-12-01", model="churn", model_version="3.2.0") as run:
        with run.step("ingest") as step:
            step.records(read=1000, written=970, rejected={"bad_schema": 20, "duplicate": 10})
            step.bytes(read=65536)
            step.event_times(np.array([newest - 10, newest, newest - 5]))
        with pytest.raises(KeyError), run.step("join"):
            raise KeyError("customer_id")
    assert (run.status, run.error_type) == ("failure", "KeyError")
    v = lambda name, **ls: value(registry, name, pipeline="features", **ls)  # noqa: E731
    assert v("mlscope_pipeline_runs_total", status="failure") == 1
    assert v("mlscope_pipeline_steps_total", step="ingest", status="success") == 1
    assert v("mlscope_pipeline_step_failures_total", step="join", error_type="KeyError") == 1
    assert v("mlscope_pipeline_records_total", step="ingest", direction="in") == 1000
    assert v("mlscope_pipeline_records_rejected_total", step="ingest", reason="bad_schema") == 20
    assert v("mlscope_pipeline_last_records", step="ingest", kind="rejected") == 30
    assert v("mlscope_pipeline_last_records", step="ingest", kind="out") == 970
    assert v("mlscope_pipeline_bytes_total", step="ingest", direction="in") == 65536
    assert v("mlscope_pipeline_newest_event_timestamp_seconds", step="ingest") == pytest.approx(newest)
    assert before <= v("mlscope_pipeline_last_failure_timestamp_seconds") <= time.time()
    assert v("mlscope_pipeline_last_success_timestamp_seconds") is None
    assert v("mlscope_pipeline_last_run_duration_seconds") == pytest.approx(run.duration_seconds)
    assert v("mlscope_pipeline_expected_interval_seconds") == 3600
    assert v("mlscope_pipeline_info", owner="data-eng", kind="pipeline") == 1
    # Every event is one structured line with the pipeline, run, step, batch and model version; ids never labels.
    events = [f["event"] for f in lines.fields]
    assert events == ["pipeline_run_start", "pipeline_step_end", "pipeline_step_end", "pipeline_run_end"]
    for f in lines.fields:
        assert (f["pipeline"], f["run_id"], f["data_batch_id"]) == ("features", run.run_id, "batch-2026-12-01")
        assert (f["model"], f["model_version"]) == ("churn", "3.2.0")
    ingest = lines.fields[1]
    assert (ingest["step"], ingest["records_rejected"], ingest["bytes_in"]) == (
        "ingest", {"bad_schema": 20, "duplicate": 10}, 65536)
    assert 120 <= ingest["freshness_seconds"] < 130
    assert lines.fields[2]["error_type"] == "KeyError" and lines.fields[3]["failed_steps"] == ["join"]
    labels = {value for (_, ls) in series(registry) for _, value in ls}
    assert run.run_id not in labels and "batch-2026-12-01" not in labels


def test_bad_input_is_counted_and_the_job_goes_on() -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("bad", registry=registry)
    with monitor.run("b") as run:
        with run.step("s") as step:
            step.records(read=-3, written=2.5, rejected={"x": float("nan")})
            step.records(read=4.0, written=True)
            step.bytes(read=-1, written="many")
            step.event_times([float("nan"), -5, "yesterday", 1.7e9])
        run.record_step("spark", duration_seconds=float("nan"), read=10)
        run.record_step("sql", duration_seconds=-1.0)
        run.step("hangs")  # started, never ended
    invalid = {dict(ls)["reason"]: v for (n, ls), v in series(registry).items()
               if n == "mlscope_pipeline_invalid_inputs_total"}
    assert invalid == {"records_negative": 1, "records_not_integer": 3, "bytes_negative": 1,
                       "bytes_not_integer": 1, "event_time_invalid": 3, "duration_not_finite_or_negative": 2,
                       "step_not_ended": 1}
    # With the training run's reasons (test_one_fingerprint...) and the run never ended (tests/e2e), every reason
    # of the catalog, each in its help.
    assert set(invalid) | {"metric_not_finite", "epoch_invalid", "run_not_ended"} == set(cat.INVALID_REASONS)
    assert all(reason in cat.INVALID_INPUTS.help for reason in cat.INVALID_REASONS)
    assert value(registry, "mlscope_pipeline_records_total", step="s", direction="in") == 4  # the good value kept
    assert value(registry, "mlscope_pipeline_newest_event_timestamp_seconds", step="s") == 1.7e9
    spark = next(s for s in run.steps if s.name == "spark")
    assert spark.status == "success" and math.isfinite(spark.duration_seconds) and spark.duration_seconds >= 0
    assert (run.status, run.error_type) == ("failure", "StepNotEnded")
    assert value(registry, "mlscope_pipeline_step_failures_total", step="hangs", error_type="StepNotEnded") == 1
    with pytest.raises(ValueError, match="expected_interval_s"):
        PipelineMonitor("p", registry=registry, expected_interval_s=float("nan"))


def reference_psi(profile, name: str, values: np.ndarray) -> float:
    """PSI by numpy's own histogram on the profile's PSI edges (no mlscope code)."""
    feature = next(f for f in profile.features if f.name == name)
    counts, _ = np.histogram(values[np.isfinite(values)], bins=[-np.inf, *feature.psi_edges, np.inf])
    p = np.maximum(counts / counts.sum(), 1e-4)
    q = np.maximum(np.asarray(feature.reference_bins), 1e-4)
    return float(np.sum((p - q) * np.log(p / q)))


def test_batch_checks_match_numpy_and_the_model_alerts_thresholds() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    clean = {"income": rng.lognormal(10, 0.5, n), "age": rng.normal(40, 10, n),
             "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]).astype(object)}
    passed = check_batch(PROFILE, clean)
    assert passed.passed and passed.rows == n
    assert passed.psi["income"] == pytest.approx(reference_psi(PROFILE, "income", clean["income"]), abs=1e-9)
    bad = dict(clean, income=clean["income"] * 3, age=np.where(rng.random(n) < 0.25, np.nan, clean["age"]),
               plan=np.array(["gold"] * n, dtype=object), extra=np.zeros(n))
    failed = check_batch(PROFILE, bad)
    assert failed.psi["income"] == pytest.approx(reference_psi(PROFILE, "income", bad["income"]), abs=1e-9)
    age = next(f for f in PROFILE.features if f.name == "age")
    missing = float(np.mean(np.isnan(bad["age"])))
    assert failed.shares["age"]["missing"] == pytest.approx(missing)
    assert missing - age.missing_ratio > Thresholds().data_quality_ratio
    assert failed.failures["drift"] == ("income", "plan") and failed.failures["missing"] == ("age",)
    assert failed.failures["new_category"] == ("plan",) and failed.failures["schema"] == ("extra",)
    assert failed.failures["out_of_range"] == ("income",)  # tripled incomes beyond the reference maximum
    assert not failed.passed and failed.failed_checks == ["missing", "out_of_range", "new_category", "schema", "drift"]
    # A few rows: no drift nor data-quality verdict (the warm-up guards' minimums), said in ``skipped``; schema still.
    few = check_batch(PROFILE, {k: v[:20] for k, v in bad.items()})
    assert "income" not in few.psi and few.failures["missing"] == () and few.failures["schema"] == ("extra",)
    assert set(few.skipped) == {"missing", "infinite", "out_of_range", "wrong_type", "new_category", "drift"}
    assert check_batch(PROFILE, np.zeros((5, 2))).failures["schema"] == ("__batch__",)


def test_a_run_checks_its_batch_and_publishes_the_verdict() -> None:
    registry = CollectorRegistry()
    monitor = PipelineMonitor("scored", registry=registry, reference=PROFILE)
    with monitor.run("b") as run, run.step("validate") as step:
        check = step.check_batch({"income": np.full(500, 1e9), "age": np.full(500, 40.0),
                                  "plan": np.array(["basic"] * 500, dtype=object)})
    failures = {dict(ls)["check"]: v for (n, ls), v in series(registry).items()
                if n == "mlscope_pipeline_batch_check_failures"}
    assert failures == {c: float(len(check.failures[c])) for c in failures}
    assert failures["out_of_range"] == 1 and failures["drift"] >= 1
    assert value(registry, "mlscope_pipeline_batch_checked_rows") == 500
    with pytest.raises(ValueError, match="no reference profile"), PipelineMonitor("none").run() as r:
        r.check_batch({})


def test_one_fingerprint_from_the_data_to_model_info() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    names = ["a", "b", "c"]
    fingerprint = training_data_fingerprint(x, names)
    assert fingerprint == training_data_fingerprint({n: x[:, i] for i, n in enumerate(names)})
    assert fingerprint != training_data_fingerprint(x + 1e-9, names)
    profile = build_profile(x, columns=names, model="m", model_version="1", psi_bins=5, fine_bins=10)
    assert profile.source_hash == fingerprint
    registry = CollectorRegistry()
    with PipelineMonitor("train", registry=registry).training_run(
            "m", dataset_version="2026-11-30", training_data=x, columns=names,
            hyperparameters={"C": 1.0}, transformations=["standard_scaler"]) as run:
        run.epoch(1, loss=0.7, accuracy=0.6)
        run.epoch(2, loss=float("nan"))
        run.final(accuracy=0.91)
        monitor = run.model_monitor("1")  # on the pipeline's registry by default: its push carries it
    assert isinstance(monitor, ModelMonitor) and run.fingerprint == fingerprint
    info = [dict(ls) for (n, ls), _ in series(registry).items() if n == "mlscope_model_info"]
    assert info == [{"model": "m", "model_version": "1", "training_data_fingerprint": fingerprint,
                     "dataset_version": "2026-11-30"}]
    assert value(registry, "mlscope_training_final_metric", model="m", metric="accuracy") == 0.91
    assert value(registry, "mlscope_training_last_epoch", model="m") == 2
    assert value(registry, "mlscope_training_runs_total", model="m", status="success") == 1
    assert value(registry, "mlscope_pipeline_invalid_inputs_total", reason="metric_not_finite") == 1
    # A training job, not a pipeline: the pipeline dashboard tells them apart by kind (one info series).
    kinds = [dict(ls)["kind"] for (n, ls), _ in series(registry).items() if n == "mlscope_pipeline_info"]
    assert kinds == ["training"]


def test_a_push_while_the_pushgateway_is_down_or_hung_ends_the_job_and_says_so(lines: Lines) -> None:
    registry = CollectorRegistry()
    sock, port = unanswering_port()
    try:
        hung = PipelineMonitor("hung", registry=registry, pushgateway=f"127.0.0.1:{port}", push_timeout=0.5)
        start = time.monotonic()
        with hung.run("b") as run:
            run.step("s").end()
        assert time.monotonic() - start < 2.0
    finally:
        sock.close()
    assert run.status == "success" and not run.push_result.ok and run.push_result.reason == "timeout"
    down = PipelineMonitor("down", registry=registry, pushgateway=f"127.0.0.1:{port}")
    with down.run("b") as run:
        pass
    assert run.push_result.reason == "connection" and run.start_push_result.reason == "connection"
    # Each run pushes twice, when it starts ("started") and when it ends: both failed, both counted.
    assert value(registry, "mlscope_pipeline_push_failures_total", pipeline="hung", reason="timeout") == 2
    assert value(registry, "mlscope_pipeline_push_failures_total", pipeline="down", reason="connection") == 2
    push_lines = [f for f in lines.fields if f["event"] == "pipeline_push"]
    assert [(f["pipeline"], f["phase"], f["pushed"], f["reason"]) for f in push_lines] == [
        ("hung", "start", False, "timeout"), ("hung", "end", False, "timeout"),
        ("down", "start", False, "connection"), ("down", "end", False, "connection")]
    assert {f["level"] for f in push_lines} == {"warning"}
    assert run.exit_code == 75  # it succeeded, but Prometheus never saw it: the job's exit status says so


def test_pipeline_names_and_reasons_are_capped() -> None:
    registry = CollectorRegistry()
    monitors = [PipelineMonitor(f"p{i}", registry=registry) for i in range(55)]
    assert {m.pipeline for m in monitors[50:]} == {"__overflow__"}
    with monitors[0].run() as run, run.step("s") as step:
        step.records(rejected={f"reason-{i}": 1 for i in range(60)})
    reasons = {dict(ls)["reason"] for (n, ls), _ in series(registry).items()
               if n == "mlscope_pipeline_records_rejected_total"}
    assert len(reasons) == 51 and "__overflow__" in reasons
