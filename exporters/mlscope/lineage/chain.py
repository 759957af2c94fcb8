"""The chain of one model version: serving info and training info (Prometheus), its training runs, the alert
that started them, their data batches and the pipeline runs over those batches (log lines)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalog import pipelines as cat
from ..catalog import serving
from ..catalog.pipelines import PUSH_JOB
from . import queries
from .sources import LogSource, PrometheusSource, SourceError

INTERNAL_LABELS = ("__name__",)


def _promql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Lineage:
    """What the sources hold about one model version; ``missing`` says what could not be read, and why."""

    model: str
    model_version: str
    serving: list[dict[str, str]] = field(default_factory=list)  # mlscope_model_info scraped from a service now
    pushed: list[dict[str, str]] = field(default_factory=list)  # mlscope_model_info a training job pushed
    not_serving: list[dict[str, str]] = field(default_factory=list)  # mlscope_model_info seen, gone now
    retired: list[dict[str, str]] = field(default_factory=list)  # mlscope_model_retired_info seen in the range
    trained: list[dict[str, str]] = field(default_factory=list)  # mlscope_training_info label sets
    training_runs: list[dict[str, Any]] = field(default_factory=list)  # training_run_end lines
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the receiver's lines of the triggering alerts
    pipeline_runs: list[dict[str, Any]] = field(default_factory=list)  # pipeline_run_end lines of the batches
    prediction: dict[str, Any] | None = None  # the prediction line the chain was traced back from
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the input (a file that is not JSON lines)

    def note(self, message: str) -> None:
        """Say what is missing, once (a source that fails fails every query)."""
        if message not in self.missing:
            self.missing.append(message)

    @property
    def batch_ids(self) -> list[str]:
        """The data batches of the training runs (and of the prediction), in order, once each."""
        ids: list[str] = []
        for run in self.training_runs:
            ids += [str(b) for b in run.get(cat.DATA_BATCH_IDS) or []]
            ids += [str(run["data_batch_id"])] if run.get("data_batch_id") else []
        if self.prediction and self.prediction.get("data_batch_id"):
            ids.append(str(self.prediction["data_batch_id"]))
        return list(dict.fromkeys(ids))

    @property
    def fingerprints(self) -> dict[str, set[str]]:
        """The training-data fingerprint each source names: they must all be one value."""
        found = {"mlscope_model_info": {s["training_data_fingerprint"] for s in self.serving + self.pushed
                                        + self.not_serving if s.get("training_data_fingerprint")},
                 "mlscope_training_info": {s["training_data_fingerprint"] for s in self.trained},
                 "training run log lines": {str(r["training_data_fingerprint"]) for r in self.training_runs
                                            if r.get("status") == "success" and r.get("training_data_fingerprint")}}
        return {where: values for where, values in found.items() if values}

    @property
    def consistent(self) -> bool:
        return len(set().union(*self.fingerprints.values())) <= 1

    @property
    def compared(self) -> bool:
        """Whether two sources or more named a fingerprint: only then does :attr:`consistent` claim anything."""
        return len(self.fingerprints) >= 2

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_version": self.model_version, "serving": self.serving,
                "pushed": self.pushed, "not_serving": self.not_serving, "retired": self.retired,
                "trained": self.trained,
                "training_runs": self.training_runs, "alerts": self.alerts,
                "data_batch_ids": self.batch_ids, "pipeline_runs": self.pipeline_runs,
                "prediction": self.prediction, "fingerprints_agree": self.consistent,
                "fingerprint_sources": len(self.fingerprints), "missing": self.missing, "warnings": self.warnings}


def trace(model: str, version: str, *, prometheus: PrometheusSource | None = None,
          logs: Sequence[LogSource] = (), since: str = "7d", prometheus_down: str = "") -> Lineage:
    """The lineage of ``model`` ``version`` from whatever sources are given; ``prometheus_down``: why a
    Prometheus that was given is not asked (it stopped answering)."""
    found = Lineage(model, version)
    _read_gauges(found, prometheus, since, prometheus_down)
    if not logs:
        found.missing.append("log lines: no --loki URL or --logs FILE.jsonl given, so no training run, data batch, "
                             "pipeline run or triggering alert (they live only in log lines)")
        return found
    found.training_runs, answered = _lines(found, logs, queries.training_runs(model, version), "run_id")
    if not found.training_runs and answered:
        found.note(f"no training_run_end line of {model} {version} in {answered}: the training job "
                   "did not name the version (training_run(..., model_version=) or run.model_monitor) "
                   "or its lines are not there")
    _read_batches(found, logs)
    fingerprints = [str(run[cat.TRIGGERED_BY]["fingerprint"]) for run in found.training_runs
                    if isinstance(run.get(cat.TRIGGERED_BY), dict) and run[cat.TRIGGERED_BY].get("fingerprint")]
    for fingerprint in dict.fromkeys(fingerprints):
        lines, answered = _lines(found, logs, queries.alert_lines(fingerprint), None)
        if not lines and answered:
            found.note(f"alert {fingerprint}: no alert receiver line in {answered} (give the "
                       "receiver's alerts.jsonl, or the Loki it ships to)")
        found.alerts += lines
    _read_warnings(found, logs)
    return found


def from_prediction(request_id: str, *, prometheus: PrometheusSource | None = None,
                    logs: Sequence[LogSource] = (), since: str = "7d") -> Lineage:
    """Back from a prediction's log line (its model version and data batch id) to the version's lineage."""
    probe = Lineage("", "")
    lines, answered = _lines(probe, logs, queries.prediction(request_id), None) if logs else ([], "")
    if not lines:
        if not logs:
            probe.note(f"no log source given: pass --loki URL or --logs FILE.jsonl to find the prediction line "
                       f"of request id {request_id}")
        elif answered:
            probe.note(f"no prediction line with request id {request_id} in {answered} (only logged predictions "
                       "have one: errors, slow ones and the sampled share)")
        _read_warnings(probe, logs)
        return probe
    line = lines[-1]
    found = trace(str(line.get("model")), str(line.get("model_version")), prometheus=prometheus, logs=logs,
                  since=since)
    found.prediction = line
    found.missing = probe.missing + [m for m in found.missing if m not in probe.missing]
    if line.get("data_batch_id") and not any(r.get("data_batch_id") == line["data_batch_id"]
                                             for r in found.pipeline_runs):
        _read_batches(found, logs)
    return found


def _read_gauges(found: Lineage, prometheus: PrometheusSource | None, since: str, down: str = "") -> None:
    if prometheus is None:
        why = f"not asked: {down}" if down else "no --prometheus URL given"
        found.missing.append(f"Prometheus: {why}, so no mlscope_model_info or mlscope_training_info (the "
                             "bounded gauges)")
        return
    matchers = f"model={_promql_string(found.model)},model_version={_promql_string(found.model_version)}"

    def read(expr: str) -> list[dict[str, str]]:
        return [{k: v for k, v in s.items() if k not in INTERNAL_LABELS} for s in prometheus.series(expr)]

    info, training = serving.MODEL_INFO.name, cat.TRAINING_INFO.name
    try:
        seen = read(f"last_over_time({info}{{{matchers}}}[{since}])")
        now = read(f"{info}{{{matchers}}}")
        found.retired = read(f"last_over_time({serving.MODEL_RETIRED.name}{{{matchers}}}[{since}])")
        found.trained = read(f"last_over_time({training}{{{matchers}}}[{since}])")
    except SourceError as exc:  # said once: the same Prometheus fails the next query too
        found.note(f"{exc}, so no {info} or {training} were read")
        return
    _classify(found, seen, now)
    for name, series in ((info, seen), (training, found.trained)):
        if not series:
            found.note(f"{name}: no series of {found.model} {found.model_version} in {prometheus.name} "
                       f"over the last {since}")


def _classify(found: Lineage, seen: list[dict[str, str]], now: list[dict[str, str]]) -> None:
    """Serving: exposed now by a scraped service; pushed: a training job's (the Pushgateway's job), never serving;
    not serving: seen within the range, gone now (retired, or its service stopped)."""
    for labels in seen:
        if labels.get("job") == PUSH_JOB:
            found.pushed.append(labels)
        elif labels in now:
            found.serving.append(labels)
        else:
            found.not_serving.append(labels)


def _read_batches(found: Lineage, logs: Sequence[LogSource]) -> None:
    batches = tuple(found.batch_ids)
    if not batches:
        return
    found.pipeline_runs, answered = _lines(found, logs, queries.pipeline_runs(batches), "run_id")
    seen = {str(r.get("data_batch_id")) for r in found.pipeline_runs}
    for batch in batches:
        if batch not in seen and answered:
            found.note(f"data batch {batch}: no pipeline_run_end line in {answered}")


def _lines(found: Lineage, logs: Sequence[LogSource], query: queries.LineQuery,
           key: str | None) -> tuple[list[Any], str]:
    """The lines of every source (one of each ``key`` value, or of each identical line), oldest first, and the
    names of the sources that answered ("" when none did: a missing line then says nothing about the job)."""
    out: dict[str, dict[str, Any]] = {}
    answered = []
    for source in logs:
        try:
            lines = source.lines(query)
        except SourceError as exc:
            found.note(str(exc))
            continue
        answered.append(source.name)
        for line in lines:
            ident = str(line.get(key)) + str(line.get("event")) if key else json.dumps(line, sort_keys=True)
            out.setdefault(ident, line)
    return sorted(out.values(), key=lambda line: str(line.get("ts", ""))), " and ".join(answered)


def _read_warnings(found: Lineage, logs: Sequence[LogSource]) -> None:
    for source in logs:
        for warning in getattr(source, "warnings", list)():
            if warning not in found.warnings:
                found.warnings.append(warning)
