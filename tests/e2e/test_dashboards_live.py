"""Every query of every dashboard returns data from a real stack fed with the synthetic workload.

One module-scoped stack: a real Prometheus with the fast rule files (scraping itself, Alertmanager, the alert
receiver and one model service), a real Alertmanager delivering to the real alert receiver, and a model
service that runs, in-process, what the dashboards show: a classifier with a drift reference profile, late
ground truth and injected errors and drift; a regressor with late ground truth; a tabular model fed bad
inputs (missing, out-of-range, wrong types, new categories, label overflow); the prediction log shipping to a
local Loki receiver through LokiHandler (with a retried, a rejected and an oversize push); a ResourceMonitor on
this host with simulated GPUs (one failing an NVML call, one reporting an XID error); a scraped pipeline running
every half second (rejects, freshness, a batch check, every fourth run failing) and a training run that names
its version (mlscope_training_info, the version's mlscope_model_info), their lines shipped to the receiver.

Every PromQL expression of every panel and variable is sent to Prometheus's HTTP API with the template
variables substituted as Grafana's "All" does and ``$__rate_interval``/``$__interval`` as Grafana computes them;
each must parse and return at least one sample. Loki queries are matched against the streams and lines the
receiver got: their stream selectors must select lines the shipper sent.
"""
from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pynvml
import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog.alerting import ALERT_EVENT
from mlscope.dashboards import check as dashcheck
from mlscope.demo.textgen import start_text_endpoint
from mlscope.demo.workload import LateGroundTruth, SyntheticService, Traffic, linear_contributions, train
from mlscope.exposition import start_metrics_server
from mlscope.logs import LokiHandler, PredictionLog
from mlscope.pipelines import LOGGER as PIPELINE_LOGGER
from mlscope.pipelines import PipelineMonitor
from mlscope.quality import Quality, baseline_metrics
from mlscope.resources import FakeNVML, ResourceMonitor
from mlscope.rules import config_for
from mlscope.rules.config import duration_seconds
from mlscope.stack.alertreceiver import AlertReceiver
from mlscope.stack.servers import ServerError, free_port
from mlscope.versions import TrafficSplit
from support import ROOT, alerting_stack
from support.dashboard_exemptions import reads_seasonal_history
from support.drift_support import monitor_with, small_profile, trained, workload_profile
from support.helpers import require_binary, wait_until
from support.loki_receiver import LokiReceiver
from support.model_servers import start_model_servers

DASHBOARDS = ROOT / "provisioning" / "grafana" / "dashboards"
PROFILE = config_for("fast").profile
# Grafana's intervals for the dashboards' default range (1h) on a datasource scraped every second.
INTERVALS = dashcheck.grafana_intervals(3600, duration_seconds(PROFILE.scrape_interval))
ALL = ".+"  # what the model variables' "All" option sends
DEADLINE_S = 90.0


def committed() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("mlscope-*.json"))}


