"""The demo model service: every part of mlscope on live traffic, with a schedule of incidents.

A real scikit-learn classifier (bundled breast_cancer data) is served at a
steady rate through a fully instrumented :class:`ModelMonitor`: a drift
reference profile built from its training data, a prediction store with
ground truth delivered late, a prediction log (to Loki when a push URL is
given, else to a JSON-lines file), and resource metrics with simulated GPUs
(``simulated="true"`` on every GPU series). A schedule injects feature drift,
an error spike, a latency spike and a quality drop in turn, so every dashboard
shows data and the main alerts fire and resolve within minutes (fast profile).
``POST /faults`` on the demo's port injects one on demand (``mlscope demo inject``). Incidents are
objects in one registry (:mod:`mlscope.demo.incidents`): a capability registers its own. A canary version
(:mod:`mlscope.demo.canary`) sits behind a traffic split whose control endpoint (``/traffic``, bearer token
in ``control-token``) ``mlscope rollback`` calls. A feature pipeline runs on a
short schedule (:mod:`mlscope.demo.pipeline`); ``POST /models`` serves a version the retraining job
(:mod:`mlscope.demo.retrain`, an alert command) trained, in place of the stable one.

With an OTLP endpoint in the environment (``OTEL_EXPORTER_OTLP_ENDPOINT``, as ``mlscope up`` sets it), each
request is also a small trace exported to it (:mod:`mlscope.otel`): the prediction span and its steps, the
slowed step in the latency incident, ERROR status in the errors incident, out-of-range features in drift.
The trace sampler keeps the prediction log's 20 %, so a sampled request has its trace and its log lines.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .._http import reply, serve_in_thread
from ..drift import build_profile
from ..logs import JsonFormatter, LokiHandler, PredictionLog
from ..monitor import ModelMonitor
from ..pipelines import LOGGER as PIPELINE_LOGGER
from ..pipelines import PipelineMonitor
from ..quality import Quality, baseline_metrics
from ..resources import FakeNVML, ResourceMonitor, start_resource_monitor
from ..rules.config import config_for, duration_seconds
from ..versions import TrafficSplit, control_response
from . import standard_incidents  # noqa: F401  (registers drift, errors, latency, quality)
from .canary import CANARY, Canary
from .incidents import INCIDENTS, IncidentRunner, console, positive_seconds
from .pipeline import BATCHES, PIPELINE, DemoPipeline
from .retrain import load_artifact
from .textgen import start_text_endpoint  # registers ttft
from .workload import LateGroundTruth, RoutedService, SyntheticService, Traffic, linear_contributions, train

if TYPE_CHECKING:
    from ..otel import Tracing

MODEL, VERSION = "demo-classifier", "1.0.0"
SHADOW = "1.2.0-shadow"
REGRESSOR = "demo-regressor"  # a second model so the regression panels (MAE, RMSE) show data too
LOGGER = "mlscope.demo.predictions"
PIPELINE_INTERVAL_S = {"fast": 60.0, "default": 300.0}  # how often the demo's feature pipeline runs
SAMPLE_RATE = 0.2  # the trace sampler's and the prediction log's own rate (lines: sampled traces + the log's 20 %)
SERVICE_NAME = "mlscope-demo"
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

CONTROL_TOKEN = "control-token"  # in the state folder: the bearer token of the demo's /traffic endpoint
PREDICTION_LOG = "predictions.jsonl"  # the prediction lines without Loki (the lineage reads them too)


def control_token(path: Path) -> str:
    """The token in ``path``, created (random, mode 600) the first time."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class DemoService:
    """The demo's model, monitor, traffic, late labels, logs and resources on one registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    state_dir: Path = Path(".state/demo")
    profile: str = "fast"
    rate: float = 20.0
    loki_url: str | None = None
    simulated_gpus: int = 2
    # Host metrics too (off when a resource exporter beside the demo already publishes them).
    host_resources: bool = True
    schedule: bool = True
    base_error_rate: float = 0.01
    bad_input_rate: float = 0.02
    say: Callable[[str], None] = console  # where the incident lines go
    # Streams per second of the simulated generative endpoint (mlscope.demo.textgen).
    text_rate: float = 4.0
    # Export traces over OTLP: None means when an OTLP endpoint variable is set.
    traces: bool | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.incidents = IncidentRunner(self, say=self.say)

    def start(self) -> DemoService:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tracing = self._tracing()
        provider = None if self.tracing is None else self.tracing.provider
        tracer = None if provider is None else provider.get_tracer("mlscope.demo")
        trained = train("breast_cancer")
        classes = [int(c) for c in trained.pipeline.classes_]
        windows = {w: duration_seconds(w) for w in config_for(self.profile).profile.quality_windows}
        self.quality = Quality(self.state_dir / "quality.sqlite", registry=self.registry, windows=windows)
        validation = baseline_metrics("classification", trained.y_test, trained.pipeline.predict(trained.x_test),
                                      trained.pipeline.predict_proba(trained.x_test), classes)
        references = {version: build_profile(
            trained.x_train, columns=trained.feature_names, model=MODEL, model_version=version,
            output=trained.pipeline.predict(trained.x_train), labels=trained.y_test,
            proba=trained.pipeline.predict_proba(trained.x_test), classes=classes,
            attributions=linear_contributions(trained.pipeline, trained.x_train)) for version in (VERSION, CANARY)}
        for version in references:
            self.quality.set_baseline(MODEL, version, validation)
        reference = references[VERSION]
        self.log_handler = self._log_handler()
        logging.getLogger(LOGGER).addHandler(self.log_handler)
        logging.getLogger(LOGGER).propagate = False
        self.monitor = ModelMonitor(MODEL, VERSION, registry=self.registry, reference=reference,
                                    quality=self.quality, classes=classes,
                                    prediction_log=PredictionLog(LOGGER, sample_rate=SAMPLE_RATE,
                                                                 slow_seconds=0.25),
                                    # The training set's fingerprint, as its profile's source_hash records it
                                    # (mlscope.drift.training_data_fingerprint): not the profile's own hash.
                                    training_data_fingerprint=reference.source_hash,
                                    metadata={"dataset": "breast_cancer", "owner": "demo", "simulated": "true"},
                                    tracing=provider or False, role="stable",
                                    # A shadow answers every request of the stable version (SHADOW, a model
                                    # trained on another split): its answers are compared, never served.
                                    shadow_pending=10_000, shadow_ttl_s=60.0, attribution_window_s=duration_seconds(
                                        config_for(self.profile).profile.drift_windows[0]))
        self.service = SyntheticService(trained, self.monitor, seed=1, tracer=tracer,
                                        shadow=(SHADOW, train("breast_cancer", seed=1).pipeline))
        self.service.faults.error_rate = self.base_error_rate
        self.service.faults.missing_rate = self.bad_input_rate
        self.split = TrafficSplit(MODEL, {VERSION: 1.0, CANARY: 0.0}, registry=self.registry, seed=4)
        canary = self.monitor.for_version(CANARY, role="canary", reference=references[CANARY], shadow_pending=0)
        self.canary = Canary(self.split, SyntheticService(trained, canary, seed=3), VERSION)
        self.control_token = control_token(self.state_dir / CONTROL_TOKEN)
        self.truth = LateGroundTruth(self.monitor.record_outcome, delay_s=5.0, jitter_s=10.0, fraction=0.8,
                                     classes=tuple(classes)).start()
        self.routed = RoutedService({VERSION: self.service, CANARY: self.canary.service}, self.split)
        self.traffic = Traffic(self.routed, rate=self.rate, on_prediction=self.truth.schedule).start()
        self._start_regressor(provider, tracer)
        self._start_pipeline(reference)
        # The simulated streaming text endpoint (mlscope.genai): its feedback joins through the same store.
        self.text = start_text_endpoint(self.registry, self.quality, rate=self.text_rate, tracing=provider or False)
        self.resources: ResourceMonitor = start_resource_monitor(
            self.registry, host=self.host_resources, nvml=FakeNVML.demo(self.simulated_gpus, pids=(os.getpid(),)))
        loops = ([self.incidents.run_schedule] if self.schedule else []) + [self.incidents.expire, self.pipeline.loop]
        for target in loops + [self._buggy_client]:
            thread = threading.Thread(target=target, args=(self._stop,), name=f"mlscope-demo-{target.__name__}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _start_pipeline(self, reference: Any) -> None:
        interval = PIPELINE_INTERVAL_S.get(self.profile, PIPELINE_INTERVAL_S["default"])
        logging.getLogger(PIPELINE_LOGGER).addHandler(self.log_handler)
        logging.getLogger(PIPELINE_LOGGER).setLevel(logging.INFO)
        monitor = PipelineMonitor(PIPELINE, registry=self.registry, owner="demo", expected_interval_s=interval,
                                  reference=reference)
        self.pipeline = DemoPipeline(self.service, monitor, self.state_dir / BATCHES, interval_s=interval)

    def deploy(self, version: str, fingerprint: str = "") -> str:
        """Serve ``version`` (trained by :mod:`mlscope.demo.retrain` into the state folder) in place of the current
        one: its monitor carries the run's fingerprint; the previous version is retired. ``fingerprint``: the
        alert's that caused the retraining (the split's change names it)."""
        artifact = load_artifact(self.state_dir, version)
        trained = dataclasses.replace(self.service.trained, pipeline=artifact.pipeline)
        classes = [int(c) for c in artifact.pipeline.classes_]
        self.quality.set_baseline(MODEL, version, baseline_metrics(
            "classification", trained.y_test, artifact.pipeline.predict(trained.x_test),
            artifact.pipeline.predict_proba(trained.x_test), classes))
        monitor = self.monitor.for_version(
            version, reference=artifact.profile, training_data_fingerprint=artifact.profile.source_hash,
            role=self.monitor.role, metadata={"dataset": "breast_cancer", "owner": "demo", "simulated": "true",
                                              "dataset_version": str(artifact.manifest.get("dataset_version", ""))})
        previous, self.monitor = self.monitor, monitor
        self.service.monitor, self.service.trained = monitor, trained
        if artifact.shadow is not None:  # the shadow retrained with it: compared with its own stable (a new pair)
            self.service.shadow = (SHADOW, artifact.shadow)
        # The split routes the stable share to the new version, under its own name; the canary compares with it.
        self.routed.services[version] = self.service
        self.split.replace(previous.model_version, version, reason=f"retrained: {artifact.manifest.get('run_id')}",
                           fingerprint=fingerprint)
        self.canary.stable = version
        previous.retire()
        self.say(f"{MODEL} {version} serves now, in place of {previous.model_version} (training run "
                 f"{artifact.manifest.get('run_id')}, fingerprint {artifact.profile.source_hash})")
        return previous.model_version

    def _tracing(self) -> Tracing | None:
        """Span export when asked (or an OTLP endpoint is set); without the otel extra, a line says so."""
        wanted = self.traces if self.traces is not None else any(os.environ.get(v) for v in OTLP_ENDPOINT_VARIABLES)
        if not wanted:
            return None
        try:
            from ..otel import configure_tracing
        except ImportError as exc:  # MissingExtra: its message names the extra to install
            self.say(f"traces off: {exc}")
            return None
        tracing = configure_tracing(SERVICE_NAME, registry=self.registry, sampler_ratio=SAMPLE_RATE,
                                    set_global=False)
        endpoint = next((os.environ[v] for v in reversed(OTLP_ENDPOINT_VARIABLES) if os.environ.get(v)),
                        "the default endpoint")
        self.say(f"traces on: OTLP to {endpoint}, {SAMPLE_RATE:.0%} of requests sampled")
        return tracing

    def _start_regressor(self, provider: Any, tracer: Any) -> None:
        trained = train("diabetes")
        self.quality.set_baseline(REGRESSOR, VERSION, baseline_metrics(
            "regression", trained.y_test, trained.pipeline.predict(trained.x_test)))
        monitor = ModelMonitor(REGRESSOR, VERSION, task="regression", registry=self.registry, quality=self.quality,
                               prediction_log=PredictionLog(LOGGER, sample_rate=SAMPLE_RATE, slow_seconds=0.25),
                               metadata={"dataset": "diabetes", "owner": "demo", "simulated": "true"},
                               tracing=provider or False)
        self.regressor_truth = LateGroundTruth(monitor.record_outcome, delay_s=5.0, jitter_s=10.0,
                                               fraction=0.8).start()
        self.regressor_traffic = Traffic(SyntheticService(trained, monitor, seed=2, tracer=tracer), rate=self.rate / 4,
                                         on_prediction=self.regressor_truth.schedule).start()

    def _log_handler(self) -> logging.Handler:
        if self.loki_url:
            return LokiHandler(self.loki_url, env="demo", registry=self.registry,
                               spool_dir=self.state_dir / "log-spool")
        handler = logging.FileHandler(self.state_dir / PREDICTION_LOG)
        handler.setFormatter(JsonFormatter(static={"simulated": True}))
        return handler

    # -- incidents ------------------------------------------------------------------------------

    def inject(self, name: str, seconds: float) -> None:
        """Start incident ``name`` (any registered one) now for ``seconds`` (it ends by itself)."""
        INCIDENTS.get(name)
        positive_seconds(seconds)
        self.incidents.inject(name, seconds)

    def active(self) -> dict[str, float]:
        """Incidents in progress and the seconds they have left."""
        return self.incidents.active()

    def _buggy_client(self, stop: threading.Event) -> None:
        """Now and then a caller hands the monitor garbage: counted as invalid input, never raised."""
        bad_calls = (lambda: self.monitor.record_prediction("n/a"),  # type: ignore[arg-type]  # garbage on purpose
                     lambda: self.monitor.record_prediction(0.01, output=1, score=float("nan")))
        n = 0
        while not stop.wait(5.0):
            bad_calls[n % len(bad_calls)]()
            n += 1

    def stop(self) -> None:
        self._stop.set()
        for running in (self.traffic, self.truth, self.regressor_traffic, self.regressor_truth, self.text):
            running.stop()
        self.resources.stop()
        logging.getLogger(LOGGER).removeHandler(self.log_handler)
        logging.getLogger(PIPELINE_LOGGER).removeHandler(self.log_handler)
        self.log_handler.close()
        self.quality.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def serve(demo: DemoService, port: int, addr: str = "127.0.0.1") -> ThreadingHTTPServer:
    """``GET /metrics`` (text or OpenMetrics), ``GET /faults``, ``POST /faults {"incident", "seconds"}``, ``POST
    /models {"model_version"}`` (serve a version the retraining job trained), and the traffic split's control
    endpoint on ``/traffic`` (:mod:`mlscope.versions.control`)."""

    class Handler(BaseHTTPRequestHandler):
        def _control(self) -> bool:
            if not self.path.startswith("/traffic"):
                return False
            length = min(int(self.headers.get("Content-Length") or 0), 65536)
            self._json(*control_response({MODEL: demo.split}, demo.control_token, self.command, self.path,
                                         self.headers.get("Authorization"), self.rfile.read(length),
                                         client=self.client_address[0]))
            return True

        def do_PUT(self) -> None:
            if not self._control():
                self._json(404, {"error": "not found"})

        def do_GET(self) -> None:
            if self._control():
                return
            if self.path.startswith("/metrics"):
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, encoder(demo.registry), content_type)
            elif self.path == "/faults":
                incidents = {incident.name: incident.description for incident in INCIDENTS}
                schedule = [{"incident": incident.name, "offset_s": offset} for offset, incident in INCIDENTS.plan()]
                self._json(200, {"active": demo.active(), "incidents": incidents, "schedule": schedule})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self._control():
                return
            if self.path == "/models":
                self._deploy()
                return
            if self.path != "/faults":
                self._json(404, {"error": "not found"})
                return
            try:
                body = json.loads(self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 4096)))
                demo.inject(str(body["incident"]), float(body.get("seconds", 60)))
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"active": demo.active()})

        def _deploy(self) -> None:
            try:
                body = json.loads(self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 4096)))
                previous = demo.deploy(str(body["model_version"]), str(body.get("fingerprint") or ""))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                self._json(400, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._json(200, {"serving": demo.monitor.model_version, "retired": previous})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._reply(status, json.dumps(body).encode(), "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            reply(self, status, body, content_type)

        def log_message(self, *args: Any) -> None:
            pass

    return serve_in_thread(Handler, port, addr, "mlscope-demo-http")


def inject_remote(url: str, incident: str, seconds: float) -> dict[str, Any]:
    """Ask a running demo (``http://127.0.0.1:8000``) to start an incident."""
    positive_seconds(seconds)
    try:
        response = requests.post(url.rstrip("/") + "/faults", json={"incident": incident, "seconds": seconds},
                                 timeout=10)
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL):
        raise ValueError(f"--url {url!r} is not an http:// URL (the demo's is printed by `mlscope up`)") from None
    except requests.RequestException as exc:
        reason = "no answer within 10 s" if isinstance(exc, requests.Timeout) else "cannot connect"
        raise ValueError(f"no demo answers at {url} ({reason}); is `mlscope up --demo` running? Its URL is "
                         "printed at start") from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:  # requests' JSONDecodeError: an answer that is not JSON is not the demo's
        raise ValueError(f"{url} answered {response.status_code} without JSON: is it the demo's URL?") from None
    if response.status_code == 404:  # the demo answers every incident on /faults: another server
        raise ValueError(f"{url} has no /faults (404: {body.get('error', response.text)}): is it the demo's URL? "
                         "`mlscope up --demo` prints it")
    if response.status_code != 200:
        raise ValueError(body.get("error", response.text))
    return body


__all__ = ["DemoService", "INCIDENTS", "serve", "inject_remote"]
