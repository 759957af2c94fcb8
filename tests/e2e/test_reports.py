"""Incident snapshots and model health reports against a real Prometheus holding known series (backfilled with
promtool, plus a scraped target with latency exemplars), the tests' Loki receiver answering query_range, and
opened in headless Chromium: screenshot not blank, every section and chart there, no console message, no request
leaving the page, the numbers those of Prometheus's HTTP API for the same series and times."""
from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

from mlscope.alerts import AlertStore
from mlscope.catalog import drift as drift_cat
from mlscope.catalog import serving as serving_cat
from mlscope.cli import main
from mlscope.reports import ids, page, period, snapshot
from mlscope.reports.fetch import step_for
from mlscope.reports.logs import privacy_of
from mlscope.reports.sources import Sources
from mlscope.reports.store import verify
from mlscope.reports.worker import snapshot_worker
from mlscope.stack import servers
from mlscope.stack.alertreceiver import AlertReceiver
from mlscope.stack.servers import PrometheusAPI
from support import chromium
from support.helpers import free_port, require_binary
from support.loki_receiver import Line, LokiReceiver
from support.reports_data import Scenario, backfill

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "alerting" / "runbooks"
SLOW_ID, OTHER_ID = "req-slow-0001", "req-other-0002"


@dataclass
class Stack:
    scenario: Scenario
    prometheus: str
    api: PrometheusAPI
    loki: LokiReceiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prometheus over the scenario's backfilled blocks, scraping a service's latency exemplars; Loki lines."""
    require_binary("promtool")
    tmp = tmp_path_factory.mktemp("reports")
    end = int(time.time()) // 60 * 60 - 120
    scenario = Scenario(end - 3 * 3600, end)
    backfill(scenario, tmp / "data")
    registry = CollectorRegistry()
    latency = Histogram(serving_cat.PREDICTION_LATENCY.name,
                        "latency", ["model", "model_version"], registry=registry, buckets=(0.1, 1.0, 5.0))
    child = latency.labels(scenario.model, scenario.version)
    child.observe(0.05, {"request_id": OTHER_ID})
    child.observe(3.0, {"request_id": SLOW_ID})
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    config = tmp / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs:\n- job_name: service\n  scrape_interval: 1s\n"
                      f"  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n")
    prometheus = servers.prometheus(config, tmp / "data")
    prometheus.start()
    api = PrometheusAPI(prometheus.url)
    now = time.time()
    deadline = now + 30
    while not api.exemplars(f"{serving_cat.PREDICTION_LATENCY.name}_bucket", now - 60, time.time() + 60):
        assert time.time() < deadline, "Prometheus stored no exemplar"
        time.sleep(0.25)
    loki = LokiReceiver()
    labels = {"app": "mlscope", "model": scenario.model, "model_version": scenario.version, "level": "info"}
    for i, rid in enumerate((OTHER_ID, SLOW_ID)):
        fields = {"event": "prediction_slow" if rid == SLOW_ID else "prediction", "model": scenario.model,
                  "model_version": scenario.version, "request_id": rid, "user_email": "ann@example.com",
                  "ts": f"line-{i}"}
        loki.lines.append(Line(labels, int((now - 30 + i) * 1e9), json.dumps(fields), {}))
    yield Stack(scenario, prometheus.url, api, loki)
    loki.close()
    prometheus.stop()
    server.shutdown()


def _payload(s: Scenario, status: str, alertname: str = "FeatureDriftHigh", **labels: str) -> dict:
    starts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s.pending_until)) + ".123456789Z"
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.firing_until)) if status == "resolved" \
        else "0001-01-01T00:00:00Z"
    alert_labels = {"alertname": alertname, "model": s.model, "model_version": s.version, "feature": s.drifted,
                    "severity": "warning", **labels}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{alertname}"}}', "status": status, "receiver": "mlscope",
            "groupLabels": {"alertname": alertname}, "commonLabels": {"alertname": alertname},
            "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": [{"status": status, "labels": alert_labels, "fingerprint": "0123456789abcdef",
                        "annotations": {"summary": f"feature {s.drifted} drifted",
                                        "description": "PSI of feature f2 is 0.470 over the last 1h, above 0.150",
                                        "dashboard": "http://127.0.0.1:3000/d/mlscope-drift",
                                        "runbook_url": "http://127.0.0.1:9095/runbooks/FeatureDriftHigh.md"},
                        "startsAt": starts, "endsAt": ends, "generatorURL": "http://prom/graph?g0.expr=up"}]}


class Numbers(HTMLParser):
    """The page's numbers: ``data-value`` of each table cell, by (panel key, series, stat)."""

    def __init__(self) -> None:
        super().__init__()
        self.panel, self.series = "", ""
        self.values: dict[tuple[str, str, str], float] = {}
        self.ids: set[str] = set()
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        self.svgs += tag == "svg"
        if a.get("data-panel"):
            self.panel = str(a["data-panel"])
        if a.get("data-series") is not None:
            self.series = str(a["data-series"])
        if a.get("data-stat") and a.get("data-value") not in (None, "None", ""):
            self.values[(self.panel, self.series, str(a["data-stat"]))] = float(str(a["data-value"]))


