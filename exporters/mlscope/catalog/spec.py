"""Metric and recorded-series specifications: the vocabulary of the catalog."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar, overload

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "mlscope_"
MetricKind = Literal["counter", "gauge", "histogram"]
Kind = TypeVar("Kind", bound=MetricKind, covariant=True)
GaugeMode = Literal["all", "liveall", "min", "max", "sum", "livesum", "mostrecent", "livemostrecent"]

_UNIT_SUFFIXES = ("seconds", "bytes", "ratio", "celsius", "watts", "hertz", "joules", "info")


def exposed_series(name: str, kind: MetricKind) -> frozenset[str]:
    """Every series name a family of ``kind`` named ``name`` (counters: with ``_total``) produces in an exposition."""
    if kind == "histogram":
        return frozenset({f"{name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")})
    if kind == "counter":
        return frozenset({name, name.removesuffix("_total") + "_created"})
    return frozenset({name})


@dataclass(frozen=True)
class MetricSpec(Generic[Kind]):
    """One metric family published by an mlscope exporter.

    ``name`` is the family name as exposed in the text format (counters end in
    ``_total``). ``unit`` is the base unit the name ends with, or ``""`` for
    dimensionless counts. The spec is generic in its kind, so that
    ``MetricSpec("..._total", "counter", ...)`` is a ``MetricSpec[Literal["counter"]]``
    whose ``create()`` returns a ``Counter``.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    unit: str = ""
    buckets: tuple[float, ...] | None = None
    multiprocess_mode: GaugeMode = "livesum"
    #: The OpenTelemetry semantic-conventions metric this family maps one to one onto ("" when none does).
    otel_name: str = ""

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"{self.name}: catalog metrics start with {PREFIX!r}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")
        if self.unit and not self.name.removesuffix("_total").endswith("_" + self.unit):
            raise ValueError(f"{self.name}: name must end with its unit {self.unit!r}")
        if self.unit and self.unit not in _UNIT_SUFFIXES:
            raise ValueError(f"{self.name}: {self.unit!r} is not a base unit")
        if self.buckets is not None and self.kind != "histogram":
            raise ValueError(f"{self.name}: only histograms have buckets")

    @property
    def series_names(self) -> frozenset[str]:
        """Every series name this family produces in an exposition."""
        return exposed_series(self.name, self.kind)

    @overload
    def create(self: CounterSpec, registry: CollectorRegistry | None) -> Counter: ...
    @overload
    def create(self: GaugeSpec, registry: CollectorRegistry | None) -> Gauge: ...
    @overload
    def create(self: HistogramSpec, registry: CollectorRegistry | None,
               buckets: tuple[float, ...] | None = None) -> Histogram: ...
    @overload
    def create(self: AnyMetricSpec, registry: CollectorRegistry | None) -> Counter | Gauge | Histogram: ...

    def create(self, registry: CollectorRegistry | None,
               buckets: tuple[float, ...] | None = None) -> Counter | Gauge | Histogram:
        """Instantiate the prometheus-client metric for this spec in ``registry``.

        ``buckets`` (histograms only) overrides the spec's own buckets, else the client's default ones.
        """
        if self.kind == "counter":
            return Counter(self.name, self.help, self.labels, registry=registry)
        if self.kind == "gauge":
            return Gauge(self.name, self.help, self.labels, registry=registry,
                         multiprocess_mode=self.multiprocess_mode)
        return Histogram(self.name, self.help, self.labels, registry=registry,
                         buckets=buckets or self.buckets or Histogram.DEFAULT_BUCKETS)


CounterSpec = MetricSpec[Literal["counter"]]
GaugeSpec = MetricSpec[Literal["gauge"]]
HistogramSpec = MetricSpec[Literal["histogram"]]
#: A spec of any kind: annotate collections of specs with this, not the bare ``MetricSpec``.
AnyMetricSpec = MetricSpec[MetricKind]


@dataclass(frozen=True)
class RecordedSpec:
    """A series produced by a Prometheus recording rule (``level:metric:operations``)."""

    name: str
    help: str
    labels: tuple[str, ...] = field(default=("model", "model_version"))

    def __post_init__(self) -> None:
        parts = self.name.split(":")
        if len(parts) != 3 or not all(parts) or PREFIX not in parts[1]:
            raise ValueError(f"{self.name}: recorded series are named level:mlscope_metric:operations")

    @property
    def series_names(self) -> frozenset[str]:
        return frozenset({self.name})


# Help text of the warm-up guard's recorded state (mlscope.rules.builders.warm_up), at each level.
WARM_HELP = ("1 when the window holds enough data for the {domain} alerts to read it (the warm-up guard: a minimum "
             "count, and series as old as the window where it matters), 0 while it warms up; by domain and window.")
