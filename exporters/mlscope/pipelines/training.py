"""A training run: hyperparameters, dataset version, transformations, epoch and final metrics, outcome.

Its fingerprint is :func:`mlscope.drift.training_data_fingerprint` of the training set, the value a model
version's ``mlscope_model_info{training_data_fingerprint}`` carries (:meth:`TrainingRun.model_monitor`) and
its reference profile's ``source_hash``: the three name the same data when they are given the data in the same
form (a file's path hashes its bytes, a table its columns: the same CSV gives two fingerprints). A run whose
fingerprint is not the pipeline's reference profile's ``source_hash`` logs a warning saying so.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..catalog import pipelines as cat
from ..drift.fingerprint import training_data_fingerprint
from ..labels import MAX_VALUE_LENGTH
from .feedback import AlertTrigger
from .runs import Pipeline, Run

if TYPE_CHECKING:
    from ..monitor import ModelMonitor


class TrainingRun(Run):
    """A run of a training pipeline for ``model`` (steps as any run's: ``load``, ``fit``, ``evaluate``...).

    Give the training set (``training_data``, with ``columns`` for a 2-D array; a path hashes the file) or
    its ``fingerprint`` when it was computed elsewhere with the same function. ``model_version`` is the
    version the run produces (or :meth:`model_monitor` names it): a successful run sets
    ``mlscope_training_info`` for it. ``data_batch_ids`` are the batches the training set was built from and
    ``triggered_by`` the alert that started the run (:class:`~mlscope.pipelines.AlertTrigger`, or the alert's
    JSON object): both go into the run's log lines only (unbounded values), for lineage.
    """

    start_event, end_event = cat.TRAINING_START, cat.TRAINING_END
    push_at_start = False  # no stale alert reads a training run's start

    def __init__(self, monitor: Pipeline, model: str, *, dataset_version: str, training_data: Any = None,
                 columns: Iterable[str] | None = None, fingerprint: str | None = None,
                 hyperparameters: Mapping[str, Any] | None = None, transformations: Iterable[str] = (),
                 data_batch_id: str | None = None, run_id: str | None = None, model_version: str | None = None,
                 data_batch_ids: Iterable[str] = (), triggered_by: AlertTrigger | Mapping[str, Any] | None = None
                 ) -> None:
        if (training_data is None) == (fingerprint is None):
            raise ValueError("give the training set (training_data=...) or its fingerprint (fingerprint=...)")
        self.fingerprint = fingerprint if fingerprint is not None else training_data_fingerprint(
            training_data, None if columns is None else list(columns))
        self.dataset_version = str(dataset_version)
        self.hyperparameters = dict(hyperparameters or {})
        self.transformations = [str(t) for t in transformations]
        self.model_label = monitor.ins.admit("model", model)
        self.epochs: list[dict[str, float]] = []
        self.final_metrics: dict[str, float] = {}
        self.data_batch_ids = [str(b) for b in data_batch_ids]
        self.triggered_by = (triggered_by if isinstance(triggered_by, AlertTrigger) or triggered_by is None
                             else AlertTrigger.from_alert(triggered_by))
        super().__init__(monitor, data_batch_id, run_id=run_id, model=model, model_version=model_version,
                         fields=self._lineage_fields())
        self._compare_with_reference(training_data)

    def __enter__(self) -> TrainingRun:
        return self

    def _compare_with_reference(self, training_data: Any) -> None:
        reference = self.monitor.reference
        if reference is None or not reference.source_hash or reference.source_hash == self.fingerprint:
            return
        given = "a file's bytes" if isinstance(training_data, (str, os.PathLike)) else (
            "a fingerprint given" if training_data is None else "a table's columns")
        self.emit(logging.WARNING, cat.FINGERPRINT_MISMATCH,
                  f"{self.model}: training data fingerprint {self.fingerprint[:19]} (of {given}) is not the "
                  f"reference profile's source_hash {reference.source_hash[:19]}: give both the same form of "
                  "the data (the file's path to both, or the same table)",
                  {"training_data_fingerprint": self.fingerprint, "source_hash": reference.source_hash})

    def epoch(self, number: int, **metrics: float) -> None:
        """Report one epoch's evaluation metrics (``loss=0.3, val_accuracy=0.91``); ``number`` is an integer
        >= 0 (else counted as ``epoch_invalid``, logged, and the epoch gauge left as it was)."""
        kept = self._metrics(metrics, self.monitor.ins.training_epoch_metric)
        if isinstance(number, numbers.Integral) and not isinstance(number, bool) and number >= 0:
            self.monitor.ins.training_last_epoch.labels(self.monitor.pipeline, self.model_label).set(number)
        else:
            self.invalid_value("epoch_invalid", 1, {"argument": "epoch", "value": repr(number)[:80]})
        self.epochs.append(kept)
        self.emit(logging.INFO, cat.TRAINING_EPOCH, f"{self.model} epoch {number}",
                  {"epoch": number, "metrics": metrics})

    def final(self, **metrics: float) -> None:
        """Report the final evaluation metrics (``accuracy=0.93, f1=0.9``)."""
        self.final_metrics.update(self._metrics(metrics, self.monitor.ins.training_final_metric))

    def model_monitor(self, model_version: str, **kwargs: Any) -> ModelMonitor:
        """The trained version's :class:`~mlscope.ModelMonitor`, its ``training_data_fingerprint`` this
        run's (``metadata`` gets ``dataset_version`` and the pipeline's ``owner``), on the pipeline's registry
        so the run's push carries its ``mlscope_model_info`` (see :meth:`PipelineMonitor.model_monitor`).
        Called after the run ended, it pushes the group again, so the version still reaches the Pushgateway."""
        self.model_version = model_version
        metadata = {"dataset_version": self.dataset_version, **dict(kwargs.pop("metadata", None) or {})}
        monitor: ModelMonitor = self.monitor.model_monitor(str(self.model), model_version,
                                                           training_data_fingerprint=self.fingerprint,
                                                           metadata=metadata, **kwargs)
        if self.status == "success":
            self._record_training_info()  # the run ended before it named its version
        if self.status is not None and self.monitor.pushgateway is not None:
            self.push_result = self.push("model_monitor")
        return monitor

    def record_end(self, now: float) -> None:
        ins, labels = self.monitor.ins, (self.monitor.pipeline, self.model_label)
        assert self.status is not None and self.duration_seconds is not None
        ins.training_runs.labels(*labels, self.status).inc()
        ins.training_last_duration.labels(*labels).set(self.duration_seconds)
        (ins.training_last_success if self.status == "success" else ins.training_last_failure).labels(*labels).set(now)
        if self.status == "success":
            self._record_training_info()

    def _record_training_info(self) -> None:
        """``mlscope_training_info`` of the version this successful run produced, once it is named."""
        if self.model_version is None:
            return
        ins = self.monitor.ins
        ins.training_info.labels(self.monitor.pipeline, self.model_label,
                                 ins.admit("model_version", self.model_version),
                                 ins.admit("dataset_version", self.dataset_version[:MAX_VALUE_LENGTH]),
                                 ins.admit("training_data_fingerprint", self.fingerprint)).set(1)

    def _lineage_fields(self) -> dict[str, Any]:
        """What both the start and the end line carry: the end line alone answers a lineage question."""
        fields: dict[str, Any] = {
            "dataset_version": self.dataset_version, "training_data_fingerprint": self.fingerprint,
            "hyperparameters": self.hyperparameters, "transformations": self.transformations,
            cat.DATA_BATCH_IDS: self.data_batch_ids}
        if self.triggered_by is not None:
            fields[cat.TRIGGERED_BY] = self.triggered_by.fields()
        return fields

    def end_fields(self) -> dict[str, Any]:
        return {**self._lineage_fields(), "final_metrics": self.final_metrics, "epochs": len(self.epochs)}

    def _metrics(self, metrics: Mapping[str, Any], gauge: Any) -> dict[str, float]:
        kept = {}
        for name, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                self.invalid_value("metric_not_finite", 1, {"argument": name, "value": repr(value)[:80]})
                continue
            kept[name] = number
            gauge.labels(self.monitor.pipeline, self.model_label, self.monitor.ins.admit("metric", name)).set(number)
        return kept
