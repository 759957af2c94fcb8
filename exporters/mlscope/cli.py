"""The ``mlscope`` command."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__


def _rules(args: argparse.Namespace) -> int:
    from .rules import build_all, stale_files

    rules_dir = Path(args.dir)
    if args.action == "build":
        for path in build_all(rules_dir):
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        return 0
    stale = stale_files(rules_dir)
    for path in stale:
        print(f"stale: {path} (run `mlscope rules build`)", file=sys.stderr)
    return 1 if stale else 0


def _workload(args: argparse.Namespace) -> int:
    from .exposition import start_metrics_server
    from .monitor import ModelMonitor
    from .workload import SyntheticService, Traffic, train

    trained = train(args.dataset)
    monitor = ModelMonitor(args.model, args.model_version, task=trained.task)
    service = SyntheticService(trained, monitor)
    service.faults.error_rate = args.error_rate
    start_metrics_server(args.port, addr=args.addr)
    traffic = Traffic(service, rate=args.rate).start()
    print(f"mlscope: serving {args.model} {args.model_version} at {args.rate}/s; "
          f"metrics on http://{args.addr}:{args.port}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        traffic.stop()
    return 0


def _up(args: argparse.Namespace) -> int:
    from .native import NativeStack, Ports
    from .servers import ServerError

    ports = Ports(prometheus=args.prometheus_port, alertmanager=args.alertmanager_port,
                  alert_receiver=args.alert_receiver_port, demo=args.demo_port)
    stack = NativeStack(Path(args.state_dir), demo=args.demo, profile=args.profile, ports=ports)
    try:
        stack.run_forever()
    except ServerError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    return 0


def _down(args: argparse.Namespace) -> int:
    from .native import down

    if down(Path(args.state_dir)):
        print("mlscope: stopped")
        return 0
    print(f"mlscope: nothing running for {args.state_dir}")
    return 0


def _alert_receiver(args: argparse.Namespace) -> int:
    from .alertreceiver import AlertReceiver, load_commands, make_server

    try:
        commands = load_commands(Path(args.config) if args.config else None)
    except (OSError, ValueError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    server = make_server(AlertReceiver(commands=commands), args.port, args.addr)
    print(f"mlscope: alert receiver on http://{args.addr}:{args.port}/alerts "
          f"({len(commands)} alert command(s))", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from .dashboards import build, stale

    source, output = Path(args.source), Path(args.output)
    if args.action == "build":
        written, removed = build(source, output)
        for path in written:
            print(f"wrote {path}")
        for path in removed:
            print(f"removed {path} (its source is gone)")
        return 0
    out = stale(source, output)
    for path in out:
        print(f"stale: {path} (run `mlscope dashboards build`)", file=sys.stderr)
    return 1 if out else 0


def _init(args: argparse.Namespace) -> int:
    from .assets import init

    try:
        written = init(Path(args.dir), force=args.force)
    except FileExistsError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print("next: cp .env.example .env, set the Grafana secrets, then `docker compose up -d`")
    return 0


def _resource_exporter(args: argparse.Namespace) -> int:
    from .resources.exporter import run

    return run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlscope", description=__doc__)
    p.add_argument("--version", action="version", version=f"mlscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    rules = sub.add_parser("rules", help="generate or check alerting/rules/ from the rule configuration")
    rules.add_argument("action", choices=["build", "check"])
    rules.add_argument("--dir", default="alerting/rules", help="rules folder (default: %(default)s)")
    rules.set_defaults(func=_rules)

    dash = sub.add_parser("dashboards", help="generate or check the Grafana JSON from dashboards/*.py")
    dash.add_argument("action", choices=["build", "check"])
    dash.add_argument("--source", default="dashboards", help="dashboard sources (default: %(default)s)")
    dash.add_argument("--output", default="provisioning/grafana/dashboards", help="JSON folder (default: %(default)s)")
    dash.set_defaults(func=_dashboards)

    work = sub.add_parser("workload", help="serve a synthetic scikit-learn model with traffic and /metrics")
    work.add_argument("--dataset", default="breast_cancer", choices=["breast_cancer", "wine", "diabetes"])
    work.add_argument("--model", default="synthetic")
    work.add_argument("--model-version", default="1.0.0")
    work.add_argument("--rate", type=float, default=20.0, help="requests per second")
    work.add_argument("--error-rate", type=float, default=0.0)
    work.add_argument("--port", type=int, default=8000)
    work.add_argument("--addr", default="127.0.0.1")
    work.set_defaults(func=_workload)

    up = sub.add_parser("up", help="run the stack natively (Prometheus from PATH, mlscope exporters)")
    up.add_argument("--demo", action="store_true", help="also run the demo model with live traffic")
    up.add_argument("--state-dir", default=".state", help="runtime config and data (default: %(default)s)")
    up.add_argument("--profile", default="fast", choices=["default", "fast"])
    up.add_argument("--prometheus-port", type=int, default=9090)
    up.add_argument("--alertmanager-port", type=int, default=9093)
    up.add_argument("--alert-receiver-port", type=int, default=9095)
    up.add_argument("--demo-port", type=int, default=8000)
    up.set_defaults(func=_up)

    rcv = sub.add_parser("alert-receiver", help="Alertmanager webhook receiver: JSON logs, per-alert commands")
    rcv.add_argument("--port", type=int, default=9095)
    rcv.add_argument("--addr", default="127.0.0.1")
    rcv.add_argument("--config", help="YAML with alert_commands: {AlertName: {command: [...], timeout: 60}}")
    rcv.set_defaults(func=_alert_receiver)

    ini = sub.add_parser("init", help="write the stack's files (compose, provisioning, alerting) into DIR")
    ini.add_argument("dir")
    ini.add_argument("--force", action="store_true", help="overwrite existing files")
    ini.set_defaults(func=_init)

    dn = sub.add_parser("down", help="stop a running `mlscope up`")
    dn.add_argument("--state-dir", default=".state")
    dn.set_defaults(func=_down)

    from .resources.exporter import add_arguments as resource_arguments
    res = sub.add_parser("resource-exporter", help="serve host, process and GPU metrics (psutil, NVML)")
    resource_arguments(res)
    res.set_defaults(func=_resource_exporter)

    from . import k8s, remotewrite
    rw = sub.add_parser("remote-write", help="Prometheus overlays that remote-write to Mimir, Thanos or VictoriaMetrics")
    remotewrite.add_arguments(rw)
    rw.set_defaults(func=remotewrite.run)
    kube = sub.add_parser("k8s", help="render PrometheusRule, ServiceMonitor and dashboard ConfigMap manifests")
    k8s.add_arguments(kube)
    kube.set_defaults(func=k8s.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