@dataclass
class ModelService:
    """The synthetic model service: monitors, quality, prediction log, resources, all in one registry."""

    tmp: Path
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    threads: list = field(default_factory=list)

    def start(self) -> ModelService:
        r = self.registry
        self.loki = LokiReceiver(allowed_labels={"app", "env", "model", "model_version", "level"})
        self.loki.script = [500, 400]  # the first push is retried, the second rejected (dropped)
        self.handler = LokiHandler(self.loki.url, env="test", registry=r, flush_interval=0.05, min_backoff=0.05,
                                   max_backoff=0.5, max_line_bytes=4096, shutdown_timeout=1.0)
        logger = logging.getLogger("mlscope.test.dashboards-live")
        logger.propagate, logger.handlers[:] = False, [self.handler]
        logger.setLevel(logging.DEBUG)
        logger.warning("x" * 10_000)  # over max_line_bytes: truncated (oversize)
        log = PredictionLog(logger, sample_rate=1.0, slow_seconds=0.5)
        windows = {w: duration_seconds(w) for w in PROFILE.quality_windows}
        self.quality = Quality(registry=r, windows=windows, flush_interval_s=0.02, pending_ttl_s=1.0)

        clf = trained("breast_cancer")
        # The linear model's contributions on the training rows: the reference ranking of the attributions.
        contributions = linear_contributions(clf.pipeline, clf.x_train)
        self.clf = ModelMonitor("dash-clf", "1", registry=r,
                                reference=workload_profile("dash-clf", "1", attributions=contributions),
                                quality=self.quality, classes=clf.pipeline.classes_, prediction_log=log, role="stable",
                                shadow_pending=1000, shadow_ttl_s=30.0)
        # A canary of the classifier (the versions dashboard), failing more often than its baseline.
        canary = self.clf.for_version("2", role="canary", shadow_pending=0,
                                      reference=workload_profile("dash-clf", "2", attributions=contributions))
        self.split = TrafficSplit("dash-clf", {"1": 0.6, "2": 0.4}, registry=r)
        for version in ("1", "2"):
            self.quality.set_baseline("dash-clf", version, baseline_metrics(
                "classification", clf.y_test, clf.pipeline.predict(clf.x_test),
                clf.pipeline.predict_proba(clf.x_test), classes=list(clf.pipeline.classes_)))
        reg = trained("diabetes")
        regressor = ModelMonitor("dash-reg", "1", task="regression", registry=r, quality=self.quality,
                                 prediction_log=log)
        self.quality.set_baseline("dash-reg", "1", baseline_metrics("regression", reg.y_test,
                                                                    reg.pipeline.predict(reg.x_test)))
        self.tabular = monitor_with(small_profile("dash-tabular", "1"), r, label_caps={"class": 1})

        # A shadow of the stable version (another split's model): its answers compared, never served.
        shadow = ("1-shadow", train("breast_cancer", seed=1).pipeline)
        clf_service = SyntheticService(clf, self.clf, seed=1, shadow=shadow)
        clf_service.faults.error_rate, clf_service.faults.drift_shift_std = 0.1, 0.5
        canary_service = SyntheticService(clf, canary, seed=3)
        canary_service.faults.error_rate = 0.4
        classes = tuple(int(c) for c in clf.pipeline.classes_)
        for service, labels, rate in ((clf_service, classes, 25), (SyntheticService(reg, regressor, seed=2), (), 25),
                                      (canary_service, classes, 15)):
            truth = LateGroundTruth(service.monitor.record_outcome, delay_s=1.0, fraction=0.9, flip_rate=0.1,
                                    classes=labels).start()
            self.threads += [truth, Traffic(service, rate=rate, on_prediction=truth.schedule).start()]

        # The generative endpoint (mlscope.genai): answers capped at 60 tokens, so most finish with `length` and
        # GenAITruncationRatioHigh fires (the generative dashboard's alert table); some fail, some are abandoned.
        self.text = start_text_endpoint(r, self.quality, rate=6, seed=5, max_tokens=60, error_rate=0.05,
                                        abandon_rate=0.1)
        self.threads.append(self.text)
        gpus = FakeNVML.demo(2, pids=(os.getpid(),))
        gpus.gpus[1].failures["nvmlDeviceGetFanSpeed"] = pynvml.NVMLError_Unknown
        gpus.gpus[0].pending_xids.append(79)
        self.resources = ResourceMonitor(r, nvml=gpus, interval=0.5).start()

        self._stop = threading.Event()
        self._bad_inputs = threading.Thread(target=self._feed_bad_inputs, daemon=True)
        self._bad_inputs.start()
        logging.getLogger(PIPELINE_LOGGER).addHandler(self.handler)
        logging.getLogger(PIPELINE_LOGGER).setLevel(logging.INFO)
        self.pipeline_started, self.pipeline_runs = False, 0
        self._pipeline_profile = small_profile("dash-pipeline", "1")  # built here: the thread only runs
        self._pipeline = threading.Thread(target=self._run_pipeline, daemon=True)
        self._pipeline.start()
        self.server, _ = start_metrics_server(free_port(), registry=r)
        return self

    def _feed_bad_inputs(self) -> None:
        rng = np.random.default_rng(3)
        n = 0
        while not self._stop.wait(0.25):
            n += 1
            self.tabular.record_batch(np.array(["a", "b"] * 10), scores=rng.random(20), features={
                "income": rng.lognormal(10, 0.5, 20), "age": np.append(rng.normal(45, 10, 19), np.nan),
                "plan": np.array(["basic", "plus", "gold", "pro"] * 5, dtype=object)})  # gold: a new category
            self.tabular.record_features({"income": "not a number", "age": 1e9, "plan": None, "extra": 1})
            self.quality.record_outcome(f"nobody-{n}", 1)  # no such prediction: rejected
            self.clf.record_prediction(0.01, output=1, proba=[2.0], request_id=f"bad-proba-{n}")

    def _run_pipeline(self) -> None:
        """A scraped pipeline: runs with rejects, freshness and a batch check, every fourth one failing; and a
        training run that produced a version served beside it."""
        r, rng = self.registry, np.random.default_rng(4)
        monitor = PipelineMonitor("dash-features", registry=r, owner="data-eng", expected_interval_s=60,
                                  reference=self._pipeline_profile)
        training = monitor.training_run("dash-trained", dataset_version="2026-12-01", fingerprint="sha256:dash",
                                        data_batch_ids=["dash-b-0"], model_version="1")
        training.model_monitor("1")
        training.end()
        n = 0
        self.pipeline_started = True
        while not self._stop.wait(0.5):
            n += 1
            with monitor.run(f"dash-b-{n}") as run:
                with run.step("ingest") as step:
                    step.records(read=100, written=92, rejected={"bad_schema": 5, "duplicate": 3})
                    step.event_times(time.time() - rng.uniform(1, 30, 100))
                    step.check_batch({"income": rng.lognormal(10, 0.5, 200), "age": rng.normal(40, 10, 200),
                                      "plan": rng.choice(["basic", "plus", "pro"], 200).astype(object)})
                run.step("load").end("ConnectionError" if n % 4 == 0 else None)
            self.pipeline_runs = n

    def pipeline_state(self) -> str:
        """Where the pipeline thread is (for a failure's message): alive, runs ended, its current stack."""
        frame = sys._current_frames().get(self._pipeline.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
        return (f"pipeline thread alive={self._pipeline.is_alive()} started={self.pipeline_started} "
                f"runs ended={self.pipeline_runs}, at:\n{stack}")

    def ship_panel_lines(self) -> None:
        """An error line and an alert notification (the alert receiver's event), after the scripted push failures,
        for the panels that select them whatever the traffic's random errors and timing gave."""
        logger = logging.getLogger("mlscope.test.dashboards-live")
        version = {"model": "dash-clf", "model_version": "1"}
        logger.error("scoring failed", extra={**version, "event": "prediction_error"})
        logger.warning("ModelErrorRateHigh firing: dash-clf 1: prediction errors above 5%",
                       extra={**version, "event": ALERT_EVENT})
        assert self.handler.drain(10)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.stop()
        self._bad_inputs.join(5)
        self._pipeline.join(5)
        logging.getLogger(PIPELINE_LOGGER).removeHandler(self.handler)
        self.resources.stop()
        self.quality.close()
        self.handler.close()
        self.loki.close()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LiveStack:
    service: ModelService
    alerting: alerting_stack.AlertingStack
    receiver_server: object


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    require_binary("prometheus")
    require_binary("alertmanager", "prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("dashboards-live")
    service = ModelService(tmp).start()
    alert_registry = CollectorRegistry()
    receiver_server, _ = start_metrics_server(free_port(), registry=alert_registry)
    receiver = alerting_stack.TestReceiver(receiver=AlertReceiver(registry=alert_registry, output=io.StringIO()))
    targets = [service.target, f"127.0.0.1:{receiver_server.server_port}"]
    # vLLM/SGLang fixture servers and NVML-side series (the generative dashboard's model-server rows)
    servers_job, fake_servers = start_model_servers(tmp / "model-servers")
    alerting = alerting_stack.AlertingStack(tmp, targets, receiver=receiver, scrape_self=True, jobs=[servers_job])
    try:
        yield LiveStack(service, alerting.start(), receiver_server)
    finally:
        alerting.stop()
        receiver_server.shutdown()
        receiver_server.server_close()
        service.stop()
        for fake in fake_servers:
            fake.close()


def prometheus_queries(variables: dict[str, str]) -> list[tuple[str, str]]:
    """(where, PromQL) for every Prometheus query of every dashboard, substituted as Grafana would."""
    out = []
    for uid, data in committed().items():
        for query in dashcheck.queries(data):
            if query.datasource != "prometheus":
                continue
            selector = dashcheck.variable_selector(query.expr) if query.variable else None
            expr = selector[0] if selector else query.expr
            out.append((f"{uid} {query.where}", dashcheck.substitute(expr, variables, **INTERVALS)))
    return out


def empty_queries(api, queries: list[tuple[str, str]]) -> list[str]:
    """The queries that return no sample yet; a query Prometheus rejects fails the test at once."""
    empty = []
    for where, expr in queries:
        try:
            result = api.query(expr)
        except ServerError as exc:
            pytest.fail(f"{where}: Prometheus rejected {expr}: {exc}")
        if not result:
            empty.append(f"{where}: {expr}")
    return empty


def logged_request_id(loki: LokiReceiver) -> str:
    for line in loki.lines:
        request_id = json.loads(line.line).get("request_id") if line.line.startswith("{") else None
        if request_id and line.labels.get("model") == "dash-clf":
            return request_id
    pytest.fail("no prediction line with a request id reached the Loki receiver")


@pytest.mark.slow(seconds=100)
def test_every_promql_query_returns_data(live: LiveStack) -> None:
    live.alerting.api.wait_for('count(up{job="model-service"} == 1) == 2', timeout=30)
    variables = {"model": ALL, "model_version": ALL, "window": PROFILE.quality_windows[0], "feature": ALL,
                 "instance": ALL, "gpu": ALL, "pipeline": ALL}
    assert PROFILE.quality_windows[0] == PROFILE.drift_windows[0]
    # The seasonal bands need history as old as the smallest anomaly offset (5m in the fast profile), longer than
    # this stack lives: their recorded series are checked against known history by the generated promtool tests
    # (alerting/tests/anomaly.yml) and the `anomaly` benchmark's replay instead.
    queries = [(w, q) for w, q in prometheus_queries(variables) if not reads_seasonal_history(q)]
    assert len(queries) > 150 and {w.split()[0] for w, _ in queries} == set(committed())
    # Each query must return data at some point (a scrape that times out on a loaded machine makes every series
    # of its target stale for a moment, so "all at the same instant" would test the machine, not the queries).
    deadline = time.monotonic() + DEADLINE_S
    pending = queries
    empty = empty_queries(live.alerting.api, pending)
    while empty and time.monotonic() < deadline:
        time.sleep(2)
        pending = [(w, q) for w, q in pending if f"{w}: {q}" in empty]
        empty = empty_queries(live.alerting.api, pending)
    assert empty == [], (f"{len(empty)} of {len(queries)} queries return no data:\n" + "\n".join(empty)
                         + "\n" + live.service.pipeline_state())
    print(f"all {len(queries)} queries returned data {DEADLINE_S - (deadline - time.monotonic()):.0f} s after "
          "the first scrape")
    # The check can fail: a selector that matches nothing is reported.
    missing = ("bad", 'mlscope_predictions_total{model="no-such-model"}')
    assert empty_queries(live.alerting.api, [missing]) == [f"bad: {missing[1]}"]
    # The stack really ran: alerts reached the receiver, the shipper retried and dropped, a GPU call failed.
    assert live.alerting.receiver.notifications
    assert live.service.loki.statuses()[:2] == [500, 400]


@pytest.mark.slow(seconds=5)  # on the same worker as the test above: one live stack for both
def test_every_logql_query_selects_shipped_lines(live: LiveStack) -> None:
    """The Loki panels' queries select what the log shipper really sent (the receiver's LogQL subset)."""
    loki = live.service.loki
    live.service.ship_panel_lines()
    request_id = logged_request_id(loki)
    # The pipeline ends a run every half second once the stack is up (this test may be its worker's first).
    ended = wait_until(lambda: [e for e in list(loki.lines) if '"pipeline_run_end"' in e.line], timeout=30,
                       message=live.service.pipeline_state)
    run_id = json.loads(ended[0].line)["run_id"]
    variables = {"model": ALL, "model_version": ALL, "env": ".*", "request_id": request_id, "run_id": run_id,
                 "pipeline": ALL,
                 "__field.labels.model": "dash-clf", "__field.labels.model_version": "1",
                 "__data.fields.model": "dash-clf", "__data.fields.model_version": "1"}
    checked = 0
    for uid, data in committed().items():
        for query in dashcheck.queries(data) + dashcheck.link_queries(data):
            if query.datasource != "loki":
                continue
            expr = dashcheck.substitute(query.expr, variables, **INTERVALS)
            lines = loki.select(expr)
            assert lines, f"{uid} {query.where}: {expr} selects none of the {len(loki.lines)} lines shipped"
            if "request_id" in expr:
                assert {json.loads(e.line)["request_id"] for e in lines} == {request_id}, expr
            if "run_id=" in expr:  # the run's lines, all of them and only them
                assert {json.loads(e.line)["run_id"] for e in lines} == {run_id}, expr
                assert len(lines) == sum(f'"run_id":"{run_id}"' in e.line for e in loki.lines), expr
            checked += 1
    assert checked >= 5
    assert not loki.select('{app="mlscope",model=~"nope"}')  # the matcher can say no
