"""`mlscope alert-receiver`: the stack's default Alertmanager webhook receiver.

It validates Alertmanager's webhook payload (version 4), files every alert in
its record (:class:`mlscope.alerts.AlertStore`: one row per fingerprint), and
for each **state change** only (not for re-sends: a group re-notification, a
repeat, a second Alertmanager) writes one JSON line (summary, description with
the number, severity, owner, runbook, dashboard, logs and page links) to its
output and, with ``loki_url``, to Loki through :class:`mlscope.logs.LokiHandler`,
and runs the command configured for that alert name. One HTTP server takes the
webhooks and serves the runbooks, a page per alert, the record as JSON and the
receiver's own metrics.
"""
from __future__ import annotations

import contextlib
import hmac
import html
import json
import logging
import mimetypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .._http import reply as send
from ..alerts import feedback, pages
from ..alerts.contract import RESULTS, result_of
from ..alerts.feedback import FINGERPRINT
from ..alerts.record import AlertStore, Seen
from ..catalog import alerting as cat
from ..labels import LabelGuard
from ..logs import JsonFormatter, LokiHandler
from ..reports import ids as snapshot_ids
from ..reports.store import PageStore
from ..reports.worker import SnapshotWorker
from .assets import asset

log = logging.getLogger("mlscope.alert_receiver")

MAX_BODY_BYTES = 4 * 1024 * 1024
TOKEN_ENV = "MLSCOPE_RECEIVER_TOKEN"


def receiver_token() -> str:
    """The bearer token the snapshot pages are served behind: ``$MLSCOPE_RECEIVER_TOKEN`` ("" = none). The one
    place it is read, so ``mlscope alert-receiver`` and ``mlscope up``'s receiver honour it alike."""
    return os.environ.get(TOKEN_ENV, "")
