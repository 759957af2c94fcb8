"""The model service's entry point: record predictions, batches and errors.

Three lines to instrument a service::

    monitor = ModelMonitor("churn", "3.2.0")
    with monitor.track() as p:
        p.output = model.predict(x)[0]

Each recording is a few dictionary look-ups and prometheus-client updates, plus
one span when tracing is on (see :mod:`mlscope.tracing`). No
call ever raises into the service: bad values are counted in
``mlscope_invalid_inputs_total`` and skipped, and an exception inside the
monitor is counted in ``mlscope_monitor_errors_total``.
"""
from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from . import tracing as _tracing
from ._promclient import add_to_histogram
from .attributions import AttributionTracker
from .attributions import collector_for as attribution_collector
from .catalog.versions import ROLES
from .ids import clean_request_id, new_request_id
from .instruments import MAX_METADATA_LABELS, Instruments, instruments_for, metadata_label_name
from .labels import MAX_VALUE_LENGTH
from .shadow import ShadowAgreement

if TYPE_CHECKING:
    from .drift.profile import ReferenceProfile
    from .drift.tracker import DriftTracker
    from .logs import PredictionLog
    from .quality import Quality

Task = Literal["classification", "regression"]
F = TypeVar("F", bound=Callable[..., Any])
__all__ = ["ModelMonitor", "PredictionTracker", "Task", "clean_request_id"]

_exemplar = _tracing.exemplar  # request_id, plus trace_id/span_id when a sampled OpenTelemetry span is active


class PredictionTracker:
    """Context manager for one prediction; set ``output`` (and ``score``) inside the block.

    ``log_fields`` (a dict, optional) adds fields to this prediction's log record, if one is written.
    With tracing on, the block runs inside the prediction's span (spans started in it are its children).
    """

    __slots__ = ("_monitor", "request_id", "data_batch_id", "output", "score", "features", "proba", "segment",
                 "log_fields", "attributions", "_start", "_span")

    def __init__(self, monitor: ModelMonitor, request_id: str | None, data_batch_id: str | None = None) -> None:
        self._monitor = monitor
        self.request_id = new_request_id() if request_id is None else clean_request_id(request_id)
        self.data_batch_id = None if data_batch_id is None else clean_request_id(data_batch_id)
        self.output: Any = None
        self.score: Any = None
        self.features: Any = None  # one row (mapping or sequence) for drift, when a profile is attached
        self.proba: Any = None  # class probabilities, stored for quality scoring (needs quality=)
        self.segment: Any = None
        self.log_fields: Mapping[str, Any] | None = None
        self.attributions: Any = None  # feature name -> attribution (SHAP value, a linear contribution, ...)

    def __enter__(self) -> PredictionTracker:
        monitor = self._monitor
        monitor._enter()
        self._span = monitor._start_span(self.request_id, self.data_batch_id)
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        latency = time.perf_counter() - self._start
        self._monitor._exit(latency, self.request_id, exc_type, self.output, self.score, features=self.features,
                            proba=self.proba, segment=self.segment, log_fields=self.log_fields, span=self._span,
                            error=exc, data_batch_id=self.data_batch_id, attributions=self.attributions)
        return False