def _browse(html_file: Path, tmp: Path) -> tuple[chromium.Opened, Numbers]:
    binary = chromium.find() or require_binary("chromium")
    opened = chromium.open_page(binary, html_file, tmp / "browser")
    assert opened.console == [], opened.console
    assert opened.requests == [], f"the page asked the network for {opened.requests}"
    assert opened.pixel_std() > 0.05, "blank screenshot"
    numbers = Numbers()
    numbers.feed(opened.dom)
    return opened, numbers


def _range(api: PrometheusAPI, expr: str, start: float, end: float) -> list[float]:
    result = api.query_range(expr, start, end, step_for(start, end))
    assert len(result) == 1, (expr, result)
    return [float(v) for _, v in result[0]["values"]]


def test_the_browser_checks_catch_a_console_error_and_a_request(tmp_path: Path) -> None:
    """The detectors the page tests rely on do fire (an image from the network, a console error)."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><h1>x</h1><script>console.error('broken')</script>"
                   f"<img src='http://127.0.0.1:{free_port()}/x.png'>")
    opened = chromium.open_page(chromium.find() or require_binary("chromium"), bad, tmp_path / "browser")
    assert opened.console == ["broken"]
    assert len(opened.requests) == 1 and opened.requests[0].endswith("/x.png")


def test_a_firing_then_resolved_group_gets_its_snapshot_page(stack: Stack, tmp_path: Path) -> None:
    s = stack.scenario
    worker = snapshot_worker(tmp_path / "snapshots", prometheus_url=stack.prometheus, loki_url=stack.loki.url,
                             privacy=privacy_of(drop=["user_email"]), runbooks=RUNBOOKS,
                             receiver_url="http://127.0.0.1:9095")
    lines = (tmp_path / "lines").open("w")
    receiver = AlertReceiver(registry=worker.registry, store=AlertStore(), output=lines,
                             page_url="http://127.0.0.1:9095", snapshots=worker, runbooks=RUNBOOKS)
    began = time.perf_counter()
    assert receiver.handle(json.dumps(_payload(s, "firing")).encode()) == (200, "ok")
    assert receiver.handle(json.dumps(_payload(s, "firing")).encode()) == (200, "ok")  # a re-send: no new page
    assert time.perf_counter() - began < 0.5, "the snapshot delayed the notification"
    assert worker.wait_idle(60)
    ident = ids.page_id(_payload(s, "firing"))
    assert ident == f"{ids.snapshot_id('alertname=FeatureDriftHigh,', s.pending_until)}"
    line = json.loads((tmp_path / "lines").read_text().splitlines()[0])
    assert line["snapshot_url"] == f"http://127.0.0.1:9095/snapshots/{ident}.html"
    html_file = tmp_path / "snapshots" / f"{ident}.html"
    html = html_file.read_text()
    assert len(html.encode()) <= page.BUDGET_BYTES
    opened, numbers = _browse(html_file, tmp_path)
    for section in ("alerts", "lineage", "logs", "runbook", "links"):
        assert section in numbers.ids, section
    assert {"panel-1-drift", "panel-2-prediction_drift", "panel-3-traffic"} <= numbers.ids
    assert numbers.svgs >= 3
    # The numbers are Prometheus's, for the page's own window (its JSON twin) and step.
    twin = json.loads(re.search(r'id="mlscope-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    start, end = twin["window"]["start"], twin["window"]["end"]
    psi = _range(stack.api, f'{drift_cat.PSI.name}{{model="{s.model}",model_version="{s.version}",feature="f2",'
                            'window="1h"}', start, end)
    assert numbers.values[("drift", "f2", "max")] == pytest.approx(max(psi)) == pytest.approx(s.psi("f2", s.end))
    assert numbers.values[("drift", "f2", "last")] == pytest.approx(psi[-1])
    assert numbers.values[("drift", "f2", "threshold")] == pytest.approx(0.15)
    ranked = [series for (panel, series, stat) in numbers.values if panel == "drift" and stat == "max"]
    assert ranked[0] == "f2"  # the drifted feature first
    rate = _range(stack.api, f'{serving_cat.REQUEST_RATE.name}{{model="{s.model}",model_version="{s.version}",'
                             'window="5m"}', start, end)
    assert numbers.values[("traffic", "requests/s", "mean")] == pytest.approx(sum(rate) / len(rate))
    # Lineage from the info gauges; the exemplar's request first among the log lines, the e-mail dropped.
    assert s.fingerprint in opened.dom and s.owner in opened.dom
    logs = twin["logs"][0]
    assert logs["request_ids"][0] == SLOW_ID
    assert [x["request_id"] for x in logs["lines"]] == [SLOW_ID, OTHER_ID]
    assert "ann@example.com" not in html
    assert "Runbook" in opened.dom and "What it means" in html
    # Resolved: the same page, rewritten; the manifest keeps both hashes and verifies; a change is caught.
    receiver.handle(json.dumps(_payload(s, "resolved")).encode())
    assert worker.wait_idle(60)
    entry = json.loads((tmp_path / "snapshots" / "manifest.json").read_text())["pages"][f"{ident}.html"]
    assert entry["status"] == "resolved" and [h["status"] for h in entry["history"]] == ["firing"]
    assert "resolved" in html_file.read_text()
    assert verify(tmp_path / "snapshots") == []
    assert main(["report", "--verify", str(tmp_path / "snapshots")]) == 0
    html_file.write_text(html_file.read_text().replace("0.15", "0.95"))
    assert main(["report", "--verify", str(tmp_path / "snapshots")]) == 1
    assert worker.written.labels("firing")._value.get() == 1 and worker.written.labels("resolved")._value.get() == 1
    receiver.close()
    lines.close()


def test_the_period_report_numbers_alerts_and_twin(stack: Stack, tmp_path: Path) -> None:
    s = stack.scenario
    out = tmp_path / "report.html"
    assert main(["report", "--model", s.model, "--since", str(s.start), "--until", str(s.end), "--out", str(out),
                 "--prometheus", stack.prometheus]) == 0
    opened, numbers = _browse(out, tmp_path)
    panels = ("traffic", "errors", "latency", "drift", "prediction_drift", "data_quality", "quality", "coverage",
              "label_delay")
    assert {f"panel-{i}-{key}" for i, key in enumerate(panels, 1)} <= numbers.ids
    assert numbers.svgs >= len(panels)
    twin = json.loads(out.with_suffix(".json").read_text())
    errors = _range(stack.api, f'{serving_cat.ERROR_RATIO.name}{{model="{s.model}",model_version="{s.version}",'
                               'window="5m"}', s.start, s.end)
    assert numbers.values[("errors", "error ratio", "max")] == pytest.approx(max(errors))
    assert numbers.values[("errors", "error ratio", "threshold")] == pytest.approx(0.05)
    assert numbers.values[("coverage", "coverage", "last")] == pytest.approx(0.7)
    assert numbers.values[("quality", "accuracy", "threshold")] == pytest.approx(0.93 - 0.05)  # baseline - max drop
    assert ("quality", "macro F1", "threshold") not in numbers.values
    assert numbers.values[("label_delay", "p90", "mean")] == pytest.approx(95.0)
    twin_errors = twin["versions"][0]["panels"][1]
    assert twin_errors["key"] == "errors" and twin_errors["lines"][0]["stats"]["max"] == pytest.approx(max(errors))
    (episode,) = twin["alerts"]["episodes"]
    reach = twin["alerts"]["reach_s"]
    assert episode["alertname"] == "FeatureDriftHigh"
    assert abs(episode["detect_s"] - (s.pending_until - s.incident)) <= reach  # 15 min pending
    assert abs(episode["resolve_s"] - (s.firing_until - s.pending_until)) <= 2 * reach  # 30 min firing
    assert "15m" in opened.dom


def test_bad_sources_still_give_a_page_that_says_what_is_missing(stack: Stack, tmp_path: Path) -> None:
    s = stack.scenario
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(8)  # accepts connections into its backlog, never answers
    try:
        for url, word in ((f"http://127.0.0.1:{free_port()}", "did not answer"),
                          (f"http://127.0.0.1:{hanging.getsockname()[1]}", "timed out")):
            began = time.perf_counter()
            built = snapshot.build(_payload(s, "firing"), Sources(url, "", timeout_s=0.5), runbooks=RUNBOOKS)
            html = page.within_budget(built)
            assert time.perf_counter() - began < 5, "one query's timeout per page, not one per query"
            assert word in built.context["missing"][0] and "written all the same" in html
            assert "id=\"alerts\"" in html and "feature f2 drifted" in html
    finally:
        hanging.close()
    # Loki absent, and an alert the rule generator does not know: the model's serving panels, said.
    built = snapshot.build(_payload(s, "firing", alertname="TeamCustomAlert", team="x"), Sources(stack.prometheus))
    html = page.within_budget(built)
    assert "TeamCustomAlert: not one the rule generator knows" in html
    assert [v["key"] for v in built.twin["versions"][0]["panels"]] == ["traffic", "errors", "latency"]
    assert "no Loki URL given" in html
    # A period with no data.
    week_before = period.build(Sources(stack.prometheus), s.model, s.start - 8 * 86400, s.start - 86400)
    html = page.within_budget(week_before)
    assert f"no version of {s.model} has data" in html and "No alert was pending or firing" in html
