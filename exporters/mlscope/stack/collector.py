"""The OpenTelemetry Collector configuration for traces at scale: every service sends OTLP to a Collector,
which keeps whole traces by policy (tail sampling) and batches them on to Tempo's distributor.

The policies keep every trace with an error span, every trace slower than the latency SLO of the rule
configuration (``Thresholds.latency_slo_seconds``: what an alert would be about) and a share of the rest.
Tail sampling decides per trace, so all spans of a trace must reach the same Collector: run one replica, or
put a first tier with the ``loadbalancing`` exporter (``routing_key: traceID``) in front (docs/scaling.md).
Keys: the Collector's ``otlp`` receiver and exporter, ``memory_limiter`` and ``batch`` processors (core), and
contrib's ``tail_sampling`` processor (its README: ``decision_wait``, ``num_traces``,
``expected_new_traces_per_sec``, ``policies`` of types ``status_code``, ``latency``, ``probabilistic``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rules.config import Thresholds

OTLP_GRPC, OTLP_HTTP, HEALTH = 4317, 4318, 13133
EXPORTER = "otlp/tempo"


@dataclass(frozen=True)
class Sampling:
    """What the Collector keeps: errors and slow traces always, ``baseline_percent`` of the others."""

    baseline_percent: float = 10.0
    decision_wait: str = "10s"  # a trace's spans arrive within this long of its first
    num_traces: int = 100_000  # traces held while they wait for a decision
    expected_new_traces_per_sec: int = 1000

    def policies(self, slow_seconds: float) -> list[dict[str, Any]]:
        return [{"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                {"name": "slower-than-the-latency-slo", "type": "latency",
                 "latency": {"threshold_ms": round(slow_seconds * 1000)}},
                {"name": "baseline", "type": "probabilistic",
                 "probabilistic": {"sampling_percentage": self.baseline_percent}}]


def collector_config(tempo_endpoint: str, sampling: Sampling | None = None,
                     thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The Collector's configuration: OTLP in (gRPC and HTTP), memory limit, tail sampling, batches, OTLP/gRPC
    out to ``tempo_endpoint`` (``host:port`` of Tempo's distributor) with a bounded retrying queue."""
    sampling = sampling or Sampling()
    slow = (thresholds or Thresholds()).latency_slo_seconds
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC}"},
                                             "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP}"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "tail_sampling": {"decision_wait": sampling.decision_wait, "num_traces": sampling.num_traces,
                              "expected_new_traces_per_sec": sampling.expected_new_traces_per_sec,
                              "policies": sampling.policies(slow)},
            "batch": {"send_batch_size": 8192, "send_batch_max_size": 16384, "timeout": "5s"},
        },
        "exporters": {EXPORTER: {"endpoint": tempo_endpoint, "tls": {"insecure": True},
                                 "sending_queue": {"enabled": True, "queue_size": 5000},
                                 "retry_on_failure": {"enabled": True, "max_elapsed_time": "5m"}}},
        "extensions": {"health_check": {"endpoint": f"0.0.0.0:{HEALTH}"}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"],
                                             "processors": ["memory_limiter", "tail_sampling", "batch"],
                                             "exporters": [EXPORTER]}}},
    }
