"""A pipeline's runs and their named steps: what each records, its log line, its end.

Metric labels are the pipeline, the step, a status and a reason, each capped by the registry's label guard;
run ids, data batch ids and model versions go only into the log lines. Bad values are counted in
``mlscope_pipeline_invalid_inputs_total`` and skipped, never raised into the job.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import numpy as np

from ..catalog import pipelines as cat
from ..drift.profile import ReferenceProfile
from ..ids import new_request_id
from .checks import BatchCheck, check_batch
from .instruments import PipelineInstruments, count_value, seconds_value
from .push import PushResult

Status = Literal["success", "failure"]
NOT_ENDED = "StepNotEnded"


class Pipeline(Protocol):
    """What runs and steps need of their :class:`~mlscope.pipelines.PipelineMonitor`."""

    pipeline: str
    ins: PipelineInstruments
    reference: ReferenceProfile | None
    pushgateway: str | None

    def push(self) -> PushResult: ...
    def count_invalid(self, reason: str, count: int = 1) -> None: ...
    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None: ...


def error_name(error: BaseException | type[BaseException] | str) -> str:
    if isinstance(error, str):
        return error
    return (error if isinstance(error, type) else type(error)).__name__


class Step:
    """One named step of a run: started when created, ended by ``with`` (or :meth:`end`)."""

    def __init__(self, run: Run, name: str) -> None:
        self.run, self.monitor = run, run.monitor
        self.name = self.monitor.ins.admit("step", name)
        self.record_counts: dict[str, int] = {"in": 0, "out": 0}  # by direction
        self.rejected: dict[str, int] = {}  # by reason
        self.byte_counts: dict[str, int] = {}  # by direction, where the job gave them
        self.newest_event: float | None = None
        self.check: BatchCheck | None = None
        self.status: Status | None = None
        self.error_type: str | None = None
        self.duration_seconds: float | None = None
        self._start = time.perf_counter()

    def __enter__(self) -> Step:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        self.end(exc_type)
        return False

    # -- what the job reports ----------------------------------------------------------------------

    def records(self, read: int | None = None, written: int | None = None,
                rejected: Mapping[str, int] | None = None) -> None:
        """Add records read, written and rejected (reason -> count); bad counts are counted and skipped."""
        ins = self.monitor.ins
        self._add(ins.records, "records", read, written, self.record_counts)
        for reason, value in (rejected or {}).items():
            n = self._count(value, "records")
            if n is not None:
                label = ins.admit("reason", reason)
                ins.rejected.labels(self.monitor.pipeline, self.name, label).inc(n)
                self.rejected[label] = self.rejected.get(label, 0) + n

    def bytes(self, read: int | None = None, written: int | None = None) -> None:
        """Add bytes read and written, where the job knows them."""
        self._add(self.monitor.ins.bytes, "bytes", read, written, self.byte_counts)

    def _add(self, counter: Any, unit: str, read: Any, written: Any, totals: dict[str, int]) -> None:
        for direction, value in (("in", read), ("out", written)):
            n = self._count(value, unit)
            if n is not None:
                counter.labels(self.monitor.pipeline, self.name, direction).inc(n)
                totals[direction] = totals.get(direction, 0) + n

    def event_times(self, times: Any) -> None:
        """Event times of the step's records (Unix seconds, ``datetime64``, ``datetime``): the newest one
        sets the data's freshness. Values that are not finite times are counted (``event_time_invalid``)."""
        values, bad = _unix_seconds(times)
        if bad:
            self.monitor.count_invalid("event_time_invalid", bad)
        if values.size:
            newest = float(values.max())
            self.newest_event = newest if self.newest_event is None else max(self.newest_event, newest)
            self.monitor.ins.newest_event.labels(self.monitor.pipeline, self.name).set(self.newest_event)

    def check_batch(self, data: Any) -> BatchCheck:
        """Hold ``data`` to the pipeline's reference profile (see :func:`mlscope.pipelines.check_batch`)."""
        return self.run.check_batch(data, step=self)

    @property
    def freshness_seconds(self) -> float | None:
        """Age of the newest event time now (None before :meth:`event_times`)."""
        return None if self.newest_event is None else max(0.0, time.time() - self.newest_event)

    # -- ending ----------------------------------------------------------------------------------

    def end(self, error: BaseException | type[BaseException] | str | None = None, *,
            duration_seconds: float | None = None) -> None:
        """End the step: a success, or a failure with ``error`` (an exception, its class or a name)."""
        if self.status is not None:
            return
        duration = time.perf_counter() - self._start
        if duration_seconds is not None:
            given = seconds_value(duration_seconds)
            if given is None:
                self.monitor.count_invalid("duration_not_finite_or_negative")
            else:
                duration = given
        self.duration_seconds = duration
        self.status = "success" if error is None else "failure"
        self.error_type = None if error is None else error_name(error)
        ins, pipeline = self.monitor.ins, self.monitor.pipeline
        ins.steps.labels(pipeline, self.name, self.status).inc()
        if self.error_type is not None:
            ins.step_failures.labels(pipeline, self.name, ins.admit("error_type", self.error_type)).inc()
        ins.last_step_duration.labels(pipeline, self.name).set(duration)
        counts = {**self.record_counts, "rejected": sum(self.rejected.values())}
        for kind, value in counts.items():
            ins.last_records.labels(pipeline, self.name, kind).set(value)
        self.run.step_ended(self)

    def fields(self) -> dict[str, Any]:
        """What the step's log line carries."""
        out: dict[str, Any] = {"step": self.name, "status": self.status, "error_type": self.error_type,
                               "duration_seconds": self.duration_seconds, "records_in": self.record_counts["in"],
                               "records_out": self.record_counts["out"], "records_rejected": dict(self.rejected)}
        if self.byte_counts:
            out.update(bytes_in=self.byte_counts.get("in"), bytes_out=self.byte_counts.get("out"))
        if self.newest_event is not None:
            out.update(newest_event_time=_iso(self.newest_event), freshness_seconds=self.freshness_seconds)
        return out

    def _count(self, value: Any, unit: str) -> int | None:
        if value is None:
            return None
        n, reason = count_value(value, unit)
        if reason is not None:
            self.monitor.count_invalid(reason)
        return n


