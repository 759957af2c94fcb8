"""A pipeline's runs and their named steps: what each records, its log line, its end.

Metric labels are the pipeline, the step, a status and a reason, each capped by the registry's label guard
(past the cap they fold into ``__overflow__``); the log lines keep the real names, and run ids, data batch
ids and model versions go only there. Bad values are counted in ``mlscope_pipeline_invalid_inputs_total``,
logged (``pipeline_invalid_input``) and skipped, never raised into the job. A run pushes a "started" state
when it starts (its start time, expected interval and owner) and its outcome when it ends; see
:mod:`.lifecycle` for SIGTERM and runs never ended.
"""
from __future__ import annotations

import contextlib
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
from . import lifecycle
from .checks import BatchCheck, check_batch
from .instruments import PipelineInstruments, count_value, seconds_value
from .push import PushResult

Status = Literal["success", "failure"]
NOT_ENDED = "StepNotEnded"


class Pipeline(Protocol):
    """What runs and steps need of their :class:`~mlscope.pipelines.PipelineMonitor`."""

    name: str  # the pipeline's own name (log lines)
    pipeline: str  # its label (capped)
    ins: PipelineInstruments
    reference: ReferenceProfile | None
    pushgateway: str | None
    handle_sigterm: bool

    def push(self) -> PushResult: ...
    def model_monitor(self, model: str, model_version: str, **kwargs: Any) -> Any: ...
    def count_invalid(self, reason: str, count: int = 1, fields: Mapping[str, Any] | None = None) -> None: ...
    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None: ...


class RunEndedError(RuntimeError):
    """A step started, or a record made, on a run that has already ended (and pushed)."""


def error_name(error: BaseException | type[BaseException] | str) -> str:
    if isinstance(error, str):
        return error
    return (error if isinstance(error, type) else type(error)).__name__


class Step:
    """One named step of a run: started when created, ended by ``with`` (or :meth:`end`)."""

    def __init__(self, run: Run, name: str) -> None:
        self.run, self.monitor = run, run.monitor
        self.name = str(name)  # the log lines' name
        self.label = self.monitor.ins.admit("step", name)  # the metrics' (capped)
        self.record_counts: dict[str, int] = {}  # by direction, where the job gave a valid count
        self.rejected: dict[str, int] = {}  # by reason (the job's own names)
        self.invalid: dict[str, int] = {}  # bad values handed to this step, by reason
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
            n = self._count(value, "records", f"rejected[{reason!r}]")
            if n is not None:
                ins.rejected.labels(self.monitor.pipeline, self.label, ins.admit("reason", reason)).inc(n)
                self.rejected[str(reason)] = self.rejected.get(str(reason), 0) + n

    def bytes(self, read: int | None = None, written: int | None = None) -> None:
        """Add bytes read and written, where the job knows them."""
        self._add(self.monitor.ins.bytes, "bytes", read, written, self.byte_counts)

    def _add(self, counter: Any, unit: str, read: Any, written: Any, totals: dict[str, int]) -> None:
        for direction, value, given in (("in", read, "read"), ("out", written, "written")):
            n = self._count(value, unit, given)
            if n is not None:
                counter.labels(self.monitor.pipeline, self.label, direction).inc(n)
                totals[direction] = totals.get(direction, 0) + n

    def event_times(self, times: Any) -> None:
        """Event times of the step's records (Unix seconds, ``datetime64``, ``datetime``): the newest one
        sets the data's freshness. Values that are not finite times are counted (``event_time_invalid``)."""
        values, bad = _unix_seconds(times)
        if bad:
            self.invalid_value("event_time_invalid", bad, "event_times", f"{bad} of the values")
        if values.size:
            newest = float(values.max())
            self.newest_event = newest if self.newest_event is None else max(self.newest_event, newest)
            self.monitor.ins.newest_event.labels(self.monitor.pipeline, self.label).set(self.newest_event)

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
                self.invalid_value("duration_not_finite_or_negative", 1, "duration_seconds", duration_seconds)
            else:
                duration = given
        self.duration_seconds = duration
        self.status = "success" if error is None else "failure"
        self.error_type = None if error is None else error_name(error)
        ins, pipeline, step = self.monitor.ins, self.monitor.pipeline, self.label
        ins.steps.labels(pipeline, step, self.status).inc()
        if self.error_type is not None:
            ins.step_failures.labels(pipeline, step, ins.admit("error_type", self.error_type)).inc()
        ins.last_step_duration.labels(pipeline, step).set(duration)
        # A count the job did not give (or gave only invalid) is no series: "read 0" would be a claim, and
        # the rejected share of the records read is only defined where they were counted.
        counts = {"in": self.record_counts.get("in"), "out": self.record_counts.get("out"),
                  "rejected": sum(self.rejected.values())}
        for kind, value in counts.items():
            if value is not None:
                ins.last_records.labels(pipeline, step, kind).set(value)
            else:
                _remove(ins.last_records, pipeline, step, kind)
        self.run.step_ended(self)

    def fields(self) -> dict[str, Any]:
        """What the step's log line carries (records_in/out None: the job gave no valid count)."""
        out: dict[str, Any] = {"step": self.name, "status": self.status, "error_type": self.error_type,
                               "duration_seconds": self.duration_seconds,
                               "records_in": self.record_counts.get("in"), "records_out": self.record_counts.get("out"),
                               "records_rejected": dict(self.rejected)}
        if self.invalid:
            out["invalid_inputs"] = dict(self.invalid)
        if self.byte_counts:
            out.update(bytes_in=self.byte_counts.get("in"), bytes_out=self.byte_counts.get("out"))
        if self.newest_event is not None:
            out.update(newest_event_time=_iso(self.newest_event), freshness_seconds=self.freshness_seconds)
        return out

    def _count(self, value: Any, unit: str, argument: str) -> int | None:
        if value is None:
            return None
        n, reason = count_value(value, unit)
        if reason is not None:
            self.invalid_value(reason, 1, argument, value)
        return n

    def invalid_value(self, reason: str, count: int, argument: str, value: Any) -> None:
        """Count and log a bad value handed to this step (it was skipped)."""
        self.invalid[reason] = self.invalid.get(reason, 0) + count
        self.run.invalid_value(reason, count, {"step": self.name, "argument": argument, "value": repr(value)[:80]})


