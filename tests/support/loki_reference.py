"""Loki's configuration reference, as far as mlscope's Loki configurations use it.

Source: Grafana Loki's configuration reference, ``docs/sources/shared/configuration.md`` of grafana/loki
(read at commit 002ee222b2bb, the reference after release 3.7: the keys of the blocks below are the same in
3.8). ``KEYS`` is the tree of the keys mlscope may set: a dict is a block, ``ANY`` a value (scalar, list, or a
map Loki does not constrain); a key outside the tree is a key Loki does not document, which Loki refuses at
start-up. ``PATHS`` are the keys of that reference that name a local file or folder, with their documented
default (relative ones resolve against Loki's working directory).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

ANY = None


def keys(*names: str) -> dict[str, Any]:
    """A block whose keys take any value."""
    return dict.fromkeys(names, ANY)


_RING = {"kvstore": {"store": ANY, "prefix": ANY}, "instance_addr": ANY, "heartbeat_timeout": ANY,
         "heartbeat_period": ANY, "replication_factor": ANY, "instance_interface_names": ANY}
_S3 = keys("s3", "s3forcepathstyle", "bucketnames", "endpoint", "region", "access_key_id", "secret_access_key",
           "session_token", "insecure", "chunk_delimiter", "signature_version", "storage_class",
           "disable_dualstack")
_THANOS_FILESYSTEM = {"filesystem": {"dir": ANY}}  # thanos_object_store_config (its other backends unused)

KEYS: dict[str, Any] = {
    "auth_enabled": ANY,
    "target": ANY,
    "server": keys("http_listen_network", "http_listen_address", "http_listen_port", "grpc_listen_network",
                   "grpc_listen_address", "grpc_listen_port", "log_level", "log_format", "http_path_prefix",
                   "graceful_shutdown_timeout"),
    "memberlist": keys("node_name", "join_members", "bind_addr", "bind_port", "advertise_addr", "advertise_port",
                       "cluster_label"),
    "common": {
        "path_prefix": ANY, "replication_factor": ANY, "persist_tokens": ANY, "instance_addr": ANY,
        "instance_interface_names": ANY, "compactor_address": ANY, "compactor_grpc_address": ANY,
        "scratch_path": ANY, "ring": _RING,
        "storage": {"filesystem": {"chunks_directory": ANY, "rules_directory": ANY}, "s3": _S3,
                    "object_store": _THANOS_FILESYSTEM},
    },
    "storage_config": {
        "filesystem": {"directory": ANY}, "aws": _S3, "use_thanos_objstore": ANY, "object_prefix": ANY,
        "object_store": _THANOS_FILESYSTEM,
        "tsdb_shipper": {"active_index_directory": ANY, "cache_location": ANY, "cache_ttl": ANY,
                         "resync_interval": ANY},
        "boltdb_shipper": {"active_index_directory": ANY, "cache_location": ANY},
        "bloom_shipper": {"working_directory": ANY},
    },
    "ingester": {"wal": {"enabled": ANY, "dir": ANY, "flush_on_shutdown": ANY, "checkpoint_duration": ANY,
                         "replay_memory_ceiling": ANY},
                 "shutdown_marker_path": ANY, "chunk_idle_period": ANY, "max_chunk_age": ANY,
                 "chunk_target_size": ANY, "chunk_encoding": ANY},
    "ruler": {"rule_path": ANY, "wal": {"dir": ANY}, "alertmanager_url": ANY, "enable_api": ANY,
              "storage": {"type": ANY, "local": {"directory": ANY}, "s3": _S3}},
    "ruler_storage": {"backend": ANY, "local": {"directory": ANY}, **_THANOS_FILESYSTEM},
    "schema_config": {"configs": [{"from": ANY, "store": ANY, "object_store": ANY, "schema": ANY,
                                   "index": {"prefix": ANY, "period": ANY, "path_prefix": ANY}}]},
    "limits_config": keys("retention_period", "allow_structured_metadata", "max_line_size",
                          "max_line_size_truncate", "max_label_names_per_series", "ingestion_rate_mb",
                          "ingestion_burst_size_mb", "reject_old_samples", "reject_old_samples_max_age",
                          "max_structured_metadata_size", "discover_service_name", "volume_enabled",
                          "max_entries_limit_per_query"),
    "compactor": keys("working_directory", "retention_enabled", "delete_request_store", "compaction_interval",
                      "retention_delete_delay"),
    "analytics": {"reporting_enabled": ANY},
}

# Keys naming a local path, their documented default, and whether common.path_prefix derives them.
PATHS: dict[tuple[str, ...], str] = {
    ("common", "path_prefix"): '""',
    ("common", "storage", "filesystem", "chunks_directory"): '""',
    ("common", "storage", "filesystem", "rules_directory"): '""',
    ("storage_config", "filesystem", "directory"): '"" (the classic filesystem client)',
    ("storage_config", "object_store", "filesystem", "dir"): '"": the working directory (Thanos client)',
    ("storage_config", "tsdb_shipper", "active_index_directory"): '"" (path_prefix/tsdb-shipper-active)',
    ("storage_config", "tsdb_shipper", "cache_location"): '"" (path_prefix/tsdb-shipper-cache)',
    ("storage_config", "bloom_shipper", "working_directory"): '"/data/blooms"',
    ("ingester", "wal", "dir"): '"wal", relative',
    ("ingester", "shutdown_marker_path"): '"" (path_prefix)',
    ("ruler", "rule_path"): '"/rules"',
    ("ruler", "wal", "dir"): '"ruler-wal", relative',
    ("ruler_storage", "filesystem", "dir"): '"": the working directory (Thanos client)',
    ("compactor", "working_directory"): '"/var/loki/compactor"',
}
# Paths a filesystem-backed single binary writes (a bucket-backed one: all but the object-store folders).
OBJECT_STORE_PATHS = frozenset({("common", "storage", "filesystem", "chunks_directory"),
                                ("common", "storage", "filesystem", "rules_directory"),
                                ("storage_config", "filesystem", "directory"),
                                ("storage_config", "object_store", "filesystem", "dir"),
                                ("ruler_storage", "filesystem", "dir")})
PATH_KEY_NAMES = frozenset(path[-1] for path in PATHS) | {"tokens_file_path", "tasks_disk_directory"}


def undocumented(config: Any, tree: Any = KEYS, where: str = "") -> Iterator[str]:
    """Every key of ``config`` that ``tree`` (the reference) does not have."""
    if tree is ANY:
        return
    if isinstance(tree, list):
        for i, item in enumerate(config if isinstance(config, list) else [config]):
            yield from undocumented(item, tree[0], f"{where}[{i}]")
        return
    if not isinstance(config, dict):
        yield f"{where or '<top>'} is a {type(config).__name__}, the reference has a block"
        return
    for key, value in config.items():
        if key not in tree:
            yield f"{where}.{key}".lstrip(".")
        else:
            yield from undocumented(value, tree[key], f"{where}.{key}")


def path_values(config: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path, value) of every path-like key in ``config``: by name, or a value that is an absolute path."""
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(value, (dict, list)):
                yield from path_values(value, (*where, str(key)))
            elif isinstance(value, str) and (key in PATH_KEY_NAMES or value.startswith("/")):
                yield (*where, str(key)), value
    elif isinstance(config, list):
        for i, item in enumerate(config):
            yield from path_values(item, (*where, str(i)))


def lookup(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