class Run:
    """One run of a pipeline over one data batch, made of named steps (a context manager, or :meth:`end`).

    The run fails when an exception leaves its ``with`` block, when :meth:`end` is given an error, or when
    one of its steps failed (a step still open at the end fails with ``StepNotEnded``). When it ends it
    sets the pipeline's last-run gauges, writes its log line and, with a Pushgateway, pushes the group:
    ``push_result`` says how that went (a failed push is counted and logged, never raised).
    """

    def __init__(self, monitor: Pipeline, data_batch_id: str | None, *, run_id: str | None = None,
                 model: str | None = None, model_version: str | None = None,
                 fields: Mapping[str, Any] | None = None) -> None:
        self.monitor = monitor
        self.run_id = run_id or new_request_id()
        self.data_batch_id = data_batch_id
        self.model, self.model_version = model, model_version
        self.steps: list[Step] = []
        self.status: Status | None = None
        self.error_type: str | None = None
        self.duration_seconds: float | None = None
        self.push_result: PushResult | None = None
        self.started_at = time.time()
        self._start = time.perf_counter()
        self._failed_steps: list[str] = []
        self.emit(logging.INFO, self.start_event, f"{monitor.pipeline} run started", dict(fields or {}))

    start_event, end_event = cat.RUN_START, cat.RUN_END

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        self.end(exc_type)
        return False

    # -- steps and checks ------------------------------------------------------------------------

    def step(self, name: str) -> Step:
        """Start step ``name`` now (a context manager: an exception leaving it fails the step, and re-raises)."""
        step = Step(self, name)
        self.steps.append(step)
        return step

    def record_step(self, name: str, *, duration_seconds: float, error: BaseException | str | None = None,
                    read: int | None = None, written: int | None = None,
                    rejected: Mapping[str, int] | None = None) -> Step:
        """Record a step timed elsewhere (a Spark stage, a SQL job); a bad duration is counted, then measured."""
        step = self.step(name)
        step.records(read, written, rejected)
        step.end(error, duration_seconds=duration_seconds)
        return step

    def step_ended(self, step: Step) -> None:
        if step.status == "failure":
            self._failed_steps.append(step.name)
        self.emit(logging.INFO if step.status == "success" else logging.ERROR, cat.STEP_END,
                  f"{self.monitor.pipeline} step {step.name}: {step.status}", step.fields())

    def check_batch(self, data: Any, *, step: Step | None = None) -> BatchCheck:
        """Hold a batch to the pipeline's reference profile: missing, infinite, out-of-range, wrong-type and
        new-category values, schema (absent or unknown columns) and drift. Sets the check gauges and logs it;
        the job decides what a failed check means (``check.passed``)."""
        reference = self.monitor.reference
        if reference is None:
            raise ValueError(f"pipeline {self.monitor.pipeline} has no reference profile: "
                             "PipelineMonitor(..., reference=profile or its JSON path)")
        check = check_batch(reference, data)
        ins, pipeline = self.monitor.ins, self.monitor.pipeline
        for name in cat.CHECKS:
            ins.check_failures.labels(pipeline, name).set(len(check.failures.get(name, ())))
        ins.checked_rows.labels(pipeline).set(check.rows)
        if step is not None:
            step.check = check
        self.emit(logging.INFO if check.passed else logging.WARNING, cat.BATCH_CHECK,
                  f"{pipeline} batch {'passed' if check.passed else 'failed'} its data checks",
                  {"step": None if step is None else step.name, "rows": check.rows, "passed": check.passed,
                   "failures": {k: list(v) for k, v in check.failures.items() if v},
                   "psi": check.psi, "profile_hash": reference.content_hash})
        return check

    # -- ending ----------------------------------------------------------------------------------

    def end(self, error: BaseException | type[BaseException] | str | None = None) -> Status:
        """End the run (the first call counts); returns its status."""
        if self.status is not None:
            return self.status
        for step in self.steps:
            if step.status is None:
                self.monitor.count_invalid("step_not_ended")
                step.end(NOT_ENDED)
        self.duration_seconds = time.perf_counter() - self._start
        if error is not None:
            self.error_type = error_name(error)
        elif self._failed_steps:
            self.error_type = next(s.error_type for s in self.steps if s.status == "failure")
        self.status = "success" if self.error_type is None else "failure"
        self.record_end(time.time())
        fields: dict[str, Any] = {"status": self.status, "error_type": self.error_type,
                                  "duration_seconds": self.duration_seconds, "failed_steps": self._failed_steps,
                                  "steps": [s.name for s in self.steps]}
        fields.update(self.end_fields())
        self.emit(logging.INFO if self.status == "success" else logging.ERROR, self.end_event,
                  f"{self.monitor.pipeline} run {self.status}", fields)
        if self.monitor.pushgateway is not None:
            self.push_result = result = self.monitor.push()
            self.emit(logging.INFO if result.ok else logging.WARNING, cat.PUSH,
                      f"{self.monitor.pipeline} push to {self.monitor.pushgateway}: "
                      + ("ok" if result.ok else f"failed ({result.reason})"),
                      {"pushed": result.ok, "push_seconds": result.seconds, "reason": result.reason or None,
                       "error": result.error or None})
        return self.status

    def record_end(self, now: float) -> None:
        """The run-level metrics of a pipeline run (a training run has its own)."""
        ins, pipeline = self.monitor.ins, self.monitor.pipeline
        assert self.status is not None and self.duration_seconds is not None
        ins.runs.labels(pipeline, self.status).inc()
        ins.last_run_duration.labels(pipeline).set(self.duration_seconds)
        (ins.last_success if self.status == "success" else ins.last_failure).labels(pipeline).set(now)

    def end_fields(self) -> dict[str, Any]:
        return {}

    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        self.monitor.emit(level, event, message, {
            "run_id": self.run_id, "data_batch_id": self.data_batch_id, "model": self.model,
            "model_version": self.model_version, "step": None, **fields})


def _unix_seconds(times: Any) -> tuple[np.ndarray, int]:
    """``(finite Unix seconds, count of values that were not)`` of numbers, datetime64 or datetimes."""
    if isinstance(times, (int, float, dt.datetime, np.datetime64)) and not isinstance(times, bool):
        times = [times]
    array = np.asarray(times)
    if array.dtype.kind == "M":
        ns = array.astype("datetime64[ns]")
        valid = ~np.isnat(ns)
        return ns[valid].astype(np.int64) / 1e9, int(array.size - np.count_nonzero(valid))
    if array.dtype.kind in "OUS":  # objects (datetimes), or numbers mixed with text
        converted = [_one_time(v) for v in array.ravel().tolist()]
        array = np.asarray([math.nan if v is None else v for v in converted], dtype=np.float64)
    elif array.dtype.kind not in "iuf":
        return np.empty(0), int(array.size)
    values = np.asarray(array, dtype=np.float64).ravel()
    good = np.isfinite(values) & (values >= 0)
    return values[good], int(values.size - np.count_nonzero(good))


def _one_time(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat(timespec="milliseconds")
