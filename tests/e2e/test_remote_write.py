"""A real Prometheus remote-writes (with the overlays' own remote_write block) to a receiver in the test that decodes
the snappy-compressed protobuf WriteRequests: mlscope's raw and recorded series arrive with their labels and values."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlscope import ModelMonitor
from mlscope.catalog import serving as cat
from mlscope.rules import config_for
from mlscope.stack import promconfig, servers
from mlscope.stack.remotewrite import BACKENDS, QUEUE_CONFIG, RemoteWrite, keep_regex, stack_foreign_names
from support import ROOT
from support.alerting_stack import ErrorSpike
from support.helpers import FAST_RULES, Exporter, require_binary, wait_until
from support.remote_write_receiver import RemoteWriteReceiver

FIXED = {"model": "fixed", "model_version": "1.0.0"}
LIVE = {"model": "churn", "model_version": "3.2.0"}


class Shipping:
    def __init__(self, receiver: RemoteWriteReceiver, prometheus: servers.Server, target: str) -> None:
        self.receiver, self.prometheus, self.target = receiver, prometheus, target
        self.api = servers.PrometheusAPI(prometheus.url)


@pytest.fixture
def shipping(tmp_path: Path, exporter: Exporter) -> Iterator[Shipping]:
    require_binary("prometheus")
    receiver = RemoteWriteReceiver()
    profile = config_for("fast").profile
    remote = RemoteWrite(BACKENDS["mimir"], url=receiver.url,
                         queue_config={**QUEUE_CONFIG, "batch_send_deadline": "1s"})
    config = promconfig.prometheus_config(profile, [promconfig.scrape_job("model-service", targets=[exporter.target])],
                                          FAST_RULES, external_labels={"stack": "mlscope"})
    config["remote_write"] = [remote.config(stack_foreign_names(ROOT))]
    prometheus = servers.prometheus(promconfig.write_config(tmp_path / "prometheus.yml", config), tmp_path / "data")
    prometheus.start()
    yield Shipping(receiver, prometheus, exporter.target)
    prometheus.stop()
    receiver.stop()


def last_value(receiver: RemoteWriteReceiver, name: str, **labels: str) -> float | None:
    found = receiver.find(name, **labels)
    if len(found) != 1 or not found[0].samples:
        return None
    return max(found[0].samples)[1]


def test_mlscope_series_arrive_with_labels_and_values(shipping: Shipping, exporter: Exporter) -> None:
    fixed = ModelMonitor(FIXED["model"], FIXED["model_version"], registry=exporter.registry)
    for latency in (0.0004, 0.003, 0.003, 0.02, 0.2, 0.7, 3.0):
        fixed.record_prediction(latency, output="yes")
    fixed.record_error(ValueError("bad row"), latency_seconds=0.01)
    spike = ErrorSpike(ModelMonitor(LIVE["model"], LIVE["model_version"], registry=exporter.registry), 0.2)
    receiver, registry = shipping.receiver, exporter.registry
    try:
        expected = registry.get_sample_value("mlscope_predictions_total", FIXED)
        wait_until(lambda: last_value(receiver, "mlscope_predictions_total", **FIXED) == expected, timeout=60)
        rate = "model_version:mlscope_predictions:rate"
        # rate() over a 1m window that holds a few seconds of data extrapolates low at first: wait for > 5/s.
        wait_until(lambda: (last_value(receiver, rate, window="1m", **LIVE) or 0) > 5, timeout=60)
        wait_until(lambda: last_value(receiver, "model_version:mlscope_prediction_errors:ratio_rate",
                                      window="1m", **LIVE) is not None, timeout=30)
    finally:
        spike.stop()

    # The remote-write 1.0 protocol headers, and the tenant header: loaded by Prometheus, and sent except by Debian's
    # 2.42.0+ds build, which drops custom remote-write headers (prometheus/prometheus#13030; upstream builds send it).
    headers = receiver.headers[-1]
    loaded = requests.get(shipping.prometheus.url + "/api/v1/status/config", timeout=5).json()["data"]["yaml"]
    assert "X-Scope-OrgID: mlscope" in loaded
    if "+ds" not in headers["User-Agent"]:
        assert headers["X-Scope-OrgID"] == "mlscope"
    assert headers["Content-Encoding"] == "snappy" and headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert receiver.rejected == 0

    # Raw series: target labels and external labels attached; exact values; every histogram bucket.
    [total] = receiver.find("mlscope_predictions_total", **FIXED)
    assert total.labels == {"__name__": "mlscope_predictions_total", **FIXED, "job": "model-service",
                            "instance": shipping.target, "stack": "mlscope"}
    buckets = {s.labels["le"]: max(s.samples)[1]
               for s in receiver.find("mlscope_prediction_latency_seconds_bucket", **FIXED)}
    assert set(buckets) == {str(b) for b in cat.LATENCY_BUCKETS} | {"+Inf"}
    for le, value in buckets.items():
        assert value == registry.get_sample_value("mlscope_prediction_latency_seconds_bucket", {**FIXED, "le": le})
    [errors] = receiver.find("mlscope_prediction_errors_total", **FIXED)
    assert errors.labels["error_type"] == "ValueError" and max(errors.samples)[1] == 1.0

    # Recorded series (evaluated locally, shipped): no target labels, the window label, plausible values that are
    # exactly what Prometheus stored at the same timestamp.
    [recorded] = receiver.find(rate, window="1m", **LIVE)
    assert recorded.labels == {"__name__": rate, **LIVE, "window": "1m", "stack": "mlscope"}
    ts, value = max(recorded.samples)
    assert 5 < value < 60  # ErrorSpike sends ~45 requests/s
    stored = shipping.api.query(f'{rate}{{window="1m",model="churn"}}', time_=ts / 1000)
    assert float(stored[0]["value"][1]) == pytest.approx(value, rel=1e-12)
    ratio = last_value(receiver, "model_version:mlscope_prediction_errors:ratio_rate", window="1m", **LIVE)
    assert 0.05 < ratio < 0.4  # 20 % injected

    # Exemplars travel too (send_exemplars for Mimir): the request id of a latency observation.
    exemplars = [e for s in receiver.find("mlscope_prediction_latency_seconds_bucket", **LIVE) for e in s.exemplars]
    assert exemplars and all(set(labels) == {"request_id"} for labels, _, _ in exemplars)

    # Only what the rules and dashboards need: `_created` series are in Prometheus but were not shipped.
    assert shipping.api.query('mlscope_predictions_created{model="fixed"}')
    names = receiver.names()
    assert not any(n.endswith("_created") for n in names)
    keep = re.compile(keep_regex(stack_foreign_names(ROOT)))
    assert all(keep.fullmatch(n) for n in names), sorted(n for n in names if not keep.fullmatch(n))
    assert "scrape_series_added" not in names and shipping.api.query("scrape_series_added")
