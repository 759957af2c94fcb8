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

from ..catalog import pipelines as cat
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

    ``owner`` labels ``mlscope_pipeline_info`` (alerts about the pipeline carry it, for routing, and so do
    the model alerts of :meth:`model_monitor`'s version); ``expected_interval_s`` is how often it should
    succeed (the stale alert's interval; the rule configuration's ``pipeline_expected_interval`` when None),
    ``max_data_age_s`` how old its newest event may be (the freshness alert's; ``pipeline_max_data_age``
    when None). ``reference`` (a profile or its JSON path) is what :meth:`Run.check_batch` holds batches to.
    ``pushgateway`` (``host``, ``host:port``, port 9091 when none, or an ``http(s)://`` URL) makes every run
    push the pipeline's group when it starts and when it ends (grouping key ``job``, ``pipeline``, and
    ``instance`` when given: only a bounded one, e.g. a shard of a fixed set; the alerts are per instance);
    without it, serve ``registry`` to be scraped. ``handle_sigterm``: a SIGTERM inside a run ends it as
    failed and pushes before the process's own handling (:mod:`mlscope.pipelines.lifecycle`).
    """

    def __init__(self, pipeline: str, *, registry: CollectorRegistry | None = None, owner: str = "",
                 expected_interval_s: float | None = None, max_data_age_s: float | None = None,
                 reference: Any = None, pushgateway: str | None = None, job: str = PUSH_JOB,
                 instance: str | None = None, push_timeout: float = pushing.DEFAULT_TIMEOUT_S,
                 handle_sigterm: bool = True, logger: logging.Logger | str = LOGGER) -> None:
        if not isinstance(pipeline, str) or not pipeline.strip():
            raise ValueError(f"pipeline must be a non-empty string, got {pipeline!r:.80}")
        for name, seconds in (("expected_interval_s", expected_interval_s), ("max_data_age_s", max_data_age_s)):
            if seconds is not None and seconds_value(seconds) in (None, 0.0):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {seconds!r}")
        if not push_timeout > 0:
            raise ValueError(f"push_timeout must be > 0 seconds, got {push_timeout!r}")
        self.ins: PipelineInstruments = pipeline_instruments(registry)
        self.registry = self.ins.registry
        self.name = pipeline  # log lines carry it as given; the label is capped
        self.pipeline = self.ins.admit("pipeline", pipeline)
        self.owner = owner
        self.log = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.reference = None if reference is None else _load(reference)
        self.pushgateway = None if pushgateway is None else pushing.gateway_url(pushgateway)
        self.push_timeout, self.handle_sigterm = float(push_timeout), handle_sigterm
        self.grouping_key = {"job": job, "pipeline": self.pipeline, **({"instance": instance} if instance else {})}
        self.kind = ""
        self._set_kind(cat.PIPELINE_KINDS[0])
        if expected_interval_s is not None:
            self.ins.expected_interval.labels(self.pipeline).set(float(expected_interval_s))
        if max_data_age_s is not None:
            self.ins.max_data_age.labels(self.pipeline).set(float(max_data_age_s))
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
        """Start a training run of ``model`` (see :class:`mlscope.pipelines.TrainingRun`); from then on the
        pipeline's ``mlscope_pipeline_info`` says ``kind="training"``."""
        self._set_kind("training")
        return TrainingRun(self, model, dataset_version=dataset_version, training_data=training_data,
                           columns=columns, fingerprint=fingerprint, hyperparameters=hyperparameters,
                           transformations=transformations, data_batch_id=data_batch_id, run_id=run_id,
                           model_version=model_version, data_batch_ids=data_batch_ids, triggered_by=triggered_by)

    def _set_kind(self, kind: str) -> None:
        """Label ``mlscope_pipeline_info`` with ``kind`` (one of the catalog's PIPELINE_KINDS), only that one."""
        if kind == self.kind:
            return
        if self.kind:
            self.ins.info.remove(self.pipeline, self.owner, self.kind)
        self.kind = kind
        self.ins.info.labels(self.pipeline, self.owner, kind).set(1)

    def model_monitor(self, model: str, model_version: str, *, registry: CollectorRegistry | None = None,
                      **kwargs: Any) -> ModelMonitor:
        """A :class:`~mlscope.ModelMonitor` on this pipeline's registry (unless ``registry`` names another,
        which the pipeline's pushes never carry: warned): a batch scoring job's predictions, drift and data
        quality, pushed with the run's group. Its ``metadata`` gets the pipeline's ``owner`` (unless it names
        one), so the version's model alerts go to the pipeline's team."""
        from ..monitor import ModelMonitor

        if registry is not None and registry is not self.ins.registry and self.pushgateway is not None:
            self.emit(logging.WARNING, cat.PUSH, f"{self.name}: ModelMonitor {model} {model_version} is on another "
                      "registry than the pipeline's: its pushes do not carry it (leave out registry=)",
                      {"model": model, "model_version": model_version, "phase": "model_monitor"})
        metadata = dict(kwargs.pop("metadata", None) or {})
        if self.owner:
            metadata.setdefault("owner", self.owner)
        return ModelMonitor(model, model_version, registry=registry or self.ins.registry, metadata=metadata,
                            **kwargs)

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

    def count_invalid(self, reason: str, count: int = 1, fields: Mapping[str, Any] | None = None) -> None:
        """Count ``count`` bad values (skipped) and, with ``fields`` (the run's ids, the step, the value), log them."""
        child = self._invalid_children.get(reason)
        if child is None:
            child = self._invalid_children[reason] = self.ins.invalid.labels(self.pipeline, reason)
        child.inc(count)
        if fields is not None:
            given = f" ({fields['argument']}={fields['value']})" if "argument" in fields else ""
            self.emit(logging.WARNING, cat.INVALID_INPUT, f"{self.name}: {cat.INVALID_REASONS.get(reason, reason)}"
                      f"{given}", {"reason": reason, "count": count, **fields})

    def emit(self, level: int, event: str, message: str, fields: Mapping[str, Any]) -> None:
        try:
            self.log.log(level, message, extra={"event": event, "pipeline": self.name, **fields})
        except Exception as exc:  # a log line never takes the job down
            self.ins.core.report_internal_error("pipeline_log", exc)


def _load(reference: Any) -> Any:
    from ..drift.profile import load_profile

    return load_profile(reference if not isinstance(reference, Path) else str(reference))
