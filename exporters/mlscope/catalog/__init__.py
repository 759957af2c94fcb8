"""THE catalog: every metric and recorded series mlscope publishes.

Exporters create their metrics from these specs, the rule generator and the
dashboards take names from them, and a test fails when any name used anywhere
is missing here. Each domain keeps its specs in its own module; this package
collects them so there is exactly one place to look a name up.
"""
from __future__ import annotations

from . import (
    alerting,
    anomaly,
    drift,
    genai,
    logs,
    modelservers,
    pipelines,
    quality,
    resources,
    serving,
    tracing,
    versions,
)
from .spec import PREFIX, AnyMetricSpec, CounterSpec, GaugeSpec, HistogramSpec, MetricKind, MetricSpec, RecordedSpec

_DOMAINS = (serving, alerting, resources, drift, quality, logs, pipelines, tracing, versions, genai, modelservers,
            anomaly)
METRICS: tuple[AnyMetricSpec, ...] = tuple(m for d in _DOMAINS for m in d.METRICS)
RECORDED: tuple[RecordedSpec, ...] = tuple(r for d in _DOMAINS for r in d.RECORDED)

BY_NAME: dict[str, AnyMetricSpec | RecordedSpec] = {spec.name: spec for spec in METRICS + RECORDED}
if len(BY_NAME) != len(METRICS) + len(RECORDED):
    raise RuntimeError("duplicate name in the mlscope catalog")

SERIES_NAMES: frozenset[str] = frozenset().union(*(spec.series_names for spec in BY_NAME.values()))
_SPEC_OF_SERIES: dict[str, AnyMetricSpec | RecordedSpec] = {
    series: spec for spec in BY_NAME.values() for series in spec.series_names}

# Series that other servers publish and that our rules and dashboards may use.
FOREIGN_NAMES: frozenset[str] = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_samples_scraped",
                                           "scrape_duration_seconds", "scrape_series_added",
                                           # the Pushgateway's own series of each pushed group
                                           "push_time_seconds", "push_failure_time_seconds"}
                                          ) | modelservers.SERVER_SERIES_NAMES  # vLLM's and SGLang's, read by name
# Series of the stack's servers; traces_spanmetrics_ and traces_service_graph_ are what Tempo's
# metrics-generator writes into Prometheus (the Tempo datasource's trace -> metrics queries and service map).
FOREIGN_PREFIXES: tuple[str, ...] = ("prometheus_", "alertmanager_", "loki_", "grafana_", "process_", "python_",
                                     "tempo_", "traces_spanmetrics_", "traces_service_graph_")


def is_known(name: str, *, family_names: bool = False) -> bool:
    """Whether ``name`` is a series of the catalog or an allow-listed foreign series.

    With ``family_names``, a histogram's family name (without ``_bucket``...)
    counts too: code refers to families, PromQL to series.
    """
    if family_names and name in BY_NAME:
        return True
    return name in SERIES_NAMES or name in FOREIGN_NAMES or name.startswith(FOREIGN_PREFIXES)


def spec_of(series: str) -> AnyMetricSpec | RecordedSpec:
    """The spec that produces an exposed or recorded series name (KeyError if none)."""
    return _SPEC_OF_SERIES[series]


__all__ = ["PREFIX", "MetricSpec", "MetricKind", "AnyMetricSpec", "CounterSpec", "GaugeSpec", "HistogramSpec",
           "RecordedSpec", "METRICS", "RECORDED", "BY_NAME", "SERIES_NAMES",
           "FOREIGN_NAMES", "is_known", "spec_of", "serving", "resources", "drift", "quality", "logs", "pipelines",
           "tracing", "versions", "genai", "modelservers", "anomaly"]
