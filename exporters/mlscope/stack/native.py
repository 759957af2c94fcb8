"""Run the stack natively (no container engine): the same provisioning files as docker compose.

``mlscope up`` writes its runtime configuration into a state directory (scrape
jobs only for what actually runs, so no alert fires for what was never
started), starts Prometheus and Alertmanager from PATH, Loki, Tempo and Grafana
when their binaries are found, and mlscope's exporters; prints the URLs and stops
everything on Ctrl-C or ``mlscope down``. Data (Prometheus TSDB, Alertmanager
silences, the quality store) persists in the state directory.
"""
from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from ..alerts import AlertStore
from ..exposition import start_metrics_server
from ..rules import RuleConfig, overrides, render
from ..rules.config import Links, duration_seconds
from ..targets import JOB, TARGETS_DIR_ENV, Target
from . import nativeconf, promconfig, servers
from .alertreceiver import AlertCommand, AlertReceiver, load_commands, make_server
from .amconfig import write_alertmanager_config
from .assets import asset
from .modelservers import model_server_relabelling
from .targets import Listed, TargetsFolder, native_folder

PID_FILE = "mlscope.pid"
RECEIVER_CONFIG = "alerting/alert-receiver.yml"
# The compose demo's control endpoint (alerting/alert-receiver.yml as shipped): no such host natively.
COMPOSE_DEMO_URL = "http://demo:8000"


@dataclass
class Ports:
    prometheus: int = 9090
    alertmanager: int = 9093
    pushgateway: int = 9091
    alert_receiver: int = 9095
    quality_exporter: int = 9102
    resource_exporter: int = 9839
    loki: int = 3100
    grafana: int = 3000
    demo: int = 8000
    tempo: int = 3200
    tempo_otlp_grpc: int = 4317
    tempo_otlp_http: int = 4318


def _without_tempo() -> str:
    """What runs without a native Tempo: the user's own OTLP endpoint, passed through, or no spans."""
    from ..demo.service import OTLP_ENDPOINT_VARIABLES

    given = [f"{name}={os.environ[name]}" for name in OTLP_ENDPOINT_VARIABLES if os.environ.get(name)]
    if given:
        return f"the demo's spans go where you set: {', '.join(given)} (passed through)"
    return "no trace backend: no exporter endpoint is set, the demo exports no spans"


