"""Per-registry instruments shared by every monitor that writes to the same registry."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ._promclient import PerRegistry, remove_matching
from .catalog import serving as cat
from .labels import LabelGuard

log = logging.getLogger("mlscope")

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
MAX_METADATA_LABELS = 10


def metadata_label_name(key: str) -> str:
    """Turn a user metadata key into a valid Prometheus label name."""
    name = _LABEL_NAME.sub("_", key.strip()) or "_"
    if name[0].isdigit():
        name = "_" + name
    if name.startswith("__"):
        name = "meta" + name
    return name


class ModelInfoCollector(Collector):
    """Exposes ``mlscope_model_info`` (always 1) for every registered model version.

    A custom collector because each version may carry its own metadata label
    set; the information is static, so it also works beside a
    ``MultiProcessCollector`` (every worker registers the same versions).
    """

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], dict[str, str]] = {}
        self._retired: set[tuple[str, str]] = set()

    def register(self, model: str, version: str, labels: Mapping[str, str]) -> None:
        self._versions[(model, version)] = dict(labels)
        self._retired.discard((model, version))

    def unregister(self, model: str, version: str) -> None:
        """Stop exposing the version (it was retired: it no longer serves)."""
        self._versions.pop((model, version), None)

    def retire(self, model: str, version: str) -> None:
        """Stop exposing the version's ``mlscope_model_info``; expose ``mlscope_model_retired_info`` for it instead
        (the rules' per-version alerts skip it while its windows still hold its last requests)."""
        self.unregister(model, version)
        self._retired.add((model, version))

    def labels_of(self, model: str, version: str) -> dict[str, str] | None:
        """The labels a version was registered with, None if it was not."""
        found = self._versions.get((model, version))
        return None if found is None else dict(found)

    def versions(self) -> list[tuple[str, str]]:
        """The registered (model, model_version) pairs."""
        return list(self._versions)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(cat.MODEL_INFO.name, cat.MODEL_INFO.help)
        for labels in list(self._versions.values()):
            family.add_sample(cat.MODEL_INFO.name, labels, 1.0)
        yield family
        retired = GaugeMetricFamily(cat.MODEL_RETIRED.name, cat.MODEL_RETIRED.help, labels=cat.MODEL_RETIRED.labels)
        for model, version in sorted(self._retired):
            retired.add_metric([model, version], 1.0)
        yield retired


class Instruments:
    """The metrics of the catalog's serving group, created once per registry."""

    def __init__(self, registry: CollectorRegistry, label_caps: Mapping[str, int] | None = None,
                 latency_buckets: tuple[float, ...] | None = None,
                 value_buckets: tuple[float, ...] | None = None) -> None:
        self.registry = registry
        self.latency_buckets = tuple(latency_buckets or cat.LATENCY_BUCKETS)
        self.value_buckets = tuple(value_buckets or cat.VALUE_BUCKETS)
        self.predictions = cat.PREDICTIONS.create(registry)
        self.errors = cat.PREDICTION_ERRORS.create(registry)
        self.latency = cat.PREDICTION_LATENCY.create(registry, self.latency_buckets)
        self.in_flight = cat.PREDICTIONS_IN_FLIGHT.create(registry)
        self.classes = cat.PREDICTED_CLASSES.create(registry)
        self.score = cat.PREDICTION_SCORE.create(registry)
        self.value = cat.PREDICTION_VALUE.create(registry, self.value_buckets)
        self.batches = cat.BATCHES.create(registry)
        self.batch_latency = cat.BATCH_LATENCY.create(registry)
        self.invalid = cat.INVALID_INPUTS.create(registry)
        self.monitor_errors = cat.MONITOR_ERRORS.create(registry)
        self.label_overflow = cat.LABEL_OVERFLOW.create(registry)
        self.model_info = ModelInfoCollector()
        registry.register(self.model_info)
        self.guard = LabelGuard(label_caps, on_fold=self._count_fold)
        self._reported: set[tuple[str, str]] = set()
        self._report_lock = threading.Lock()

    def retire(self, model: str, version: str, *, multiprocess: bool) -> None:
        """The version no longer serves: ``mlscope_model_retired_info`` in place of its ``mlscope_model_info``, and
        its serving series removed from the registry (not in multiprocess mode: prometheus-client cannot remove
        a worker's series there; the rules skip retired versions all the same)."""
        self.model_info.retire(model, version)
        if multiprocess:
            return
        for metric in (self.predictions, self.errors, self.latency, self.in_flight, self.classes, self.score,
                       self.value, self.batches, self.batch_latency, self.invalid):
            remove_matching(metric, {"model": model, "model_version": version})

    def _count_fold(self, label: str, reason: str) -> None:
        self.label_overflow.labels(label, reason).inc()

    def report_internal_error(self, operation: str, exc: BaseException) -> None:
        """Count an exception raised inside the monitor; log it once per kind. Never raises."""
        kind = type(exc).__name__
        try:
            self.monitor_errors.labels(operation, self.guard.admit("exception", kind)).inc()
            with self._report_lock:
                first = (operation, kind) not in self._reported
                self._reported.add((operation, kind))
            if first:
                log.warning("mlscope: %s failed with %s: %s (counted in %s; reported once per kind)",
                            operation, kind, exc, cat.MONITOR_ERRORS.name)
        except Exception:  # the monitor must never take the service down
            pass


_instruments: PerRegistry[Instruments] = PerRegistry()


def instruments_for(registry: CollectorRegistry | None = None, *,
                    label_caps: Mapping[str, int] | None = None,
                    latency_buckets: tuple[float, ...] | None = None,
                    value_buckets: tuple[float, ...] | None = None) -> Instruments:
    """Return the registry's instruments, creating them on first use.

    Buckets are fixed per registry: asking for other buckets than the ones
    already in use is an error, because one metric family has one bucket set.
    Label caps are per registry too: later ``label_caps`` update them.
    """
    found = _instruments.get(registry, lambda r: Instruments(r, label_caps, latency_buckets, value_buckets))
    for name, asked, used in (("latency_buckets", latency_buckets, found.latency_buckets),
                              ("value_buckets", value_buckets, found.value_buckets)):
        if asked is not None and tuple(asked) != used:
            raise ValueError(f"{name}={tuple(asked)} differs from {used} already used in this registry; "
                             "one metric family has one bucket set: pass the same buckets to every monitor")
    if label_caps:
        found.guard.set_caps(label_caps)
    return found


def registered_versions(registry: CollectorRegistry | None = None) -> list[tuple[str, str]]:
    """(model, model_version) of every monitor writing to ``registry``, without creating instruments."""
    found = _instruments.find(registry)
    return found.model_info.versions() if found is not None else []
