"""The quality object: one per process that holds a store, composed of the parts that do the work.

- :mod:`.versions`: the model versions (task, classes, baseline);
- :mod:`.join`: storing predictions and joining outcomes with them (the request id is normalised there);
- :mod:`.held`: outcomes that arrived before their prediction;
- :mod:`.writer`: the bounded queue and background thread the monitor writes through;
- :mod:`.collector`: the metrics read from the store at scrape time.

Predictions and outcomes handed over by a :class:`~mlscope.ModelMonitor` go
through the writer; outcomes posted to the quality exporter or imported from a
file are joined synchronously with :meth:`Quality.record_outcomes`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from ..catalog import quality as cat
from ..drift.score_calibration import Calibration
from ..labels import LabelGuard
from ..rules.config import Thresholds
from . import scoring
from .accounting import Accounting
from .collector import QualityCollector
from .held import HeldOutcomes
from .items import Outcome, PredictionItem
from .join import Joiner, Summary
from .store import Store, VersionInfo, open_store
from .versions import Versions
from .writer import Sink, Writer

DEFAULT_WINDOWS_S = {"1h": 3600.0, "1d": 86400.0}


class Quality:
    """Joins late ground truth with stored predictions and exposes the quality counters.

    ``store`` is a :class:`Store`, a path to a SQLite file, or None for memory.
    ``expose`` registers the collector of quality metrics in ``registry``: set
    it in exactly one process per store (the quality exporter, or the service
    itself when it owns the store), so Prometheus does not count pairs twice.
    ``windows`` ({name: seconds}) are the ROC AUC windows; ``pending_ttl_s`` is
    how long an outcome waits for its prediction before it counts as
    ``unknown_request``. ``max_calibration_error`` (default: the rule configuration's
    ``thresholds.calibration_max_error``) is the held-out calibration error above which a
    version's estimates are refused.
    """

    def __init__(self, store: Store | str | Path | None = None, *, registry: CollectorRegistry | None = None,
                 expose: bool = True, windows: Mapping[str, float] | None = None,
                 pending_ttl_s: float = 300.0, max_pending: int = 100_000, queue_size: int = 100_000,
                 label_caps: Mapping[str, int] | None = None, flush_interval_s: float = 0.05,
                 maintenance_interval_s: float = 1.0, max_retries: int = 3, start: bool = True,
                 max_calibration_error: float | None = None) -> None:
        self.store: Store = store if isinstance(store, Store) else open_store(store)
        self.windows = dict(windows or DEFAULT_WINDOWS_S)
        self.registry = registry if registry is not None else REGISTRY
        self.accounting = Accounting(self.registry)
        self.guard = LabelGuard({"class": 50, "segment": 20, **(label_caps or {})},
                                on_fold=self.accounting.count_fold)
        self.versions = Versions(self.store, self.guard, self.accounting.report)
        self.held = HeldOutcomes(pending_ttl_s, max_pending)
        self.max_calibration_error = (Thresholds.calibration_max_error if max_calibration_error is None
                                      else float(max_calibration_error))
        self.joiner = Joiner(self.store, self.versions, self.guard, self.held, self.accounting,
                             self.max_calibration_error)
        self.writer = Writer(self.joiner, self.accounting, self.maintain, queue_size=queue_size,
                             flush_interval_s=flush_interval_s, maintenance_interval_s=maintenance_interval_s,
                             max_retries=max_retries)
        self.collector = QualityCollector(self)
        if expose:
            self.registry.register(self.collector)
        try:
            self.joiner.store_size = self.store.size()
            self.collector.snapshot()  # the start of the ROC AUC windows
        except Exception as exc:
            self.accounting.report(exc)
        if start:
            self.start()

    # -- versions ---------------------------------------------------------------------------------

    def register(self, model: str, model_version: str, task: str = "classification",
                 classes: Sequence[Any] | None = None) -> VersionInfo:
        """Declare a version (its task and, for classifiers, its classes in ``predict_proba`` order).

        With ``classes``, every counter of the version exists from 0 (exact
        windows from the first pair) and outcomes of other classes are
        rejected as ``unknown_class``.
        """
        return self.versions.register(model, model_version, task, classes)

    def set_baseline(self, model: str, model_version: str, metrics: Mapping[str, float]) -> None:
        """Publish the version's quality on validation data (see ``scoring.baseline_metrics``)."""
        self.versions.set_baseline(model, model_version, metrics)

    def set_calibration(self, model: str, model_version: str, calibration: Calibration | None) -> str | None:
        """Estimate the version from probabilities calibrated by ``calibration`` (from its reference profile).

        Returns why its estimates are refused (the reference cannot calibrate the model: the
        calibration's ``detail`` says why and what to do), or None. Refused predictions are counted in
        ``mlscope_quality_estimates_refused_total{reason}``, which starts at 0 here.
        """
        info = self.versions.set_calibration(model, model_version, calibration)
        reason = scoring.estimate_refusal(info, self.max_calibration_error)
        if reason is not None:
            try:
                self.store.add({(cat.ESTIMATES_REFUSED.name, (model, model_version, "", reason)): 0.0})
            except Exception as exc:
                self.accounting.report(exc)
        return reason

    def version(self, model: str, model_version: str) -> VersionInfo | None:
        """The declared version (here or by another process sharing the store), or None if unknown."""
        return self.versions.get(model, model_version)

    def sink(self, model: str, model_version: str, task: str = "classification",
             classes: Sequence[Any] | None = None) -> Sink:
        """The handle a monitor stores predictions through; a failing store only delays registration."""
        self.versions.declare(model, model_version, task, classes)
        return Sink(self.writer, (model, model_version))

    # -- predictions and outcomes -----------------------------------------------------------------

    def store_predictions(self, items: Iterable[PredictionItem]) -> int:
        """Store predictions in one transaction, now; returns how many were stored.

        The others are counted in ``mlscope_quality_dropped_total`` (an
        unknown version as ``unknown_version``, an unusable request id as
        ``invalid_request_id``...). Raises StoreError when the store fails.
        """
        return self.joiner.store_predictions(items)

    def submit_outcome(self, request_id: Any, y_true: Any, at: float | None = None) -> None:
        """Queue an outcome for the background thread (never blocks, never raises)."""
        self.writer.put_outcome(Outcome(request_id, y_true, at))

    def record_outcome(self, request_id: Any, y_true: Any, at: float | None = None) -> Summary:
        return self.record_outcomes([Outcome(request_id, y_true, at)])

    def record_outcomes(self, outcomes: Iterable[Outcome], *, hold: bool = True,
                        now: float | None = None) -> Summary:
        """Join outcomes now; returns counts by result (joined, pending, or the rejection reason).

        Outcomes whose prediction is not stored yet are held (``hold``) for
        ``pending_ttl_s``; without ``hold`` they count as unknown at once.
        Raises StoreError when the store fails (nothing is counted then).
        """
        return self.joiner.record_outcomes(outcomes, hold=hold, now=now)

    @property
    def pending(self) -> int:
        """Outcomes held until their prediction is stored."""
        return len(self.held)

    @property
    def store_size(self) -> int:
        return self.joiner.store_size

    @property
    def max_retries(self) -> int:
        return self.writer.max_retries

    # -- background work --------------------------------------------------------------------------

    def start(self) -> Quality:
        self.writer.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the thread and close the store."""
        self.flush(timeout)
        self.writer.stop(timeout)
        self.store.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        return self.writer.flush(timeout)

    def process_queue(self, max_items: int = 10_000) -> None:
        """Write queued predictions and outcomes in order, in batches; retry failed batches."""
        self.writer.process_queue(max_items)

    def maintain(self) -> None:
        """Purge old predictions, retry held outcomes, snapshot scores for windowed ROC AUC."""
        try:
            self.versions.save_unsaved()
            self.store.purge()
            self.joiner.store_size = self.store.size()
            self.joiner.retry_held()
            self.collector.snapshot()
        except Exception as exc:
            self.accounting.report(exc)

    def report_error(self, exc: BaseException) -> None:
        """Log an error of the quality side once per kind (later ones are only counted)."""
        self.accounting.report(exc)
