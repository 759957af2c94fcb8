"""Grafana Tempo 3.0's configuration, as far as mlscope's Tempo configurations use it.

Tempo does not run here (nor in CI): the compose and native configurations are checked against this tree.
``KEYS`` is a dict per block, ``ANY`` a value; a key outside it is one mlscope has no source for in 3.0, and
Tempo refuses an unknown key at start-up ("field ... not found in type app.Config"). Sources, by block:

- the top level (``target``, ``stream_over_http_enabled``, ``multitenancy_enabled``, ``usage_report``),
  ``server``, ``distributor.receivers``, ``storage.trace``, ``metrics_generator`` and ``overrides``: the Tempo
  3.0 Helm chart's configuration template (grafana-community/helm-charts ``charts/tempo/values.yaml``, chart
  3.0.0, appVersion 3.0.3, "Run Tempo 3.0 in monolithic mode", PR 764) and Tempo's manifest
  (``docs/sources/tempo/configuration/manifest.md``: ``server`` is dskit's);
- ``live_store``: ``modules/livestore/config.go`` of grafana/tempo (defaults ``/var/tempo/live-store/...``);
- ``backend_scheduler`` and ``backend_worker``: ``modules/backendscheduler/provider/compaction.go``
  (``provider.compaction.compaction`` is tempodb's CompactorConfig), ``modules/backendworker/config.go``
  (``compaction``), and the chart, which renders retention into
  ``backend_scheduler.provider.compaction.compaction.block_retention``. ``backend_scheduler.local_work_path`` is
  the one key taken from Tempo 3 users' configurations rather than a document;
- ``memberlist``: dskit's memberlist block (the chart sets ``cluster_label``).

``REMOVED`` are the 2.x blocks Tempo 3.0 no longer has ("Upgrade to Tempo 3.0",
grafana.com/docs/tempo/v3.0.x/set-up-for-tracing/setup-tempo/upgrade/).
"""
from __future__ import annotations

from typing import Any

from .loki_reference import ANY, keys

_COMPACTION = keys("block_retention", "compacted_block_retention", "compaction_window", "max_block_bytes",
                   "max_compaction_objects", "retention_concurrency")
_ENDPOINT = {"endpoint": ANY}

KEYS: dict[str, Any] = {
    "target": ANY,
    "stream_over_http_enabled": ANY,
    "multitenancy_enabled": ANY,
    "usage_report": {"reporting_enabled": ANY},
    "server": keys("http_listen_network", "http_listen_address", "http_listen_port", "grpc_listen_network",
                   "grpc_listen_address", "grpc_listen_port", "log_level", "log_format", "http_path_prefix",
                   "graceful_shutdown_timeout"),
    "memberlist": keys("bind_addr", "bind_port", "join_members", "cluster_label", "advertise_addr",
                       "advertise_port"),
    "distributor": {"receivers": {"otlp": {"protocols": {"grpc": _ENDPOINT, "http": _ENDPOINT}}}},
    "live_store": {"wal": {"path": ANY}, "shutdown_marker_dir": ANY, "max_block_duration": ANY,
                   "max_block_bytes": ANY, "complete_block_timeout": ANY, "max_trace_idle": ANY,
                   "max_trace_live": ANY},
    "backend_scheduler": {"local_work_path": ANY, "maintenance_interval": ANY,
                          "provider": {"compaction": {"compaction": _COMPACTION, "measure_interval": ANY,
                                                      "max_jobs_per_tenant": ANY, "min_input_blocks": ANY,
                                                      "max_input_blocks": ANY},
                                       "retention": {"interval": ANY}}},
    "backend_worker": {"backend_scheduler_addr": ANY, "compaction": _COMPACTION},
    "metrics_generator": {"registry": keys("external_labels", "collection_interval"),
                          "storage": {"path": ANY, "remote_write": [keys("url", "send_exemplars", "headers")]},
                          "processor": {"service_graphs": ANY, "span_metrics": ANY}},
    "storage": {"trace": {"backend": ANY, "wal": {"path": ANY}, "local": {"path": ANY},
                          "s3": keys("bucket", "endpoint", "region", "access_key", "secret_key", "insecure",
                                     "forcepathstyle")}},
    "overrides": {"defaults": {"metrics_generator": keys("processors", "generate_native_histograms")}},
}

REMOVED = frozenset({"ingester", "ingester_client", "compactor", "metrics_generator_client"})
# The generator processors Tempo 3.0 has (the chart: "Tempo 3.0 supports service-graphs, span-metrics and
# host-info only"; `local-blocks` is gone).
PROCESSORS = frozenset({"service-graphs", "span-metrics", "host-info"})
# Where the image keeps its data (grafana/tempo's Dockerfile: /var/tempo, owned by the tempo user 10001).
VOLUME = "/var/tempo"
