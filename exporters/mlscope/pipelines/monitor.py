"""The pipeline monitor: one pipeline's metrics, log lines and Pushgateway group (see :mod:`.runs`).

Metric labels are the pipeline, the step, a status and a reason, each capped by the registry's label guard;
run ids, data batch ids and model versions go only into the log lines (logger ``mlscope.pipelines``, through
:class:`mlscope.logs.LokiHandler` when it is attached).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from ..catalog.pipelines import PUSH_JOB
from . import push as pushing
from .feedback import AlertTrigger
from .instruments import PipelineInstruments, pipeline_instruments, seconds_value
from .runs import Run
from .training import TrainingRun

if TYPE_CHECKING:
    from ..monitor import ModelMonitor

LOGGER = "mlscope.pipelines"


class PipelineMonitor:
    """Metrics and log lines of one pipeline (an ingestion, feature, scoring or training job).

    ``owner`` labels ``mlscope_pipeline_info`` (alerts about the pipeline carry it, for routing);
    ``expected_interval_s`` is how often it should succeed (the stale alert's interval; the rule
    configuration's ``pipeline_expected_interval`` when None). ``reference`` (a profile or its JSON path)
    is what :meth:`Run.check_batch` holds batches to. ``pushgateway`` (``host:port`` or a URL) makes every
    run push the pipeline's group when it ends (grouping key ``job``, ``pipeline``, and ``instance`` when
    given: only a bounded one, e.g. a shard of a fixed set); without it, serve ``registry`` to be scraped.
    """

    def __init__(self, pipeline: str, *, registry: CollectorRegistry | None = None, owner: str = "",
                 expected_interval_s: float | None = None, reference: Any = None,
                 pushgateway: str | None = None, job: str = PUSH_JOB, instance: str | None = None,
                 push_timeout: float = pushing.DEFAULT_TIMEOUT_S, logger: logging.Logger | str = LOGGER) -> None:
        if not isinstance(pipeline, str) or not pipeline.strip():
            raise ValueError(f"pipeline must be a non-empty string, got {pipeline!r:.80}")
        if expected_interval_s is not None and seconds_value(expected_interval_s) in (None, 0.0):
            raise ValueError(f"expected_interval_s must be a finite number of seconds > 0, got {expected_interval_s!r}")
        if not push_timeout > 0:
            raise ValueError(f"push_timeout must be > 0 seconds, got {push_timeout!r}")
        self.ins: PipelineInstruments = pipeline_instruments(registry)
        self.registry = self.ins.registry
        self.pipeline = self.ins.admit("pipeline", pipeline)
        self.owner = owner
        self.log = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.reference = None if reference is None else _load(reference)
        self.pushgateway, self.push_timeout = pushgateway, float(push_timeout)
        self.grouping_key = {"job": job, "pipeline": self.pipeline, **({"instance": instance} if instance else {})}
        self.ins.info.labels(self.pipeline, owner).set(1)
        if expected_interval_s is not None:
            self.ins.expected_interval.labels(self.pipeline).set(float(expected_interval_s))
        self._invalid_children: dict[str, Any] = {}

    # -- runs ------------------------------------------------------------------------------------

    def run(self, data_batch_id: str | None = None, *, run_id: str | None = None, model: str | None = None,
            model_version: str | None = None, **fields: Any) -> Run:
        """Start a run (a context manager; or call :meth:`Run.end`). ``fields`` go into its log lines."""
        return Run(self, data_batch_id, run_id=run_id, model=model, model_version=model_version, fields=fields)

    def training_run(self, model: str, *, dataset_version: str, training_data: Any = None,
                     columns: Iterable[str] | None = None, fingerprint: str | None = None,
                     hyperparameters: Mapping[str, Any] | None = None, transformations: Iterable[str] = (),
                     data_batch_id: str | None = None, run_id: str | None = None, model_version: str | None = None,
                     data_batch_ids: Iterable[str] = (), triggered_by: AlertTrigger | Mapping[str, Any] | None = None
                     ) -> TrainingRun:
        """Start a training run of ``model`` (see :class:`mlscope.pipelines.TrainingRun`)."""
        return TrainingRun(self, model, dataset_version=dataset_version, training_data=training_data,
                           columns=columns, fingerprint=fingerprint, hyperparameters=hyperparameters,
                           transformations=transformations, data_batch_id=data_batch_id, run_id=run_id,
                           model_version=model_version, data_batch_ids=data_batch_ids, triggered_by=triggered_by)

    def model_monitor(self, model: str, model_version: str, **kwargs: Any) -> ModelMonitor:
        """A :class:`~mlscope.ModelMonitor` on this pipeline's registry: a batch scoring job's predictions,
        drift and data quality, pushed with the run's group."""
        from ..monitor import ModelMonitor

        return ModelMonitor(model, model_version, registry=self.ins.registry, **kwargs)

    # -- the Pushgateway -------------------------------------------------------------------------

    def push(self) -> pushing.PushResult:
        """Push the pipeline's group now (runs do it when they end); a failure is counted, never raised."""
        if self.pushgateway is None:
            raise ValueError("this PipelineMonitor has no pushgateway= to push to")
        result = pushing.push(self.pushgateway, self.grouping_key, self.ins.registry, self.pipeline,
                              timeout=self.push_timeout)
        if not result.ok:
            self.ins.push_failures.labels(self.pipeline, result.reason).inc()
        return result

    def delete_pushed(self) -> pushing.PushResult:
        """Delete the pipeline's group from the Pushgateway: for a retired pipeline (groups never expire)."""
        if self.pushgateway is None:
            raise ValueError("this PipelineMonitor has no pushgateway= to delete from")
        return pushing.delete(self.pushgateway, self.grouping_key, timeout=self.push_timeout)

    # -- what runs and steps report through ------------------------------------------------------

    def count_invalid(self, reason: str, count: int = 1) -> None:
        child = self._invalid_children.get(reason)
        if child is None:
            child = self._invalid_children[reason] = self.ins.invalid.labels(self.pipeline, reason)
        child.inc(count)

    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        try:
            self.log.log(level, message, extra={"event": event, "pipeline": self.pipeline, **fields})
        except Exception as exc:  # a log line never takes the job down
            self.ins.core.report_internal_error("pipeline_log", exc)


def _load(reference: Any) -> Any:
    from ..drift.profile import load_profile

    return load_profile(reference if not isinstance(reference, Path) else str(reference))