ALERT_KEYS = ("status", "labels", "annotations", "startsAt", "endsAt", "fingerprint")
PAYLOAD_KEYS = ("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "alerts")


class PayloadError(ValueError):
    """An Alertmanager webhook payload that does not follow version 4; ``reason`` is a bounded label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def validate_payload(body: bytes) -> dict[str, Any]:
    """Parse and check a webhook body; raise :class:`PayloadError` naming what is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("invalid_json", str(exc)) from None
    if not isinstance(payload, dict):
        raise PayloadError("not_an_object", type(payload).__name__)
    missing = [k for k in PAYLOAD_KEYS if k not in payload]
    if missing:
        raise PayloadError("missing_field", ", ".join(missing))
    if payload["version"] != "4":
        raise PayloadError("unsupported_version", repr(payload["version"]))
    if not isinstance(payload["alerts"], list):
        raise PayloadError("alerts_not_a_list", type(payload["alerts"]).__name__)
    for i, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or any(k not in alert for k in ALERT_KEYS):
            raise PayloadError("invalid_alert", f"alerts[{i}] lacks one of {ALERT_KEYS}")
        if not isinstance(alert["labels"], dict) or "alertname" not in alert["labels"]:
            raise PayloadError("invalid_alert", f"alerts[{i}] has no alertname label")
        if alert["status"] not in ("firing", "resolved"):
            raise PayloadError("invalid_alert", f"alerts[{i}] status {alert['status']!r}")
    return payload


@dataclass(frozen=True)
class AlertCommand:
    """A command run when an alert of ``alertname`` arrives with one of ``statuses``."""

    argv: tuple[str, ...]
    timeout_s: float = 60.0
    statuses: tuple[str, ...] = ("firing",)


def load_commands(path: Path | None) -> dict[str, AlertCommand]:
    """Read ``alert_commands: {AlertName: {command: [...], timeout: 60, on: [firing]}}`` from YAML."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("alert_commands") or {}, dict):
        raise ValueError(f"{path}: expected alert_commands: {{AlertName: {{command: [...], timeout: 60}}}}")
    commands = {}
    for name, spec in (data.get("alert_commands") or {}).items():
        where = f"{path}: alert_commands.{name}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a mapping with command, timeout and on")
        spec = {("on" if key is True else key): value for key, value in spec.items()}  # YAML 1.1 reads `on` as true
        unknown = set(spec) - {"command", "timeout", "on"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected command, timeout, on")
        argv = spec.get("command")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"{where}.command must be a non-empty list of strings")
        statuses = spec.get("on", ["firing"])
        if not isinstance(statuses, list) or not statuses or not set(statuses) <= {"firing", "resolved"}:
            raise ValueError(f"{where}.on must be a list of firing and/or resolved, got {statuses!r}")
        timeout = spec.get("timeout", 60)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"{where}.timeout must be a positive number of seconds, got {timeout!r}")
        commands[name] = AlertCommand(tuple(argv), float(timeout), tuple(statuses))
    return commands


# Severities whose firing line is informational (the Watchdog's `none`, coverage's `info`).
QUIET_SEVERITIES = ("none", "info")


def line_fields(payload: Mapping[str, Any], alert: Mapping[str, Any], page_url: str = "",
                snapshots: bool = False) -> dict[str, Any]:
    """What one alert's line carries beyond the formatter's fixed keys (``ts``, ``level``, ``model``...);
    ``snapshots``: the receiver writes incident snapshots, so the line names its group's page."""
    labels, annotations = alert["labels"], alert.get("annotations") or {}
    snapshot = snapshot_ids.page_url(page_url, snapshot_ids.page_id(payload)) if snapshots and page_url else ""
    return {
        "alertname": labels["alertname"], "status": alert["status"], "severity": labels.get("severity", ""),
        "owner": labels.get("owner", ""), "summary": annotations.get("summary", ""),
        "description": annotations.get("description", ""), "runbook_url": annotations.get("runbook_url", ""),
        "dashboard": annotations.get("dashboard", ""),
        "dashboard_uid": pages.dashboard_uid(annotations.get("dashboard", "")),
        "logs_url": annotations.get("logs_url", ""),
        "page_url": f"{page_url.rstrip('/')}/alerts/{alert['fingerprint']}" if page_url else "",
        "snapshot_url": snapshot,
        "starts_at": alert["startsAt"], "ends_at": alert["endsAt"], "fingerprint": alert["fingerprint"],
        "receiver": payload["receiver"], "group_key": payload["groupKey"], "labels": labels,
    }


def line_level(alert: Mapping[str, Any]) -> int:
    """``warning`` for a firing alert that asks for action, ``info`` for the rest (resolved, the Watchdog)."""
    quiet = alert["status"] == "resolved" or alert["labels"].get("severity", "") in QUIET_SEVERITIES
    return logging.INFO if quiet else logging.WARNING


PACKAGED_DOCS = Path(__file__).resolve().parent / "docs"


def _found(relative: str) -> Path | None:
    """The stack's folder ``relative`` (absolute: pages and messages name it), or None."""
    try:
        return asset(relative).resolve()
    except FileNotFoundError:
        return None


@dataclass
class AlertReceiver:
    """Handles notifications; independent of HTTP so it can be tested and embedded.

    ``store`` is the record (in memory unless given a file); ``output`` the stream the lines go to
    (stdout by default); ``loki_url`` a Loki push URL the lines are also shipped to (stream labels
    ``app`` = the catalog's LOG_APP, ``model``, ``model_version``, ``level``); ``page_url`` the receiver's
    own address as a person reaches it (lines link to the alert's page there); ``runbooks`` the folder
    served on ``/runbooks/``; ``grafana_running`` what an alert's page says about its dashboard link
    (None: unknown); ``dashboards`` the folder of the dashboards' JSON the page points at without Grafana;
    ``docs`` the documentation pages served on ``/docs/`` (the runbooks link to them);
    ``prometheus_url`` where its PromQL is opened; ``snapshots`` the worker that writes an incident snapshot
    per state-changing group notification (:func:`mlscope.reports.worker.snapshot_worker`), off this path;
    ``token`` a bearer token the snapshot pages are served behind (default :func:`receiver_token`; "" = none).
    """

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    commands: Mapping[str, AlertCommand] = field(default_factory=dict)
    output: Any = None
    store: AlertStore = field(default_factory=AlertStore)
    loki_url: str | None = None
    page_url: str = ""
    runbooks: Path | None = None
    grafana_running: bool | None = None
    dashboards: Path | None = None
    docs: Path | None = None
    prometheus_url: str = ""
    # The bearer token of POST /feedback/false-positive (None: the receiver's `token`; neither: refuse all).
    feedback_token: str | None = None
    snapshots: SnapshotWorker | None = None
    token: str = field(default_factory=receiver_token)
    # The stack folder's rule settings (alerting/rules-config.yml): served runbooks show their thresholds.
    rules_settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.notifications = cat.NOTIFICATIONS.create(self.registry)
        self.state_changes = cat.STATE_CHANGES.create(self.registry)
        self.invalid = cat.INVALID_PAYLOADS.create(self.registry)
        self.command_runs = cat.COMMANDS.create(self.registry)
        self.command_duration = cat.COMMAND_DURATION.create(self.registry)
        self.false_positives = cat.FALSE_POSITIVES.create(self.registry)
        self.feedback_rejected = cat.FEEDBACK_REJECTED.create(self.registry)
        self.guard = LabelGuard({"alertname": 200, "receiver": 20})
        for name in self.commands:  # each result from 0: the first run is an increase, not a new series at 1
            label = self.guard.admit("alertname", name)
            self.command_duration.labels(label)
            for result in RESULTS:
                self.command_runs.labels(label, result)
        self._threads: list[threading.Thread] = []
        self._running: set[tuple[Any, ...]] = set()  # (argv, alert labels) of the commands running now
        self._running_lock = threading.Lock()
        self._formatter = JsonFormatter()
        self._lock = threading.Lock()  # one line at a time on the output
        self.loki = LokiHandler(self.loki_url, name="alert-receiver", registry=self.registry) if self.loki_url else None
        self.runbooks = self.runbooks or _found("alerting/runbooks")
        self.dashboards = self.dashboards or _found("provisioning/grafana/dashboards")
        self.docs = self.docs or PACKAGED_DOCS  # the package's own: a stack folder holds no docs
        self._blocks: dict[str, str] | None = None
        self._start_counters_at_zero()

    def _start_counters_at_zero(self) -> None:
        """The firing/resolved counters of every alert with a runbook or on record, and the false-positive
        counter of every alert on record, exist at 0 from the start: ``increase()`` then sees their first event."""
        books = sorted(p.stem for p in self.runbooks.glob("*.md")) if self.runbooks else []
        on_record = self.store.alertnames()
        for name in dict.fromkeys([*books, *on_record]):
            label = self.guard.admit("alertname", name)
            for status in ("firing", "resolved"):
                self.state_changes.labels(label, status)
        for name in on_record:
            self.false_positives.labels(self.guard.admit("alertname", name))

    def runbook_text(self, alert: str, text: str) -> str:
        """A runbook with its thresholds block rendered from the rule settings in force (``rules_settings``)."""
        if not self.rules_settings:
            return text  # the files' blocks are the built-in configuration's
        from ..rules import reference  # the rule generator: only when a folder has settings of its own
        if self._blocks is None:
            self._blocks = reference.thresholds_blocks(self.rules_settings)
        block = self._blocks.get(alert)
        return text if block is None else reference.with_thresholds(text, block)

    def handle(self, body: bytes) -> tuple[int, str]:
        """Process one webhook request body; returns (HTTP status, message)."""
        try:
            payload = validate_payload(body)
        except PayloadError as exc:
            self.invalid.labels(exc.reason).inc()
            log.warning("rejected webhook payload: %s", exc)
            return 400, str(exc)
        receiver = self.guard.admit("receiver", payload["receiver"])
        changed = False
        for alert in payload["alerts"]:
            name = alert["labels"]["alertname"]
            label = self.guard.admit("alertname", name)
            self.notifications.labels(receiver, label, alert["status"]).inc()
            seen = self.store.observe(alert)
            if seen is not Seen.CHANGE:
                if seen is Seen.STALE:
                    log.info("ignored a late firing of %s %s (its episode %s already resolved)", name,
                             alert["fingerprint"], alert["startsAt"])
                continue
            self.false_positives.labels(label)  # at 0 from the alert's first notification on
            self.state_changes.labels(label, alert["status"]).inc()
            changed = True
            self._log(payload, alert)
            command = self.commands.get(name)
            if command is not None and alert["status"] in command.statuses:
                self._start_command(name, command, alert)
        if changed and self.snapshots is not None:
            self.snapshots.submit(payload)  # never blocks: a bounded queue, rate-limited per group
        return 200, "ok"

    def false_positive(self, body: bytes, authorization: str | None) -> tuple[int, str]:
        """A person's report that a notification was a false alarm (:mod:`mlscope.alerts.feedback`)."""
        try:
            report = feedback.parse(body, authorization, self.feedback_token or self.token or None, self.store)
        except feedback.FeedbackRejected as exc:
            self.feedback_rejected.labels(exc.reason).inc()
            log.warning("refused a false-positive report: %s", exc)
            return exc.status, str(exc)
        if not self.store.mark_false_positive(report.fingerprint, report.starts_at):
            return 200, "already counted (this firing episode was reported before)"
        self.false_positives.labels(self.guard.admit("alertname", report.alertname)).inc()
        self._emit(logging.makeLogRecord({
            "name": "mlscope.alerts", "levelno": logging.INFO, "levelname": "INFO",
            "msg": f"{report.alertname} marked a false positive" + (f": {report.comment}" if report.comment else ""),
            "event": cat.FALSE_POSITIVE_EVENT, "alertname": report.alertname, "fingerprint": report.fingerprint}))
        return 200, "counted"

    def _log(self, payload: Mapping[str, Any], alert: Mapping[str, Any]) -> None:
        labels, annotations = alert["labels"], alert.get("annotations") or {}
        level = line_level(alert)
        self._emit(logging.makeLogRecord({
            "name": "mlscope.alerts", "levelno": level, "levelname": logging.getLevelName(level),
            "msg": f"{labels['alertname']} {alert['status']}{self._after_command(alert)}: "
                   f"{annotations.get('summary', '')}",
            "event": cat.ALERT_EVENT, "model": labels.get("model"), "model_version": labels.get("model_version"),
            **line_fields(payload, alert, self.page_url, self.snapshots is not None)}))

    def _after_command(self, alert: Mapping[str, Any]) -> str:
        """For a resolved alert whose firing ran a command (a rollback resolves the alert it answers): say so."""
        if alert["status"] != "resolved":
            return ""
        runs = [r for r in self.store.commands(alert["fingerprint"])
                if r.status == "firing" and r.starts_at == alert["startsAt"]]
        return f" after its command {runs[-1].result}" if runs else ""

    def _emit(self, record: logging.LogRecord) -> None:
        """One JSON line on the output (and to Loki)."""
        with self._lock:
            stream = self.output or sys.stdout
            stream.write(self._formatter.format(record) + "\n")
            stream.flush()
        if self.loki is not None:
            self.loki.handle(record)

    def close(self) -> None:
        """Deliver what the Loki handler holds (within its shutdown timeout), close the record."""
        if self.snapshots is not None:
            self.snapshots.close()
        if self.loki is not None:
            self.loki.close()
        self.store.close()

    def _start_command(self, name: str, command: AlertCommand, alert: Mapping[str, Any]) -> None:
        """Start ``command`` in a thread, unless it still runs for the same alert's labels (all of them: what it
        is given, so an alert that needs it is never skipped for another's run): then count it skipped."""
        key = (command.argv, tuple(sorted(alert["labels"].items())))
        with self._running_lock:
            running = key in self._running
            self._running.add(key)
        if running:
            self.command_runs.labels(self.guard.admit("alertname", name), "skipped_running").inc()
            self._log_command(alert, command, "skipped_running", None, 0.0, "",
                              "not started: the same command is still running for this alert")
            return
        thread = threading.Thread(target=self._run_single, args=(key, name, command, alert), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run_single(self, key: tuple[Any, ...], name: str, command: AlertCommand, alert: Mapping[str, Any]) -> None:
        try:
            self._run_command(name, command, alert)
        finally:
            with self._running_lock:
                self._running.discard(key)

    def _run_command(self, name: str, command: AlertCommand, alert: Mapping[str, Any]) -> None:
        """Run one command under the contract of :mod:`mlscope.alerts.contract`; record, count and log it."""
        env = {**os.environ, "MLSCOPE_ALERTNAME": name, "MLSCOPE_ALERT_STATUS": alert["status"],
               "MLSCOPE_FINGERPRINT": alert["fingerprint"], "MLSCOPE_STARTS_AT": alert["startsAt"]}
        env.update({f"MLSCOPE_LABEL_{k.upper()}": str(v) for k, v in alert["labels"].items() if k.isidentifier()})
        label = self.guard.admit("alertname", name)
        start = time.monotonic()
        status: int | None = None
        try:
            status, output = run_bounded(command.argv, json.dumps(alert), env, command.timeout_s)
            result = "timeout" if status is None else result_of(status)
            how = f"killed after its {command.timeout_s:g}s timeout" if status is None else f"exited {status}"
        except OSError as exc:
            result, output = "failed", f"could not start: {exc}"
            how = output  # not a timeout: it never ran
        duration = time.monotonic() - start
        self.command_duration.labels(label).observe(duration)
        self.command_runs.labels(label, result).inc()
        self.store.record_command(alert, result, status, duration, output)
        self._log_command(alert, command, result, status, duration, output, how)

    def _log_command(self, alert: Mapping[str, Any], command: AlertCommand, result: str, status: int | None,
                     duration: float, output: str, how: str) -> None:
        labels = alert["labels"]
        level = logging.INFO if result in ("done", "not_applicable", "skipped_running") else logging.WARNING
        self._emit(logging.makeLogRecord({
            "name": "mlscope.alerts", "levelno": level, "levelname": logging.getLevelName(level),
            "msg": f"alert command for {labels['alertname']} {alert['fingerprint']}: {result} ({how})",
            "event": cat.COMMAND_EVENT, "model": labels.get("model"), "model_version": labels.get("model_version"),
            "alertname": labels["alertname"], "fingerprint": alert["fingerprint"], "status": alert["status"],
            "starts_at": alert["startsAt"], "command": list(command.argv), "result": result, "exit_status": status,
            "duration_s": round(duration, 3), "output": output, "labels": labels}))

    def wait_for_commands(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)


OUTPUT_TAIL = 500  # characters of a command's stdout and stderr kept in its record and log line


def run_bounded(argv: Sequence[str], stdin: str, env: Mapping[str, str], timeout_s: float) -> tuple[int | None, str]:
    """Run ``argv`` in its own process group; (exit status, the tail of its output), or (None, ...) when it
    outlived ``timeout_s``: then the whole group is killed, so a shell's children cannot hold it open."""
    process = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=dict(env), start_new_session=True)
    try:
        output, _ = process.communicate(stdin, timeout=timeout_s)
        return process.returncode, output[-OUTPUT_TAIL:]
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            output, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipe: stop reading it
            process.kill()
            output = ""
        return None, (output or "")[-OUTPUT_TAIL:]


HTML = "text/html; charset=utf-8"
# Markdown reads as plain text in any browser (text/markdown would be downloaded).
MARKDOWN = mimetypes.types_map[".txt"] + "; charset=utf-8"


def get(receiver: AlertReceiver, path: str) -> tuple[int, str, str]:
    """Answer a GET of the receiver's server: (status, body, content type)."""
    full_path, path = path, path.split("?", 1)[0]
    if path == "/metrics":
        return 200, generate_latest(receiver.registry).decode(), CONTENT_TYPE_LATEST
    if path in ("/-/ready", "/-/healthy"):
        return 200, "ok", "text/plain; charset=utf-8"
    books = receiver.runbooks
    if path in ("/", "/alerts", "/runbooks", "/runbooks/"):
        names = pages.runbook_names(books) if books else []
        return 200, pages.index_page(receiver.store.records(limit=500), names), HTML
    if path.startswith("/runbooks/"):
        name = path.removeprefix("/runbooks/").removesuffix(".md")
        found = pages.runbook_path(books, name) if books else None
        if found is None:
            return 404, f"no runbook {name!r} (the index, GET /, lists them)", "text/plain; charset=utf-8"
        return 200, receiver.runbook_text(name, found.read_text(encoding="utf-8")), MARKDOWN
    if path.startswith("/docs/"):  # the runbooks' links (../../docs/drift.md) resolve here
        name = path.removeprefix("/docs/").removesuffix(".md")
        found = pages.runbook_path(receiver.docs, name, pages.DOC_NAME) if receiver.docs else None
        if found is None:
            return 404, f"no docs page {name!r}", "text/plain; charset=utf-8"
        return 200, receiver.runbook_text(name, found.read_text(encoding="utf-8")), MARKDOWN
    if path.startswith(snapshot_ids.PATH):
        return snapshot_page(receiver, full_path)
    if path == "/api/alerts":
        return 200, json.dumps([r.as_dict() for r in receiver.store.records()]), "application/json"
    for prefix in ("/api/alerts/", "/alerts/"):
        if path.startswith(prefix):
            fingerprint = path.removeprefix(prefix)
            found_record = receiver.store.get(fingerprint) if FINGERPRINT.match(fingerprint) else None
            if found_record is None:
                return 404, f"no alert with fingerprint {fingerprint!r} on record", "text/plain; charset=utf-8"
            if prefix == "/api/alerts/":
                record = {**found_record.as_dict(),
                          "changes": [c.__dict__ for c in receiver.store.changes(fingerprint)],
                          "commands": [c.__dict__ for c in receiver.store.commands(fingerprint)]}
                return 200, json.dumps(record), "application/json"
            return 200, pages.alert_page(found_record, grafana_running=receiver.grafana_running,
                                         dashboards=receiver.dashboards,
                                         prometheus_url=receiver.prometheus_url), HTML
    return 404, "not found", "text/plain; charset=utf-8"


def snapshot_page(receiver: AlertReceiver, path: str) -> tuple[int, str, str]:
    """``/snapshots/`` (the manifest's list), ``/snapshots/<id>.html``, ``/snapshots/manifest.json`` and
    ``/snapshots/group?labels=NAME%3DVALUE%2C...&start=EPOCH`` (the page a notification template names)."""
    text = "text/plain; charset=utf-8"
    if receiver.snapshots is None:
        return 404, "this receiver writes no snapshots (start it with --snapshots DIR)", text
    store: PageStore = receiver.snapshots.store
    route, _, query = path.removeprefix(snapshot_ids.PATH).partition("?")
    if route in ("", "/"):
        pages_ = sorted(store.manifest().get("pages", {}).items(), key=lambda kv: -float(kv[1]["written_at"]))
        rows = "".join(f"<li><a href='{snapshot_ids.PATH}/{name}'>{name}</a> {html.escape(str(entry['status']))}</li>"
                       for name, entry in pages_[:500])
        return 200, (f"<!doctype html><meta charset='utf-8'><title>snapshots</title><h1>Incident snapshots</h1>"
                     f"<ul>{rows or '<li>none yet</li>'}</ul><p><a href='{snapshot_ids.PATH}/manifest.json'>"
                     "manifest.json</a> (sha256 of each page)</p>"), HTML
    if route == "/manifest.json":
        return 200, json.dumps(store.manifest(), sort_keys=True), "application/json"
    name = route.removeprefix("/")
    if route == "/group":
        args = parse_qs(query)
        try:
            start = float(args["start"][0])
            name = f"{snapshot_ids.snapshot_id(args.get('labels', [''])[0], start)}.html"
        except (KeyError, IndexError, ValueError):
            return 400, "expected /snapshots/group?labels=NAME=VALUE,...&start=EPOCH_SECONDS", text
    found = store.path(name)
    if found is None:
        return 404, f"no snapshot {name!r} (yet: it is written shortly after the notification)", text
    return 200, found.read_text(encoding="utf-8"), HTML


def authorized(receiver: AlertReceiver, path: str, header: str | None) -> bool:
    """Snapshots are behind the receiver's bearer token when one is set; everything else is not."""
    if not receiver.token or not path.startswith(snapshot_ids.PATH):
        return True
    return hmac.compare_digest((header or "").encode(), f"Bearer {receiver.token}".encode())


def reply(handler: BaseHTTPRequestHandler, status: int, body: str,
          content_type: str = "text/plain; charset=utf-8") -> None:
    """Send one complete response on ``handler``."""
    send(handler, status, body.encode(), content_type)


def make_server(receiver: AlertReceiver, port: int, addr: str = "127.0.0.1",
                paths: Sequence[str] = ("/", "/alerts")) -> ThreadingHTTPServer:
    """One HTTP server: POST webhooks on ``paths``, false-positive reports on ``/feedback/false-positive``;
    GET ``/`` (index), ``/runbooks/<Alert>.md``, ``/alerts/<fingerprint>`` (an alert's page),
    ``/api/alerts[/<fingerprint>]`` (the record as JSON), ``/metrics`` and ``/-/ready``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path == feedback.PATH:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                self._reply(*receiver.false_positive(self.rfile.read(length), self.headers.get("Authorization")))
                return
            if self.path not in paths:
                self._reply(404, "not found")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                receiver.invalid.labels("too_large").inc()
                self._reply(413, "payload too large")
                return
            self._reply(*receiver.handle(self.rfile.read(length)))

        def do_GET(self) -> None:
            if not authorized(receiver, self.path, self.headers.get("Authorization")):
                self._reply(401, "this page needs the receiver's bearer token (Authorization: Bearer ...)")
                return
            self._reply(*get(receiver, self.path))

        def _reply(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
            reply(self, status, body, content_type)

        def log_message(self, *args: Any) -> None:  # the JSON lines are the log
            pass

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    return server
