"""A real Prometheus: the shipper's metrics fire the dropping-lines alert; exemplars carry trace ids to the logs
and their request ids, through the provisioned exemplar link, to exactly their own lines."""
from __future__ import annotations

import json
import threading
import time

import pytest

from mlscope import ModelMonitor
from mlscope.logs import PredictionLog
from support.dashboards import datasource_links
from support.helpers import Exporter, wait_until
from support.logs_helpers import JsonLines
from support.loki_receiver import LokiReceiver
from support.prometheus import PrometheusHarness


def test_rejected_lines_fire_the_dropping_lines_alert(prometheus: PrometheusHarness, exporter: Exporter,
                                                      receiver: LokiReceiver, make_handler) -> None:
    receiver.mode = 400
    handler, logger, _ = make_handler(registry=exporter.registry, name="e2e-loki")
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            logger.info("rejected")
            time.sleep(0.05)

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        prometheus.scrape("e2e-logs", exporter.target)

        def firing() -> list:
            return [a for a in prometheus.api.alerts() if a["labels"]["alertname"] == "MLScopeLogShipperDroppingLines"
                    and a["labels"].get("handler") == "e2e-loki" and a["state"] == "firing"]

        alert = wait_until(firing, timeout=40)[0]
    finally:
        stop.set()
        thread.join()
    assert alert["labels"]["reason"] == "http_400" and alert["labels"]["severity"] == "warning"
    assert receiver.lines == [] and receiver.statuses() and set(receiver.statuses()) == {400}


def test_exemplar_trace_id_leads_to_the_log_line(prometheus: PrometheusHarness, exporter: Exporter) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk.TracerProvider().get_tracer("e2e")
    lines = JsonLines()
    monitor = ModelMonitor("e2e-traces", "1", registry=exporter.registry,
                           prediction_log=PredictionLog(lines.logger("e2e-traces"), sample_rate=1.0))
    start = time.time() - 1
    prometheus.scrape("e2e-traces", exporter.target)
    with tracer.start_as_current_span("predict"):
        monitor.record_prediction(0.042, request_id="req-e2e-1")

    def found() -> list:
        data = prometheus.api.exemplars('mlscope_prediction_latency_seconds_bucket{model="e2e-traces"}',
                                        start, time.time() + 1)
        return [e for series in data for e in series["exemplars"] if e["labels"].get("request_id") == "req-e2e-1"]

    exemplar = wait_until(found)[0]
    (line,) = lines.lines
    assert (exemplar["labels"]["trace_id"], exemplar["labels"]["span_id"]) == (line["trace_id"], line["span_id"])


def test_exemplar_link_opens_exactly_its_requests_lines(prometheus: PrometheusHarness, exporter: Exporter,
                                                        receiver: LokiReceiver, make_handler) -> None:
    """A real Prometheus exemplar's request id, put into the provisioned exemplar link, selects its own lines
    in the receiver (LogQL subset), not those of the ids it is a prefix of."""
    handler, logger, _ = make_handler()
    monitor = ModelMonitor("e2e-links", "1", registry=exporter.registry,
                           prediction_log=PredictionLog(logger, sample_rate=1.0))
    start = time.time() - 1
    prometheus.scrape("e2e-links", exporter.target)
    for latency, request_id in ((0.042, "req-e2e-1"), (0.9, "req-e2e-10"), (4.0, "req-e2e-11")):
        monitor.record_prediction(latency, request_id=request_id)  # one bucket each: one exemplar each
    assert handler.drain(10)

    def found() -> list:
        data = prometheus.api.exemplars('mlscope_prediction_latency_seconds_bucket{model="e2e-links"}',
                                        start, time.time() + 1)
        return [e["labels"]["request_id"] for series in data for e in series["exemplars"]]

    exemplars = wait_until(lambda: "req-e2e-1" in found() and found())
    assert {"req-e2e-1", "req-e2e-10"} <= set(exemplars)
    (link,) = [link for link in datasource_links() if link.get("urlDisplayLabel") == "Logs of this request"]
    expr = link["url"].replace("$${__value.raw}", "req-e2e-1")  # the exemplar's label value, as Grafana fills it
    assert [json.loads(e.line)["request_id"] for e in receiver.select(expr)] == ["req-e2e-1"]
    assert len(receiver.select('{app="mlscope"} |= "req-e2e-1"')) == 3  # the old substring link