@dataclass
class NativeStack:
    state_dir: Path
    demo: bool = True
    profile: str = "fast"
    ports: Ports = field(default_factory=Ports)
    rate: float = 20.0
    # Where the alerts' runbook links point ("" = this stack's alert receiver, /runbooks/).
    runbook_base_url: str = ""
    scrape: Sequence[Target] = ()
    # The user's alert commands (None: the stack folder's alerting/alert-receiver.yml, when it has one).
    receiver_config: Path | None = None
    _servers: list[servers.Server] = field(default_factory=list)
    _http: list[Any] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)
    _own_targets: list[Listed] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()

    def _say(self, message: str) -> None:
        print(f"mlscope: {message}", flush=True)

    # -- pieces ---------------------------------------------------------------------------------

    def links(self) -> Links:
        """Notification links into this stack: its alert receiver's runbooks (or ``runbook_base_url``), its Grafana."""
        runbooks = self.runbook_base_url or f"http://127.0.0.1:{self.ports.alert_receiver}/runbooks"
        return Links(runbook_base_url=runbooks.rstrip("/"), grafana_base_url=f"http://127.0.0.1:{self.ports.grafana}")

    def _rules_config(self) -> Path | None:
        """The stack folder's own rule settings (``alerting/rules-config.yml``), when it has them."""
        try:
            return asset(f"alerting/{overrides.FILE_NAME}")
        except FileNotFoundError:
            return None

    def rule_config(self) -> RuleConfig:
        """The profile's rule configuration with the stack folder's own settings."""
        return overrides.configured(self.profile, overrides.load(self._rules_config()))

    def _write_rules(self) -> list[Path]:
        rules_dir = self.state_dir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in render(self.profile, self.links(), overrides.load(self._rules_config())).items():
            (rules_dir / name).write_text(text)
            paths.append(rules_dir / name)
        return paths

    def _check_ports(self, optional: dict[str, bool]) -> None:
        wanted = {"prometheus": self.ports.prometheus, "alertmanager": self.ports.alertmanager,
                  "alert receiver": self.ports.alert_receiver, "quality exporter": self.ports.quality_exporter,
                  "resource exporter": self.ports.resource_exporter}
        if self.demo:
            wanted["demo model"] = self.ports.demo
        wanted.update({name: getattr(self.ports, name) for name, found in optional.items() if found})
        if optional.get("tempo"):
            wanted.update({"tempo OTLP gRPC": self.ports.tempo_otlp_grpc,
                           "tempo OTLP HTTP": self.ports.tempo_otlp_http})
        for name, port in wanted.items():
            if servers.port_in_use(port):
                raise servers.ServerError(f"port 127.0.0.1:{port} ({name}) is already in use; "
                                          f"stop what uses it or choose another port (see `mlscope up --help`)")

    def _own_receiver_config(self) -> Path | None:
        """The user's alert commands: ``--receiver-config``, else the stack folder's ``alerting/alert-receiver.yml``."""
        if self.receiver_config is not None:
            return Path(self.receiver_config)
        try:
            return asset(RECEIVER_CONFIG)
        except FileNotFoundError:
            return None

    def receiver_commands(self, loki: str | None = None) -> dict[str, AlertCommand]:
        """The receiver's alert commands: with the demo, ``mlscope rollback`` on the demo's traffic split and the
        demo's retraining job (``mlscope demo retrain``) on drift and quality alerts (written to the state
        folder's ``alert-receiver.yml``); then the user's, which win per alert name. The user's entries that
        address the compose demo (``http://demo:8000``, the shipped file's) are the compose network's and left
        out here."""
        commands: dict[str, AlertCommand] = {}
        if self.demo:
            from ..demo.retrain import retrain_command
            from ..demo.service import CONTROL_TOKEN

            demo = f"http://127.0.0.1:{self.ports.demo}"
            config = demo_receiver_config(demo, self.state_dir / "demo" / CONTROL_TOKEN)
            pushgateway = f"127.0.0.1:{self.ports.pushgateway}" if _has(servers.PUSHGATEWAY_BINARIES) else None
            config["alert_commands"].update(retrain_command(
                self.state_dir / "demo", demo, pushgateway, f"http://{loki}/loki/api/v1/push" if loki else None))
            path = self.state_dir / "alert-receiver.yml"
            promconfig.write_config(path, config)
            commands.update(load_commands(path))
        own = self._own_receiver_config()
        if own is not None:
            try:
                mine = load_commands(own)
            except (OSError, ValueError) as exc:
                raise servers.ServerError(f"the alert receiver's configuration {own}: {exc}") from None
            commands.update({name: c for name, c in mine.items() if COMPOSE_DEMO_URL not in c.argv})
        return commands

    def _start_alert_receiver(self, loki: str | None) -> str:
        out = (self.state_dir / "alerts.jsonl").open("a")
        self._closers.append(out)
        base = f"http://127.0.0.1:{self.ports.alert_receiver}"
        registry = CollectorRegistry()
        self._receiver = AlertReceiver(
            commands=self.receiver_commands(loki),
            output=out, store=AlertStore(self.state_dir / "alerts.sqlite"),
            loki_url=f"http://{loki}/loki/api/v1/push" if loki else None, page_url=base,
            prometheus_url=f"http://127.0.0.1:{self.ports.prometheus}", registry=registry,
            snapshots=self._snapshot_worker(loki, base, registry), feedback_token=self._feedback_token(),
            rules_settings=overrides.load(self._rules_config()))
        self._closers.append(self._receiver)
        server = make_server(self._receiver, self.ports.alert_receiver)
        threading.Thread(target=server.serve_forever, name="mlscope-alert-receiver", daemon=True).start()
        self._http.append(server)
        return f"127.0.0.1:{self.ports.alert_receiver}"

    def _snapshot_worker(self, loki: str | None, base: str, registry: CollectorRegistry) -> Any:
        """Incident snapshots in the state directory's snapshots/ (None, said, without mlscope[reports])."""
        from .._runtime import MissingExtra
        from ..reports.worker import snapshot_worker

        try:
            runbooks: Path | None = asset("alerting/runbooks")
        except FileNotFoundError:
            runbooks = None
        try:
            return snapshot_worker(self.state_dir / "snapshots", prometheus_url=f"http://127.0.0.1:{self.ports.prometheus}",
                                   loki_url=f"http://{loki}" if loki else "", profile=self.profile,
                                   runbooks=runbooks, receiver_url=base, registry=registry,
                                   min_interval_s=30.0 if self.profile == "fast" else 300.0,
                                   log_files=self.lineage_files())
        except MissingExtra as exc:
            self._say(f"no incident snapshots: {exc}")
            return None

    def lineage_files(self) -> tuple[Path, ...]:
        """The log files a snapshot's lineage reads (without Loki, the only copy): the demo's training runs and
        predictions, the receiver's own lines (the alerts that triggered a retraining)."""
        from ..demo.retrain import LOG_FILE
        from ..demo.service import PREDICTION_LOG

        demo = self.state_dir / "demo"
        return (demo / LOG_FILE, demo / PREDICTION_LOG, self.state_dir / "alerts.jsonl") if self.demo \
            else (self.state_dir / "alerts.jsonl",)

    def _start_alertmanager(self, receiver: str) -> str | None:
        try:
            servers.find_binary(servers.ALERTMANAGER_BINARIES)
        except servers.ServerError as exc:
            self._say(f"Alertmanager not started: {exc}")
            return None
        config = write_alertmanager_config(self.state_dir / "alertmanager.yml", asset("alerting/alertmanager.yml"),
                                           f"http://{receiver}/alerts", fast=self.profile == "fast",
                                           receiver_page_url=f"http://{receiver}")
        self._say("starting Alertmanager...")
        server = servers.alertmanager(config, self.state_dir / "alertmanager", self.ports.alertmanager)
        self._servers.append(server.start())
        return f"127.0.0.1:{self.ports.alertmanager}"

    def _start_pushgateway(self) -> str | None:
        """Short-lived jobs push here (mlscope.pipelines); groups persist in the state directory."""
        if self._optional_binary("Pushgateway", servers.PUSHGATEWAY_BINARIES, servers.PUSHGATEWAY_HINT,
                                 "short-lived jobs' pushes fail (counted; the jobs go on); long-running "
                                 "pipelines can still be scraped") is None:
            return None
        self._say("starting the Pushgateway...")
        server = servers.pushgateway(self.state_dir / "pushgateway", self.ports.pushgateway)
        self._servers.append(server.start())
        return f"127.0.0.1:{self.ports.pushgateway}"

    def _start_quality_exporter(self) -> str:
        from ..quality import Quality
        from ..quality.server import QualityServer

        registry = CollectorRegistry()
        windows = {w: duration_seconds(w) for w in self.rule_config().profile.quality_windows}
        quality = Quality(self.state_dir / "quality-exporter.sqlite", registry=registry, windows=windows)
        self._closers.append(quality)
        server = QualityServer("127.0.0.1", self.ports.quality_exporter, quality, registry).start()
        self._http.append(server)
        return f"127.0.0.1:{self.ports.quality_exporter}"

    def _start_resource_exporter(self) -> str:
        from ..resources import start_resource_monitor

        registry = CollectorRegistry()
        self._closers.append(start_resource_monitor(registry, process=False))
        server, _ = start_metrics_server(self.ports.resource_exporter, registry=registry)
        self._http.append(server)
        return f"127.0.0.1:{self.ports.resource_exporter}"

    def _start_demo(self, loki: str | None, tempo: str | None = None) -> str:
        from ..demo.service import DemoService, serve

        self._point_spans_at(tempo)
        self._say("training the demo model (scikit-learn breast_cancer, bundled) and its reference profile...")
        demo = DemoService(state_dir=self.state_dir / "demo", profile=self.profile, rate=self.rate,
                           loki_url=f"http://{loki}/loki/api/v1/push" if loki else None, host_resources=False)
        self._closers.append(demo.start())
        self._http.append(serve(demo, self.ports.demo))
        return f"127.0.0.1:{self.ports.demo}"

    def _optional_binary(self, name: str, binaries: tuple[str, ...], hint: str, without: str) -> str | None:
        """The binary of an optional server; None, after saying how to get it and what runs without it."""
        try:
            return servers.find_binary(binaries)
        except servers.ServerError:
            self._say(f"{name} not started: no `{binaries[0]}` binary on PATH ({hint}); {without}")
            return None

    def _start_in_root(self, name: str, binary: str, config: dict[str, Any], port: int, root: Path,
                       timeout: float) -> str:
        """Write ``config`` to ``<state>/<name>.yml`` and start ``binary -config.file=...`` ready on ``/ready``,
        in its own data folder ``root``: whatever a release writes to a relative path stays there."""
        path = promconfig.write_config(self.state_dir / f"{name}.yml", config)
        self._say(f"starting {name.capitalize()}...")
        server = servers.Server(name, [binary, f"-config.file={path.resolve()}"], port,
                                self.state_dir / f"{name}.log", ready_path="/ready", cwd=root)
        self._servers.append(server.start(timeout=timeout))
        return f"127.0.0.1:{port}"

    def _start_loki(self) -> str | None:
        where = (f"the demo's prediction log goes to {self.state_dir / 'demo' / 'predictions.jsonl'}"
                 if self.demo else "services' LokiHandler lines are queued and retried until a Loki answers")
        binary = self._optional_binary("Loki", nativeconf.LOKI_BINARIES, nativeconf.LOKI_HINT, where)
        if binary is None:
            return None
        config = nativeconf.loki_config(self.state_dir, self.ports.loki, servers.free_port())
        return self._start_in_root("loki", binary, config, self.ports.loki, nativeconf.loki_root(self.state_dir), 60)

    def _point_spans_at(self, tempo: str | None) -> None:
        """With a native Tempo, the demo (in this process) exports its spans there over OTLP/HTTP, unless the
        OTEL_EXPORTER_OTLP_* variables already say where; without one, nothing is set."""
        if tempo is None:
            return
        for name, value in nativeconf.otlp_environment(self.ports.tempo_otlp_http).items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("OTEL_SERVICE_NAME", "mlscope-demo")

    def _start_tempo(self, prometheus: str) -> str | None:
        binary = self._optional_binary("Tempo", nativeconf.TEMPO_BINARIES, nativeconf.TEMPO_HINT, _without_tempo())
        if binary is None:
            return None
        ports = nativeconf.TempoPorts(http=self.ports.tempo, otlp_grpc=self.ports.tempo_otlp_grpc,
                                      otlp_http=self.ports.tempo_otlp_http, grpc=servers.free_port(),
                                      memberlist=servers.free_port())
        config = nativeconf.tempo_config(self.state_dir, ports, prometheus)
        return self._start_in_root("tempo", binary, config, self.ports.tempo, nativeconf.tempo_root(self.state_dir),
                                   90)

    def _start_grafana(self, hosts: dict[str, str]) -> str | None:
        binary = self._optional_binary(
            "Grafana", nativeconf.GRAFANA_BINARIES, nativeconf.GRAFANA_HINT,
            f"the dashboards are in {asset('provisioning/grafana/dashboards').resolve()}/ for any Grafana to import")
        if binary is None:
            return None
        provisioning = nativeconf.grafana_provisioning(self.state_dir / "grafana" / "provisioning", hosts)
        password = self._grafana_password()
        env = nativeconf.grafana_environment(self.state_dir, self.ports.grafana, provisioning, password)
        argv = [binary, "server"] if Path(binary).name == "grafana" else [binary]
        home = nativeconf.grafana_homepath(binary)
        if home:
            argv.append(f"--homepath={home}")
        self._say("starting Grafana...")
        server = servers.Server("grafana", argv, self.ports.grafana, self.state_dir / "grafana.log",
                                ready_path="/api/health", env=env)
        self._servers.append(server.start(timeout=90))
        return f"127.0.0.1:{self.ports.grafana}"

    def _feedback_token(self) -> str:
        """The bearer token of the receiver's POST /feedback/false-positive (state directory's feedback-token)."""
        return self._kept_secret("feedback-token")

    def _grafana_password(self) -> str:
        """MLSCOPE_GRAFANA_ADMIN_PASSWORD, else a random one kept (mode 600) in the state directory."""
        if os.environ.get("MLSCOPE_GRAFANA_ADMIN_PASSWORD"):
            return os.environ["MLSCOPE_GRAFANA_ADMIN_PASSWORD"]
        return self._kept_secret("grafana-admin-password")

    def _kept_secret(self, name: str) -> str:
        """A random secret kept (mode 600) in the state directory's file ``name``, made on first use."""
        path = self.state_dir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(18))
            path.chmod(0o600)
        return path.read_text().strip()

    # -- the whole stack ------------------------------------------------------------------------

    def start(self) -> None:
        running = running_pid(self.state_dir)
        if running is not None:
            raise servers.ServerError(f"a stack is already running for {self.state_dir} (pid {running}); "
                                      "stop it with `mlscope down` or use another --state-dir")
        servers.find_binary(servers.PROMETHEUS_BINARIES)  # fail before starting anything
        profile = self.rule_config().profile  # a bad alerting/rules-config.yml too
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._owns_pid_file = False
        found = {name: _has(binaries) for name, binaries in
                 (("loki", nativeconf.LOKI_BINARIES), ("grafana", nativeconf.GRAFANA_BINARIES),
                  ("tempo", nativeconf.TEMPO_BINARIES), ("pushgateway", servers.PUSHGATEWAY_BINARIES))}
        self._check_ports(found)
        targets_dir = self._add_targets()
        prometheus_target = f"127.0.0.1:{self.ports.prometheus}"
        loki = self._start_loki()  # first: the alert receiver ships its lines there
        tempo = self._start_tempo(prometheus_target)  # before the demo, whose spans go there
        targets = {"prometheus": prometheus_target, "mlscope-alert-receiver": self._start_alert_receiver(loki),
                   "mlscope-quality-exporter": self._start_quality_exporter(),
                   "mlscope-resource-exporter": self._start_resource_exporter()}
        alertmanager = self._start_alertmanager(targets["mlscope-alert-receiver"])
        if alertmanager:
            targets["alertmanager"] = alertmanager
        if loki:
            targets["loki"] = loki
        if tempo:
            targets["tempo"] = tempo
        pushgateway = self._start_pushgateway()
        if pushgateway:
            targets[promconfig.PUSHGATEWAY_JOB] = pushgateway
        if self.demo:
            targets["mlscope-demo"] = self._start_demo(loki, tempo)
        jobs = [promconfig.pushgateway_job(target) if job == promconfig.PUSHGATEWAY_JOB
                else promconfig.scrape_job(job, targets=[target]) for job, target in targets.items()]
        jobs.append(promconfig.scrape_job(JOB, file_sd=targets_dir / "*.yml",
                                          metric_relabel_configs=model_server_relabelling()))
        config = promconfig.write_config(self.state_dir / "prometheus.yml", promconfig.prometheus_config(
            profile, jobs, self._write_rules(), alertmanagers=[alertmanager] if alertmanager else []))
        self._say("starting Prometheus...")
        prometheus = servers.prometheus(config, self.state_dir / "prometheus", self.ports.prometheus,
                                        lifecycle=True, alert_resend_delay=profile.alert_resend_delay,
                                        remote_write_receiver=tempo is not None)
        self._servers.append(prometheus.start())
        hosts = {"prometheus:9090": prometheus_target}
        hosts.update({"alertmanager:9093": alertmanager} if alertmanager else {})
        hosts.update({"loki:3100": loki} if loki else {})
        hosts.update({"tempo:3200": tempo} if tempo else {})
        grafana = self._start_grafana(hosts)
        self._receiver.grafana_running = grafana is not None  # what an alert's page says of its dashboard link
        (self.state_dir / PID_FILE).write_text(str(os.getpid()))
        self._owns_pid_file = True
        self._print_urls(targets, grafana)

    def _add_targets(self) -> Path:
        """The targets folder with ``--scrape``'s targets added (kept for later starts), before anything starts."""
        folder = TargetsFolder(native_folder(self.state_dir))
        for target in self.scrape:
            known = folder.add_unless_scraped(target)
            if known is not None:
                self._say(f"{target.address} is already a target, as {known.name!r} ({known.describe()}): kept")
        self._own_targets = folder.list()
        return folder.path

    def _print_urls(self, targets: dict[str, str], grafana: str | None) -> None:
        if grafana:
            self._say(f"Grafana           http://{grafana} (admin; password: $MLSCOPE_GRAFANA_ADMIN_PASSWORD or "
                      f"{self.state_dir / 'grafana-admin-password'})")
        for job, target in targets.items():
            self._say(f"{job:<26} http://{target}")
        self._say(f"alert notifications in {self.state_dir / 'alerts.jsonl'} (one line per state change), "
                  f"their pages and the runbooks on http://{targets['mlscope-alert-receiver']}/"
                  + (f", incident snapshots in {self.state_dir / 'snapshots'} and on "
                     f"http://{targets['mlscope-alert-receiver']}/snapshots/" if self._receiver.snapshots else ""))
        folder = native_folder(self.state_dir)
        for listed in self._own_targets:
            self._say(f"{JOB} {listed.name:<11} http://{listed.address} ({listed.path.name})")
        self._say(f"your services: `mlscope targets add NAME=HOST:PORT --state-dir {self.state_dir}`, or start them "
                  f"with {TARGETS_DIR_ENV}={folder} (start_metrics_server registers them); no restart needed")
        if "tempo" in targets:
            endpoint = nativeconf.otlp_environment(self.ports.tempo_otlp_http)["OTEL_EXPORTER_OTLP_ENDPOINT"]
            self._say(f"your services' spans: OTEL_EXPORTER_OTLP_ENDPOINT={endpoint} "
                      f"(OTLP/HTTP; gRPC on 127.0.0.1:{self.ports.tempo_otlp_grpc})")
        if self.demo:
            from ..demo.incidents import schedule_summary

            self._say(f"demo incidents: {schedule_summary()}; "
                      f"`mlscope demo inject drift --url http://127.0.0.1:{self.ports.demo}` for one now")
            logs = " ".join(f"--logs {self.state_dir / name}" for name in (
                "demo/training.jsonl", "demo/predictions.jsonl", "alerts.jsonl"))
            self._say(f"a drift or quality alert retrains the demo model ({self.state_dir / 'alert-receiver.yml'}): "
                      f"`mlscope lineage demo-classifier VERSION --prometheus http://127.0.0.1:{self.ports.prometheus}"
                      f" {logs}` prints a version's chain")
        self._say("running; Ctrl-C or `mlscope down` stops everything")

    def stop(self) -> None:
        """Stop in dependency order: first our HTTP servers (no scrape or webhook reaches a closed store: the
        quality exporter's sqlite, the receiver's record), then what they used (stores, the receiver's Loki
        handler, which still delivers to a running Loki), then the external servers."""
        for http in self._http:
            http.shutdown()
            http.server_close()
        for closer in reversed(self._closers):
            try:
                (closer.stop if hasattr(closer, "stop") else closer.close)()
            except Exception as exc:  # stop the rest whatever one part does
                self._say(f"while stopping: {exc}")
        for server in reversed(self._servers):
            server.stop()
        if getattr(self, "_owns_pid_file", False):
            (self.state_dir / PID_FILE).unlink(missing_ok=True)
        if self._servers or self._http:
            self._say("stopped")

    def exited(self) -> bool:
        """Whether a supervised server has exited, after saying which and why (the stack then stops)."""
        ended = [server for server in self._servers if server.process is not None and server.process.poll() is not None]
        for server in ended:
            self._say(f"{server.exit_reason()}; stopping the stack")
        return bool(ended)

    def run_forever(self) -> None:
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        try:
            self.start()
            while not stopping.wait(1.0):
                if self.exited():
                    stopping.set()
        finally:
            self.stop()


def demo_receiver_config(control_url: str, token_file: Path) -> dict[str, Any]:
    """``alert_commands`` that roll a candidate back through ``mlscope rollback`` (the demo's, or a template)."""
    rollback = [sys.executable, "-m", "mlscope.cli", "rollback", "--url", control_url, "--token-file", str(token_file)]
    return {"alert_commands": {"ModelCandidateWorseThanBaseline": {"command": rollback, "timeout": 30,
                                                                   "on": ["firing"]}}}


def _has(binaries: tuple[str, ...]) -> bool:
    try:
        servers.find_binary(binaries)
    except servers.ServerError:
        return False
    return True


def running_pid(state_dir: Path) -> int | None:
    """The pid of a live ``mlscope up`` of ``state_dir``, or None."""
    pid_file = Path(state_dir).resolve() / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def down(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a running ``mlscope up`` of ``state_dir``; False when none is running."""
    pid_file = Path(state_dir).resolve() / PID_FILE
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_file.exists():  # removed by the stack once everything has stopped
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    print(f"mlscope: process {pid} did not stop within {timeout:.0f}s", file=sys.stderr)
    return False
