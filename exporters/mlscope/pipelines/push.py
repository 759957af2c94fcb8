"""Pushes to the Prometheus Pushgateway that never hang and never raise: the job ends, and says how it went.

One group per pipeline (grouping key ``job``, ``pipeline``, and ``instance`` only where the job gives a
bounded one), pushed with POST (prometheus-client's ``pushadd_to_gateway``): a push replaces the group's
families it carries and keeps the others, so a failed run keeps the last success time an earlier run pushed.
Only the samples of this pipeline (or of no pipeline: a batch scoring job's model metrics) are pushed.
"""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, delete_from_gateway, pushadd_to_gateway
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_PORT = 9091  # the Pushgateway's own default port


def gateway_url(address: str) -> str:
    """The Pushgateway's base URL: ``host`` or ``host:port`` (no port: :data:`DEFAULT_PORT`, not HTTP's 80),
    or an ``http(s)://`` URL, which keeps its own port (a proxy's 443)."""
    text = address.strip() if isinstance(address, str) else ""
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"pushgateway={address!r:.80} is not host[:port] or an http(s) URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"pushgateway={address!r:.80} is not host[:port] or an http(s) URL "
                         f"(e.g. 127.0.0.1:{DEFAULT_PORT})")
    if port is None and "://" not in text:
        parts = parts._replace(netloc=f"{parts.netloc}:{DEFAULT_PORT}")
    return urllib.parse.urlunsplit(parts).rstrip("/")


@dataclass(frozen=True)
class PushResult:
    """What a push did: ``ok``, or the ``reason`` it failed (``connection``, ``timeout``, ``http_<status>``)."""

    ok: bool
    seconds: float
    reason: str = ""
    error: str = ""


class PipelineGroup(Collector):
    """The registry's families as one pipeline's group: samples of another pipeline left out."""

    def __init__(self, registry: CollectorRegistry, pipeline: str) -> None:
        self.registry, self.pipeline = registry, pipeline

    def collect(self) -> Iterable[Metric]:
        for family in self.registry.collect():
            samples = [s for s in family.samples if s.labels.get("pipeline", self.pipeline) == self.pipeline]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


def failure_reason(exc: BaseException) -> str:
    """A bounded name for why a push failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"http_{exc.code}"
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc):
        return "timeout"
    if isinstance(exc, (urllib.error.URLError, OSError)):
        return "connection"
    return "error"


def push(gateway: str, grouping_key: Mapping[str, str], registry: CollectorRegistry, pipeline: str, *,
         timeout: float = DEFAULT_TIMEOUT_S) -> PushResult:
    """Push ``pipeline``'s group of ``registry`` (``grouping_key`` holds ``job``); never raises."""
    key = dict(grouping_key)
    job = key.pop("job")
    start = time.perf_counter()
    try:
        pushadd_to_gateway(gateway, job=job, registry=PipelineGroup(registry, pipeline), grouping_key=key,
                           timeout=timeout)
    except Exception as exc:
        return PushResult(False, time.perf_counter() - start, failure_reason(exc), f"{type(exc).__name__}: {exc}")
    return PushResult(True, time.perf_counter() - start)


def delete(gateway: str, grouping_key: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> PushResult:
    """Delete a group (a retired pipeline's: groups never go away by themselves); never raises."""
    key = dict(grouping_key)
    job = key.pop("job")
    start = time.perf_counter()
    try:
        delete_from_gateway(gateway, job=job, grouping_key=key, timeout=timeout)
    except Exception as exc:
        return PushResult(False, time.perf_counter() - start, failure_reason(exc), f"{type(exc).__name__}: {exc}")
    return PushResult(True, time.perf_counter() - start)
