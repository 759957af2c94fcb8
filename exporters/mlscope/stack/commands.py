"""The stack's commands: ``mlscope up|down|init|alert-receiver|remote-write|k8s``."""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .._runtime import wait_for_shutdown
from .native import Ports
from .targets import scrape_argument


def add_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="also run the demo model with live traffic")
    p.add_argument("--state-dir", default=".state", help="runtime config and data (default: %(default)s)")
    p.add_argument("--profile", default="fast", choices=["default", "fast"],
                   help="rule profile (default: %(default)s): `fast` scrapes every second and alerts within "
                        "minutes, for trying things out; `default` has the production timings")
    scrape_argument(p)
    for name, port in vars(Ports()).items():
        p.add_argument(f"--{name.replace('_', '-')}-port", type=int, default=port, help="default: %(default)s")
    p.add_argument("--runbook-base-url", default="",
                   help="base of the alerts' runbook links, e.g. your team's wiki (default: this stack's alert "
                        "receiver, http://127.0.0.1:<alert-receiver-port>/runbooks)")
    p.add_argument("--receiver-config", help="the alert receiver's per-alert commands (YAML alert_commands, as "
                   "`mlscope alert-receiver --config`), e.g. `mlscope rollback` on your service's traffic split "
                   "(default: the stack folder's alerting/alert-receiver.yml; with --demo, merged with the demo's "
                   "rollback, yours winning per alert name)")
    p.set_defaults(func=up)


def add_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", default=".state")
    p.set_defaults(func=down)


def add_alert_receiver(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=9095)
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--config", help="YAML with alert_commands: {AlertName: {command: [...], timeout: 60}}")
    p.add_argument("--output", help="append the JSON lines to this file (default: stdout)")
    p.add_argument("--store", help="the record (SQLite), one row per alert fingerprint: a file keeps state "
                   "changes deduplicated across restarts (default: in memory)")
    p.add_argument("--loki-url", help="also ship the lines to this Loki push URL, e.g. "
                   "http://127.0.0.1:3100/loki/api/v1/push (stream labels app, model, model_version, level)")
    p.add_argument("--public-url", default="", help="the receiver's address as people reach it; lines link to "
                   "each alert's page there (default: http://ADDR:PORT)")
    p.add_argument("--prometheus-url", default="", help="where an alert's page opens its PromQL "
                   "(default: Prometheus's own generator URL)")
    p.add_argument("--runbooks", help="folder served on /runbooks/ (default: the stack's alerting/runbooks)")
    p.add_argument("--rules-config", help="the rule settings the rules were built with (e.g. "
                   "alerting/rules-config.yml): the served runbooks' thresholds show their values")
    p.add_argument("--feedback-token-file", help="file holding the bearer token of POST /feedback/false-positive "
                   "(without it the endpoint refuses every report)")
    p.add_argument("--snapshots", metavar="DIR", help="write an incident snapshot per alert group notification "
                   "into DIR (with manifest.json) and serve them on /snapshots/; needs mlscope[reports]")
    p.add_argument("--snapshot-prometheus", default="", help="the Prometheus the snapshots read, as the receiver "
                   "reaches it (default: --prometheus-url, else http://127.0.0.1:9090)")
    p.add_argument("--snapshot-retention", default="365d", help="how long a snapshot is kept (default: %(default)s)")
    p.add_argument("--snapshot-interval", type=float, default=300.0, help="seconds between two snapshots of one "
                   "group in the same status (default: %(default)s)")
    p.add_argument("--snapshot-profile", default="default", choices=["default", "fast"],
                   help="the rule profile whose windows the snapshots' panels read (default: %(default)s)")
    p.add_argument("--redact-drop", action="append", default=[], metavar="FIELD",
                   help="a log line field the snapshots leave out (the prediction log's privacy rules; repeat)")
    p.add_argument("--redact-hash", action="append", default=[], metavar="FIELD",
                   help="a log line field the snapshots replace by its HMAC (key in MLSCOPE_LOG_HMAC_KEY; repeat)")
    p.set_defaults(func=alert_receiver)


def add_init(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=init)


def add_remote_write(p: argparse.ArgumentParser) -> None:
    from . import remotewrite

    remotewrite.add_arguments(p)
    p.set_defaults(func=remotewrite.run)


def add_k8s(p: argparse.ArgumentParser) -> None:
    from . import k8s

    k8s.add_arguments(p)
    p.set_defaults(func=k8s.run)