class ModelMonitor:
    """Metrics for one model version, written to a prometheus-client registry.

    ``task`` decides how outputs are counted: class labels for
    ``"classification"`` (plus an optional score histogram), a value histogram
    for ``"regression"``. ``metadata`` becomes labels of ``mlscope_model_info``.
    ``reference`` (a :class:`~mlscope.drift.ReferenceProfile` or its JSON path)
    turns on drift and data-quality tracking (see :meth:`attach_profile`).
    ``prediction_log`` (a :class:`mlscope.logs.PredictionLog`) writes one log
    record per prediction, with the request id of the latency exemplar.
    ``tracing`` makes one OpenTelemetry span per prediction and per batch call:
    ``None`` (default) once an SDK tracer provider is set globally, ``True``
    always, ``False`` never, or a ``TracerProvider`` to use (needs ``mlscope[otel]``).
    ``role`` (``"stable"``, ``"canary"`` or ``"shadow"``) declares the version's role for the version
    comparisons (the ``role`` label of ``mlscope_model_info``; docs/versions.md).
    ``shadow_pending`` (default 0: off) keeps up to that many served answers, each for at most ``shadow_ttl_s``
    seconds, for :meth:`shadow` to compare shadow answers with (regression: equal within ``shadow_tolerance``).
    ``attribution_window_s`` is the window of the attribution rank agreement (a prediction's ``attributions``).
    """

    def __init__(self, model: str, model_version: str, *, task: Task = "classification",
                 registry: CollectorRegistry | None = None,
                 training_data_fingerprint: str = "",
                 metadata: Mapping[str, object] | None = None,
                 label_caps: Mapping[str, int] | None = None,
                 latency_buckets: tuple[float, ...] | None = None,
                 value_buckets: tuple[float, ...] | None = None,
                 reference: ReferenceProfile | str | Path | None = None, quality: Quality | None = None,
                 classes: Any = None,
                 prediction_log: PredictionLog | None = None, tracing: Any = None,
                 role: str | None = None, shadow_pending: int = 0, shadow_ttl_s: float = 300.0,
                 shadow_tolerance: float = 0.0, attribution_window_s: float = 3600.0) -> None:
        for name, value in (("model", model), ("model_version", model_version)):
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE_LENGTH:
                raise ValueError(f"{name} must be a non-empty string of at most {MAX_VALUE_LENGTH} characters, "
                                 f"got {value!r:.80}")
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        self._instruments: Instruments = instruments_for(
            registry, label_caps=label_caps, latency_buckets=latency_buckets, value_buckets=value_buckets)
        self.registry = self._instruments.registry
        self.task: Task = task
        self._training_data_fingerprint = training_data_fingerprint
        self._metadata = dict(metadata or {})
        self.role = _declared_role(model, model_version, role, self._metadata)
        self._prediction_log = prediction_log
        self._tracing_option = tracing
        self.model = self._instruments.guard.admit("model", model)
        self.model_version = self._instruments.guard.admit("model_version", model_version)
        self._spans = _tracing.PredictionSpans(tracing, self.model, self.model_version)
        self._bind()
        # Predictions stored for scoring against late ground truth (mlscope.quality.Quality).
        self.quality, self.classes = quality, None if classes is None else list(classes)
        if quality is not None and quality.registry is not self.registry:
            logging.getLogger("mlscope").warning(
                "mlscope: the Quality of %s %s publishes to another registry than the monitor's: pass "
                "Quality(registry=...) the monitor's registry to see quality series next to its others",
                self.model, self.model_version)
        self._quality_sink = None if quality is None else quality.sink(self.model, self.model_version, task, classes)
        self._shadow_options = {"shadow_pending": shadow_pending, "shadow_ttl_s": shadow_ttl_s,
                                "shadow_tolerance": shadow_tolerance, "attribution_window_s": attribution_window_s}
        self._shadow = None if not shadow_pending else ShadowAgreement(
            self.model, self.model_version, regression=task == "regression", registry=self.registry,
            guard=self._instruments.guard, count_invalid=self._invalid, capacity=shadow_pending,
            ttl_s=shadow_ttl_s, tolerance=shadow_tolerance)
        if not 0 < attribution_window_s < math.inf:
            raise ValueError(f"attribution_window_s must be a positive number of seconds, got {attribution_window_s!r}")
        self._attributions: AttributionTracker | None = None
        self._drift: DriftTracker | None = None
        if reference is not None:
            self.attach_profile(reference)

    # -- set-up ---------------------------------------------------------------------------------

    def _bind(self) -> None:
        ins, labels = self._instruments, (self.model, self.model_version)
        self._predictions = ins.predictions.labels(*labels)
        self._latency = ins.latency.labels(*labels)
        self._in_flight = ins.in_flight.labels(*labels)
        # Bind only the output histogram of this task, so no empty family is exposed.
        self._score = ins.score.labels(*labels) if self.task == "classification" else None
        self._value = ins.value.labels(*labels) if self.task == "regression" else None
        self._batches = ins.batches.labels(*labels)
        self._batch_latency = ins.batch_latency.labels(*labels)
        self._class_children: dict[Any, tuple[Counter, str]] = {}
        self._error_children: dict[type[BaseException] | str, Counter] = {}
        self._invalid_children: dict[str, Counter] = {}
        info = {"model": self.model, "model_version": self.model_version,
                "training_data_fingerprint": str(self._training_data_fingerprint)[:MAX_VALUE_LENGTH]}
        if self.role is not None:
            info["role"] = self.role
        for key, value in list(self._metadata.items())[:MAX_METADATA_LABELS]:
            info.setdefault(metadata_label_name(str(key)), str(value)[:MAX_VALUE_LENGTH])
        registered = ins.model_info.labels_of(self.model, self.model_version)
        if registered is not None and registered.get("role") != info.get("role"):
            raise ValueError(f"{self.model} {self.model_version} is declared with two roles on this registry: "
                             f"{registered.get('role') or 'none'} and {self.role or 'none'}")
        ins.model_info.register(self.model, self.model_version, info)
        self._log = (None if self._prediction_log is None
                     else self._prediction_log.bind(self.model, self.model_version, self.registry))

    @property
    def drift_enabled(self) -> bool:
        """Whether a reference profile is attached (features are then counted for drift)."""
        return self._drift is not None

    def for_version(self, model_version: str, **overrides: Any) -> ModelMonitor:
        """A monitor for another version of the same model (canary, shadow), same registry."""
        kwargs: dict[str, Any] = dict(task=self.task, registry=self.registry,
                                      training_data_fingerprint=self._training_data_fingerprint,
                                      metadata=self._metadata, quality=self.quality, classes=self.classes,
                                      prediction_log=self._prediction_log, tracing=self._tracing_option,
                                      **self._shadow_options)
        kwargs.update(overrides)
        return ModelMonitor(self.model, model_version, **kwargs)

    def retire(self) -> None:
        """The version no longer serves (a newer one replaced it): its ``mlscope_model_info``, drift series and
        serving series (predictions, errors, latency, classes, invalid inputs), shadow series (comparisons with its
        shadows) and attribution series go away, so dashboards stop listing
        it and ``ModelNoPredictions`` does not fire for it; ``mlscope_model_retired_info`` names it instead, so no
        per-version alert (drift, data quality, quality, version comparisons) judges it while its windows still
        hold its last requests (docs/versions.md)."""
        from .exposition import multiprocess_enabled

        self._instruments.retire(self.model, self.model_version, multiprocess=multiprocess_enabled())
        self.detach_profile()
        if self._attributions is not None:
            attribution_collector(self.registry, self.report_internal_error).detach(self._attributions)
            self._attributions = None
        if self._shadow is not None and not multiprocess_enabled():
            self._shadow.retire()

    # -- recording: single predictions ----------------------------------------------------------

    def track(self, request_id: str | None = None, *, data_batch_id: str | None = None) -> PredictionTracker:
        """Context manager timing one prediction; exceptions are recorded and re-raised.

        ``data_batch_id`` (optional) names the input data's batch on the span and the log line.
        """
        return PredictionTracker(self, request_id, data_batch_id)

    def instrument(self, func: F | None = None, *,
                   output: Callable[[Any], Any] | None = None) -> F | Callable[[F], F]:
        """Decorator form of :meth:`track` for sync and async functions.

        ``output`` maps the function's result to what is recorded as the output
        (class label or value); without it no output is recorded.
        """
        def decorate(fn: F) -> F:
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.track() as tracker:
                        result = await fn(*args, **kwargs)
                        if output is not None:
                            tracker.output = output(result)
                        return result
                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.track() as tracker:
                    result = fn(*args, **kwargs)
                    if output is not None:
                        tracker.output = output(result)
                    return result
            return wrapper  # type: ignore[return-value]

        return decorate(func) if func is not None else decorate

    def record_prediction(self, latency_seconds: float, *, output: Any = None, score: Any = None,
                          request_id: str | None = None, features: Any = None, proba: Any = None,
                          segment: Any = None, log_fields: Mapping[str, Any] | None = None,
                          data_batch_id: str | None = None, attributions: Any = None) -> str:
        """Record one prediction served elsewhere; returns its request id.

        With tracing on, its span ends now and began ``latency_seconds`` ago (a child of the active span).
        """
        request_id = new_request_id() if request_id is None else clean_request_id(request_id)
        batch_id = None if data_batch_id is None else clean_request_id(data_batch_id)
        span = self._start_span(request_id, batch_id, latency_seconds, current=False)
        self._exit(latency_seconds, request_id, None, output, score, features=features, proba=proba,
                   segment=segment, log_fields=log_fields, track_in_flight=False, span=span,
                   data_batch_id=batch_id, attributions=attributions)
        return request_id

    def shadow(self, request_id: str, *, version: str, prediction: Any) -> bool | None:
        """Compare a shadow version's answer (not served) with the served answer of the same request.

        Needs ``shadow_pending=``; the served prediction must be recorded first, under the same request id.
        Returns whether they agree, None when nothing was compared (counted as invalid: docs/versions.md).
        """
        try:
            if self._shadow is None:
                self._invalid("shadow_not_enabled")
                return None
            return self._shadow.shadow(clean_request_id(request_id), version, prediction)
        except Exception as exc:
            self._instruments.report_internal_error("shadow", exc)
            return None

    def record_outcome(self, request_id: str | int, y_true: Any, *, time: float | None = None) -> None:
        """Report the ground truth of an earlier prediction (needs ``quality=``); joined in the background."""
        if self.quality is None:
            self._invalid("outcome_without_quality")
            return
        try:
            self.quality.submit_outcome(request_id, y_true, time)  # the quality store normalises the id
        except Exception as exc:
            self._instruments.report_internal_error("record_outcome", exc)

    def record_error(self, error: BaseException | type[BaseException] | str, *,
                     latency_seconds: float | None = None, request_id: str | None = None,
                     log_fields: Mapping[str, Any] | None = None) -> None:
        """Record a failed prediction request (``error`` is an exception, its class or a name)."""
        try:
            self._predictions.inc()
            self._count_error(error)
            latency = None if latency_seconds is None else self._latency_value(latency_seconds)
            rid = new_request_id() if request_id is None else clean_request_id(request_id)
            span = self._start_span(rid, None, latency, current=False)
            ids, sampled = _tracing.span_ids(span)
            if latency is not None:
                self._latency.observe(latency, _exemplar(rid, ids))
            if self._log is not None:
                self._log.prediction(rid, latency, error_name(error), fields=log_fields, ids=ids, sampled=sampled)
            if span is not None:
                self._spans.finish(span, error, None)
        except Exception as exc:
            self._instruments.report_internal_error("record_error", exc)

    def record_request(self, request_id: str, *, error: BaseException | type[BaseException] | str | None = None,
                       stored_output: Any = None) -> None:
        """Count one request a domain recorder timed itself (the generation mode, :mod:`mlscope.genai`).

        It counts in ``mlscope_predictions_total`` (and ``mlscope_prediction_errors_total`` with ``error``), so
        traffic and error alerts cover it; no latency is observed (the domain has its own histograms). With
        ``quality=``, ``stored_output`` is stored under ``request_id`` for a later outcome. Never raises.
        """
        try:
            self._predictions.inc()
            if error is not None:
                self._count_error(error)
            elif stored_output is not None and self._quality_sink is not None:
                self._quality_sink.put(request_id, stored_output, None, None)
        except Exception as exc:
            self._instruments.report_internal_error("record_request", exc)

    # -- recording: batches ---------------------------------------------------------------------

    def record_batch(self, outputs: Any = None, *, latency_seconds: float | None = None,
                     scores: Any = None, rows: int | None = None, features: Any = None, request_ids: Any = None,
                     proba: Any = None, segments: Any = None, data_batch_id: str | None = None,
                     attributions: Any = None) -> None:
        """Record a batch prediction call: ``rows`` predictions (default ``len(outputs)``).

        Outputs and scores are counted with numpy, without a Python loop per row; so are
        ``features`` (data frame, mapping of columns or 2-D array) when a profile is attached.
        With ``quality=`` and ``request_ids``, each row is also stored for scoring; with ``shadow_pending=`` and
        ``request_ids``, each row's output waits for :meth:`shadow` as a single prediction's does. ``attributions``
        (one mapping feature -> attribution per row, or a mapping feature -> column, or a data frame) counts as
        each row's ``attributions=`` would. Features
        without outputs or ``rows`` (a feature job, a model scored later) count drift and data
        quality, and no prediction. With tracing on, the call is one span (``latency_seconds`` long).
        """
        try:
            if rows is None and outputs is None:
                if features is not None:
                    self._drift_batch(features, None, None)
                if features is None or any(x is not None for x in (latency_seconds, scores, request_ids, proba,
                                                                   segments)):
                    self._invalid("batch_without_rows")  # what needs a row count: nothing to count it by
                return
            if rows is None:
                rows = len(outputs)
            if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool) or rows < 0:
                self._invalid("batch_rows_invalid")
                return
            self._predictions.inc(int(rows))
            self._batches.inc()
            latency = None if latency_seconds is None else self._latency_value(latency_seconds)
            span = self._start_span(None, None if data_batch_id is None else clean_request_id(data_batch_id),
                                    latency, current=False, rows=int(rows))
            if span is not None:
                self._spans.finish(span, None, None)
            if latency is not None:
                self._batch_latency.observe(latency)
            if outputs is not None:
                if self.task == "classification":
                    self._count_classes_bulk(outputs)
                else:
                    self._observe_bulk(self._value, outputs, "value_not_finite")
            if scores is not None and self._score is not None:
                self._observe_bulk(self._score, scores, "score_not_finite")
            if self._drift is not None:
                self._drift_batch(features, outputs, scores)
            elif features is not None:
                self._invalid("no_reference_profile")
            if (self._quality_sink is not None and request_ids is not None and outputs is not None
                    and not self._quality_sink.put_many(request_ids, outputs, proba, segments)):
                self._invalid("batch_request_ids_mismatch")
            if self._shadow is not None and request_ids is not None and outputs is not None:
                self._shadow_batch(self._shadow, request_ids, outputs)
            if attributions is not None:
                self._attribute_batch(attributions, int(rows))
        except Exception as exc:
            self._instruments.report_internal_error("record_batch", exc)

    def _shadow_batch(self, shadow: ShadowAgreement, request_ids: Any, outputs: Any) -> None:
        ids, answers = list(request_ids), np.asarray(outputs).ravel().tolist()
        if len(ids) != len(answers):
            self._invalid("batch_request_ids_mismatch")
            return
        shadow.served_many(zip((clean_request_id(r) for r in ids), answers, strict=True))

    def _attribute_batch(self, attributions: Any, rows: int) -> None:
        """Each row's attributions: rows of mappings, or columns (a mapping or a data frame) of one per row."""
        try:
            if isinstance(attributions, Mapping) or hasattr(attributions, "columns"):
                names = list(attributions.keys() if isinstance(attributions, Mapping) else attributions.columns)
                columns = [np.asarray(attributions[n]).ravel() for n in names]
                if any(c.size != rows for c in columns):
                    self._invalid("batch_attributions_mismatch")
                    return
                per_row: list[Any] = [dict(zip(names, values, strict=True))
                                      for values in zip(*(c.tolist() for c in columns), strict=True)]
            else:
                per_row = list(attributions)
                if len(per_row) != rows:
                    self._invalid("batch_attributions_mismatch")
                    return
        except (TypeError, ValueError):
            self._invalid("attributions_wrong_type")
            return
        for row in per_row:
            self._attribute(row, top=False)

    # -- drift and data quality -------------------------------------------------------------------

    def attach_profile(self, profile: ReferenceProfile | str | Path, **options: Any) -> DriftTracker:
        """Track drift and data quality against a reference profile (object or JSON path).

        Options: ``schema`` (feature name -> "numeric"/"categorical" the model expects; a
        mismatch raises), ``series_budget`` (default 5,000 series per version), ``max_versions``
        (versions of this model publishing drift at once, default 3) and ``window_size`` (recent
        values per feature for the exact snapshot). Errors are raised here, at start-up. With
        ``quality=``, the profile's calibration (if it has one) calibrates the version's estimates.
        """
        from .drift.attach import attach

        self.detach_profile()
        tracker = self._drift = attach(self, profile, **options)
        self._attribution_tracker(tracker.profile)
        calibration = tracker.profile.calibration
        if self.quality is not None and calibration is not None:
            refused = self.quality.set_calibration(self.model, self.model_version, calibration)
            if refused is not None:
                logging.getLogger("mlscope").warning(
                    "mlscope: no estimated quality for %s %s (%s): %s", self.model, self.model_version, refused,
                    calibration.explain(refused, self.quality.max_calibration_error))
        return tracker

    def detach_profile(self) -> None:
        """Stop tracking drift (its series disappear from /metrics)."""
        if self._drift is not None:
            from .drift.attach import detach

            detach(self, self._drift)
            self._drift = None

    def record_features(self, row: Any) -> None:
        """Count one input row (mapping name -> value, or a sequence in the profile's order)."""
        if self._drift is None:
            self._invalid("no_reference_profile")
            return
        try:
            self._drift.record_row(row)
        except Exception as exc:
            self._instruments.report_internal_error("record_features", exc)

    def record_feature_batch(self, data: Any) -> None:
        """Count a batch of inputs: data frame, mapping of columns, or 2-D array in the profile's order."""
        self._drift_batch(data, None, None)

    def _attribution_tracker(self, profile: ReferenceProfile | None) -> AttributionTracker:
        """A new attribution tracker: the profile's features and reference attributions, or learned features."""
        collector = attribution_collector(self.registry, self.report_internal_error)
        if self._attributions is not None:
            collector.detach(self._attributions)
        tracker = self._attributions = AttributionTracker(
            self.model, self.model_version, features=None if profile is None else [f.name for f in profile.features],
            reference=None if profile is None else profile.attributions,
            window_s=self._shadow_options["attribution_window_s"], count_invalid=self._invalid)
        collector.attach(tracker)
        return tracker

    def _attribute(self, attributions: Any, top: bool = True) -> list[list[Any]] | None:
        """Count one prediction's attributions; returns its top ones for the log line (when a log is bound)."""
        try:
            tracker = self._attributions
            if tracker is None:
                tracker = self._attribution_tracker(None if self._drift is None else self._drift.profile)
            return tracker.record(attributions, top=top and self._log is not None)
        except Exception as exc:
            self._instruments.report_internal_error("attributions", exc)
            return None

    def _drift_batch(self, features: Any, outputs: Any, scores: Any) -> None:
        drift = self._drift
        if drift is None:
            self._invalid("no_reference_profile")
            return
        try:
            if features is not None:
                drift.record_batch(features)
            value = drift.output_of(self.task, outputs, scores)
            if value is not None:
                drift.record_outputs(value)
        except Exception as exc:
            self._instruments.report_internal_error("record_features", exc)

    # -- what the drift tracker and other recorders report through -------------------------------

    def count_invalid(self, reason: str, count: int = 1) -> None:
        """Count ``count`` inputs of this version that could not be used, in ``mlscope_invalid_inputs_total``."""
        self._invalid(reason, count)

    def report_internal_error(self, operation: str, exc: BaseException) -> None:
        """Count an exception raised while recording (``mlscope_monitor_errors_total``); never raises."""
        self._instruments.report_internal_error(operation, exc)

    # -- internals ------------------------------------------------------------------------------

    def _enter(self) -> None:
        try:
            self._in_flight.inc()
        except Exception as exc:
            self._instruments.report_internal_error("track", exc)

    def _start_span(self, request_id: str | None, data_batch_id: str | None, latency: Any = None, *,
                    current: bool = True, rows: int | None = None) -> _tracing.SpanHandle | None:
        """The prediction's (or batch's) span, or None when tracing is off; never raises."""
        try:
            return self._spans.start(request_id, data_batch_id, latency, current=current, rows=rows)
        except Exception as exc:
            self._instruments.report_internal_error("span", exc)
            return None

    def _exit(self, latency: Any, request_id: str, exc_type: type[BaseException] | None,
              output: Any, score: Any, *, features: Any = None, proba: Any = None, segment: Any = None,
              log_fields: Mapping[str, Any] | None = None, track_in_flight: bool = True,
              span: _tracing.SpanHandle | None = None, error: BaseException | None = None,
              data_batch_id: str | None = None, attributions: Any = None) -> None:
        predicted_class = None
        try:
            top = None if attributions is None else self._attribute(attributions)
            if track_in_flight:
                self._in_flight.dec()
            self._predictions.inc()
            latency = self._latency_value(latency)
            ids, sampled = _tracing.span_ids(span)
            # With a prediction log, only logged requests become exemplars: an exemplar always opens log lines;
            # it names the trace only when that trace is sampled, and a sampled prediction span is logged.
            logged = self._log is None or self._log.prediction(
                request_id, latency, None if exc_type is None else exc_type.__name__, output, score, log_fields,
                ids=ids, sampled=sampled, data_batch_id=data_batch_id, attributions=top)
            if latency is not None:
                self._latency.observe(latency, _exemplar(request_id, ids) if logged else None)
            if self._drift is not None:
                self._drift_row(self._drift, features, None if exc_type is not None else output, score)
            elif features is not None:
                self._invalid("no_reference_profile")
            if exc_type is not None:
                self._count_error(exc_type)
                return
            if output is not None:
                predicted_class = self._count_output(output)
                if self._quality_sink is not None:
                    self._quality_sink.put(request_id, output, proba, segment)
                if self._shadow is not None:
                    self._shadow.served(request_id, output)
            if score is not None and self._score is not None:
                self._observe_one(self._score, score, "score_not_finite")
        except Exception as exc:
            self._instruments.report_internal_error("record_prediction", exc)
        finally:
            if span is not None:
                try:
                    self._spans.finish(span, error if error is not None else exc_type, predicted_class)
                except Exception as exc:
                    self._instruments.report_internal_error("span", exc)

    def _drift_row(self, drift: DriftTracker, features: Any, output: Any, score: Any) -> None:
        try:
            if features is not None:
                drift.record_row(features)
            value = drift.output_of(self.task, output, score)
            if value is not None:
                drift.record_output(value)
        except Exception as exc:
            self._instruments.report_internal_error("record_features", exc)

    def _latency_value(self, latency: Any) -> float | None:
        """``latency`` as seconds, or None (counted as invalid) when it is not a finite number >= 0."""
        if type(latency) is float:  # the hot path: perf_counter differences
            if 0.0 <= latency < math.inf:
                return latency
            self._invalid("latency_not_finite_or_negative")
            return None
        if isinstance(latency, bool):
            self._invalid("latency_wrong_type")
            return None
        try:
            value = float(latency)
        except (TypeError, ValueError):
            self._invalid("latency_wrong_type")
            return None
        return self._latency_value(value)

    def _count_output(self, output: Any) -> str | None:
        """Count one output; returns the class label as counted (capped), or None."""
        if self.task == "regression":
            self._observe_one(self._value, output, "value_not_finite")
            return None
        found = self._class_children.get(output) if _hashable(output) else None
        if found is None:
            found = self._class_child(output)
        if found is None:
            return None
        found[0].inc()
        return found[1]

    def _class_child(self, output: Any) -> tuple[Counter, str] | None:
        """The counter child for a class label and the label, or None (counted as invalid) for an unusable one."""
        label = output
        if isinstance(label, np.ndarray) and label.size == 1:
            label = label.ravel()[0]
        if isinstance(label, np.generic):
            label = label.item()
        if isinstance(label, float) and not math.isfinite(label):
            self._invalid("class_not_finite")
            return None
        admitted = self._instruments.guard.admit("class", label)
        found = (self._instruments.classes.labels(self.model, self.model_version, admitted), admitted)
        if _hashable(output) and len(self._class_children) < 4 * self._instruments.guard.cap("class"):
            self._class_children[output] = found
        return found

    def _observe_one(self, child: Histogram | None, value: Any, reason: str) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self._invalid(reason.replace("not_finite", "wrong_type"))
            return
        if math.isfinite(number):
            if child is not None:
                child.observe(number)
        else:
            self._invalid(reason)

    def _count_classes_bulk(self, outputs: Any) -> None:
        values, counts = np.unique(np.asarray(outputs), return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            found = self._class_child(value)
            if found is not None:
                found[0].inc(count)

    def _observe_bulk(self, child: Histogram | None, values: Any, reason: str) -> None:
        try:
            array = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            self._invalid(reason.replace("not_finite", "wrong_type"))
            return
        finite = np.isfinite(array)
        bad = int(array.size - np.count_nonzero(finite))
        if bad:
            self._invalid(reason, bad)
            array = array[finite]
        if array.size and child is not None:
            add_to_histogram(child, array)

    def _count_error(self, error: BaseException | type[BaseException] | str) -> None:
        key = error if isinstance(error, (type, str)) else type(error)
        child = self._error_children.get(key)
        if child is None:
            name = error_name(key)
            child = self._instruments.errors.labels(
                self.model, self.model_version, self._instruments.guard.admit("error_type", name))
            self._error_children[key] = child
        child.inc()

    def _invalid(self, reason: str, count: int = 1) -> None:
        child = self._invalid_children.get(reason)
        if child is None:
            child = self._instruments.invalid.labels(self.model, self.model_version, reason)
            self._invalid_children[reason] = child
        child.inc(count)


def _declared_role(model: str, model_version: str, role: str | None, metadata: Mapping[str, object]) -> str | None:
    """The version's role from ``role=`` and/or a ``role`` metadata key; a ValueError when it is not one of
    the roles, or when the two disagree."""
    given = {str(r) for r in (role, metadata.get("role")) if r is not None}
    if len(given) > 1:
        raise ValueError(f"{model} {model_version} is declared with two roles: {' and '.join(sorted(given))}")
    if given and not given <= set(ROLES):
        raise ValueError(f"{model} {model_version}: role {given.pop()!r} is not one of {ROLES}")
    return given.pop() if given else None


def error_name(error: BaseException | type[BaseException] | str) -> str:
    """The name an error is counted under: the string itself, or the exception's class name."""
    if isinstance(error, str):
        return error
    return (error if isinstance(error, type) else type(error)).__name__


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True