def _remove(gauge: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set
        gauge.remove(*labels)


class Run:
    """One run of a pipeline over one data batch, made of named steps (a context manager, or :meth:`end`).

    The run fails when an exception leaves its ``with`` block, when :meth:`end` is given an error, or when
    one of its steps failed (a step still open at the end fails with ``StepNotEnded``), when SIGTERM arrives
    inside it (``SIGTERM``) or when the process exits without ending it (``RunNotEnded``). When it starts
    it sets its start time and, with a Pushgateway, pushes the group (``start_push_result``); when it ends
    it sets the pipeline's last-run gauges, writes its log line and pushes again: ``push_result`` says how
    that went (a failed push is counted and logged, never raised; :attr:`exit_code` tells the shell).
    """

    push_at_start = True  # a pipeline run pushes its "started" state (a training run has no stale alert)

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
        self.start_push_result: PushResult | None = None
        self.started_at = time.time()
        self._start = time.perf_counter()
        self._failed_steps: list[str] = []
        self.emit(logging.INFO, self.start_event, f"{monitor.name} run started", dict(fields or {}))
        lifecycle.opened(self, handle_sigterm=monitor.handle_sigterm)
        if self.push_at_start:
            monitor.ins.last_start.labels(monitor.pipeline).set(self.started_at)
            if monitor.pushgateway is not None:
                self.start_push_result = self.push("start")

    start_event, end_event = cat.RUN_START, cat.RUN_END

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        self.end(exc_type)
        return False

    # -- steps and checks ------------------------------------------------------------------------

    def step(self, name: str) -> Step:
        """Start step ``name`` now (a context manager: an exception leaving it fails the step, and re-raises);
        :class:`RunEndedError` once the run has ended (its outcome was already recorded and pushed)."""
        if self.status is not None:
            raise RunEndedError(f"pipeline {self.monitor.name}: step {name!r:.80} started after run {self.run_id} "
                                f"ended ({self.status}); start a new run (monitor.run(...))")
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
                  f"{self.monitor.name} step {step.name}: {step.status}", step.fields())

    def invalid_value(self, reason: str, count: int, fields: Mapping[str, Any]) -> None:
        """Count a bad value (``mlscope_pipeline_invalid_inputs_total``) and log it with this run's ids."""
        self.monitor.count_invalid(reason, count, {**self.ids(), **fields})

    def check_batch(self, data: Any, *, step: Step | None = None) -> BatchCheck:
        """Hold a batch to the pipeline's reference profile: missing, infinite, out-of-range, wrong-type and
        new-category values, schema (absent or unknown columns) and drift. Sets the check gauges and logs it;
        the job decides what a failed check means (``check.passed``)."""
        reference = self.monitor.reference
        if reference is None:
            raise ValueError(f"pipeline {self.monitor.name} has no reference profile: "
                             "PipelineMonitor(..., reference=profile or its JSON path)")
        check = check_batch(reference, data)
        ins, pipeline = self.monitor.ins, self.monitor.pipeline
        for name in cat.CHECKS:
            failed = check.failures.get(name, ())
            ins.check_failures.labels(pipeline, name).set(len(failed))
            for feature in reference.features:
                ins.check_feature_failed.labels(pipeline, name, feature.name).set(
                    check.severity(name, feature.name) if feature.name in failed else 0.0)
        ins.checked_rows.labels(pipeline).set(check.rows)
        if step is not None:
            step.check = check
        self.emit(logging.INFO if check.passed else logging.WARNING, cat.BATCH_CHECK,
                  f"{self.monitor.name} batch {'passed' if check.passed else 'failed'} its data checks"
                  + (f" ({', '.join(check.skipped)} skipped)" if check.skipped else ""),
                  {"step": None if step is None else step.name, "rows": check.rows, "passed": check.passed,
                   "failures": {k: list(v) for k, v in check.failures.items() if v},
                   "skipped": dict(check.skipped), "psi": check.psi, "profile_hash": reference.content_hash})
        return check

    # -- ending ----------------------------------------------------------------------------------

    def end(self, error: BaseException | type[BaseException] | str | None = None) -> Status:
        """End the run (the first call counts); returns its status."""
        if self.status is not None:
            return self.status
        lifecycle.closed(self)
        for step in self.steps:
            if step.status is None:
                step.invalid_value("step_not_ended", 1, "step", step.name)
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
                  f"{self.monitor.name} run {self.status}", fields)
        if self.monitor.pushgateway is not None:
            self.push_result = self.push("end")
        return self.status

    def push(self, phase: str) -> PushResult:
        """Push the pipeline's group now and log how it went (``phase``: start, end, or what pushed again)."""
        result = self.monitor.push()
        self.emit(logging.INFO if result.ok else logging.WARNING, cat.PUSH,
                  f"{self.monitor.name} push ({phase}) to {self.monitor.pushgateway}: "
                  + ("ok" if result.ok else f"failed ({result.reason})"),
                  {"phase": phase, "pushed": result.ok, "push_seconds": result.seconds,
                   "reason": result.reason or None, "error": result.error or None})
        return result

    @property
    def exit_code(self) -> int:
        """What the job's process should exit with (``sys.exit(run.exit_code)``): 0 when the run succeeded and
        its push (if any) went through, 1 when it failed or has not ended, 75 (EX_TEMPFAIL) when it succeeded
        but its push failed (Prometheus never saw it: retry)."""
        if self.status != "success":
            return 1
        return 75 if self.push_result is not None and not self.push_result.ok else 0

    def abandoned(self) -> None:
        """The process exits with this run open: warned, counted, ended as failed (``RunNotEnded``), pushed."""
        self.invalid_value("run_not_ended", 1, {"argument": "run", "value": self.run_id})
        self.end(cat.NOT_ENDED_ERROR)

    def record_end(self, now: float) -> None:
        """The run-level metrics of a pipeline run (a training run has its own)."""
        ins, pipeline = self.monitor.ins, self.monitor.pipeline
        assert self.status is not None and self.duration_seconds is not None
        ins.runs.labels(pipeline, self.status).inc()
        ins.last_run_duration.labels(pipeline).set(self.duration_seconds)
        (ins.last_success if self.status == "success" else ins.last_failure).labels(pipeline).set(now)
        if self.error_type is not None:  # one error type per pipeline: the last failure's
            error_type = ins.admit("error_type", self.error_type)
            previous = ins.last_error_type.get(pipeline)
            if previous is not None and previous != error_type:
                _remove(ins.last_error, pipeline, previous)
            ins.last_error.labels(pipeline, error_type).set(1)
            ins.last_error_type[pipeline] = error_type

    def end_fields(self) -> dict[str, Any]:
        return {}

    def ids(self) -> dict[str, Any]:
        """What every line of the run carries (``step`` None unless the line is a step's)."""
        return {"run_id": self.run_id, "data_batch_id": self.data_batch_id, "model": self.model,
                "model_version": self.model_version, "step": None}

    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        self.monitor.emit(level, event, message, {**self.ids(), **fields})


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