def up(args: argparse.Namespace) -> int:
    from ..rules.overrides import RulesConfigError
    from ..targets import TargetError
    from .native import NativeStack
    from .servers import ServerError

    ports = Ports(**{name: getattr(args, f"{name}_port") for name in Ports.__dataclass_fields__})
    stack = NativeStack(Path(args.state_dir), demo=args.demo, profile=args.profile, ports=ports,
                        runbook_base_url=args.runbook_base_url, scrape=args.scrape + args.scrape_servers,
                        receiver_config=Path(args.receiver_config) if args.receiver_config else None)
    try:
        stack.run_forever()
    except (ServerError, TargetError, RulesConfigError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    return 0


def down(args: argparse.Namespace) -> int:
    from .native import down as stop

    if stop(Path(args.state_dir)):
        print("mlscope: stopped")
        return 0
    state = Path(args.state_dir)
    if not state.is_dir():  # not where `mlscope up` ran: say so rather than a quiet success
        print(f"mlscope: no stack state in {state.resolve()}/: run `mlscope down` in the folder where `mlscope up` "
              "ran, or give the --state-dir it used", file=sys.stderr)
        return 1
    print(f"mlscope: nothing running for {args.state_dir} (already stopped)")
    return 0


def alert_receiver(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from ..alerts import AlertStore
    from ..rules import overrides as rules_overrides
    from .alertreceiver import AlertReceiver, load_commands, make_server

    try:
        commands = load_commands(Path(args.config) if args.config else None)
        token = Path(args.feedback_token_file).read_text().strip() if args.feedback_token_file else None
        settings = rules_overrides.load(Path(args.rules_config)) if args.rules_config else None
        if settings:
            rules_overrides.configured("default", settings, args.rules_config)  # refuse a bad file at start
    except (OSError, ValueError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    page_url = args.public_url or f"http://{args.addr}:{args.port}"
    registry = CollectorRegistry()
    try:
        snapshots = _snapshots(args, page_url, registry)
    except (ImportError, ValueError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    output = open(args.output, "a", encoding="utf-8") if args.output else None  # noqa: SIM115 - lives as long as the server
    receiver = AlertReceiver(registry=registry, commands=commands, output=output,
                             store=AlertStore(args.store) if args.store else AlertStore(),
                             loki_url=args.loki_url, page_url=page_url,
                             prometheus_url=args.prometheus_url,
                             runbooks=Path(args.runbooks) if args.runbooks else None, snapshots=snapshots,
                             feedback_token=token, rules_settings=settings)
    server = make_server(receiver, args.port, args.addr)
    threading.Thread(target=server.serve_forever, name="mlscope-alert-receiver", daemon=True).start()
    where = f"; snapshots in {args.snapshots}, on {page_url}/snapshots/" if snapshots else ""
    print(f"mlscope: alert receiver on http://{args.addr}:{args.port}/alerts "
          f"({len(commands)} alert command(s){where})", file=sys.stderr, flush=True)
    wait_for_shutdown()
    server.shutdown()
    server.server_close()
    receiver.close()
    return 0


def _snapshots(args: argparse.Namespace, page_url: str, registry: Any) -> Any:
    """The snapshot worker ``--snapshots`` asks for (None without it, or, said in one line, without the extra)."""
    if not args.snapshots:
        return None
    from .._runtime import MissingExtra
    from ..reports.logs import privacy_of
    from ..reports.worker import snapshot_worker
    from ..rules.config import duration_seconds
    from .assets import asset

    try:
        runbooks = Path(args.runbooks) if args.runbooks else asset("alerting/runbooks")
    except FileNotFoundError:
        runbooks = None
    privacy = privacy_of(args.redact_drop, args.redact_hash, os.environ.get("MLSCOPE_LOG_HMAC_KEY"))
    try:
        return snapshot_worker(Path(args.snapshots), prometheus_url=args.snapshot_prometheus or args.prometheus_url
                               or "http://127.0.0.1:9090", loki_url=args.loki_url or "",
                               profile=args.snapshot_profile, privacy=privacy, runbooks=runbooks,
                               receiver_url=page_url, registry=registry,
                               retention_s=duration_seconds(args.snapshot_retention),
                               min_interval_s=args.snapshot_interval)
    except MissingExtra as exc:  # the receiver still notifies: snapshots are an extra
        print(f"mlscope: snapshots are off: {exc}", file=sys.stderr, flush=True)
        return None


def init(args: argparse.Namespace) -> int:
    from .assets import init as write_stack_files

    try:
        written = write_stack_files(Path(args.dir), force=args.force)
    except FileExistsError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print("next: cp .env.example .env, set the Grafana secrets, then `docker compose up -d`")
    return 0
