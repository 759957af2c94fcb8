"""The ``mlscope`` command."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from .. import __version__
from .._runtime import wait_for_shutdown


def _rules(args: argparse.Namespace) -> int:
    from ..rules import build_all, stale_files

    rules_dir = Path(args.dir)
    if args.action == "build":
        for path in build_all(rules_dir):
            print(f"wrote {path}" if path.exists() else f"removed {path}")
        return 0
    stale = stale_files(rules_dir)
    for path in stale:
        print(f"stale: {path} (run `mlscope rules build`)", file=sys.stderr)
    return 1 if stale else 0


def _reference(args: argparse.Namespace) -> int:
    if args.action == "build" and not (args.model and args.model_version and (args.out or args.next_to)):
        print("mlscope: reference build needs --model, --model-version and --out or --next-to", file=sys.stderr)
        return 2
    from ..drift import DriftTracker, ProfileError, ReferenceProfile, build_profile, file_hash, read_table
    from ..drift.collector import series_count
    from ..drift.build import MIN_CHUNKS

    try:
        if args.action == "show":
            profile = ReferenceProfile.load(args.path)
        else:
            data, names = read_table(args.path, args.columns.split(",") if args.columns else None)
            output = None
            if args.output_column:
                if args.output_column not in names:
                    raise ProfileError(f"output column {args.output_column!r} is not in {args.path}")
                output = data[args.output_column]
                output = output.to_numpy() if hasattr(output, "to_numpy") else output
                data = {n: data[n] for n in names if n != args.output_column}
            profile = build_profile(
                data, model=args.model, model_version=args.model_version, output=output,
                categorical=args.categorical.split(",") if args.categorical else (), source_hash=file_hash(args.path),
                psi_bins=args.psi_bins, fine_bins=args.fine_bins, top_k=args.top_k, chunk_size=args.chunk_size,
                sample_size=args.sample_size)
            out = Path(args.out) if args.out else Path(args.next_to).with_suffix(".reference.json")
            profile.save(out)
            print(f"wrote {out}")
            used = min(args.chunk_size, profile.rows // MIN_CHUNKS)
            if used < args.chunk_size:
                print(f"mlscope: warning: {profile.rows:,} rows give calibration chunks of {used:,} rows, not "
                      f"{args.chunk_size:,}: the drift thresholds fit windows of about {used:,} values and are "
                      "looser than they would be for larger windows; build from more rows if you can",
                      file=sys.stderr)
    except ProfileError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    series = series_count(DriftTracker(profile, profile.model, profile.model_version, lambda *_: None))
    kinds = ", ".join(f"{n} ({k})" for n, k in profile.schema.items())
    print(f"{profile.model} {profile.model_version}: {profile.rows:,} rows, {len(profile.features)} features: {kinds}"
          f"{'; output profiled' if profile.output else ''}\ncontent hash {profile.content_hash}, source "
          f"{profile.source_hash}, created {profile.created_at}; {series:,} series per model version")
    return 0


def _workload(args: argparse.Namespace) -> int:
    from ..exposition import start_metrics_server
    from ..monitor import ModelMonitor
    from ..demo.workload import SyntheticService, Traffic, train

    trained = train(args.dataset)
    monitor = ModelMonitor(args.model, args.model_version, task=trained.task)
    service = SyntheticService(trained, monitor)
    service.faults.error_rate = args.error_rate
    start_metrics_server(args.port, addr=args.addr)
    traffic = Traffic(service, rate=args.rate).start()
    print(f"mlscope: serving {args.model} {args.model_version} at {args.rate}/s; "
          f"metrics on http://{args.addr}:{args.port}/metrics", flush=True)
    wait_for_shutdown()
    traffic.stop()
    return 0


def _up(args: argparse.Namespace) -> int:
    from ..stack.native import NativeStack, Ports
    from ..stack.servers import ServerError

    ports = Ports(**{name: getattr(args, f"{name}_port") for name in Ports.__dataclass_fields__})
    stack = NativeStack(Path(args.state_dir), demo=args.demo, profile=args.profile, ports=ports)
    try:
        stack.run_forever()
    except ServerError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    return 0


def _down(args: argparse.Namespace) -> int:
    from ..stack.native import down

    if down(Path(args.state_dir)):
        print("mlscope: stopped")
        return 0
    print(f"mlscope: nothing running for {args.state_dir}")
    return 0


def _alert_receiver(args: argparse.Namespace) -> int:
    from ..stack.alertreceiver import AlertReceiver, load_commands, make_server

    try:
        commands = load_commands(Path(args.config) if args.config else None)
    except (OSError, ValueError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    output = open(args.output, "a", encoding="utf-8") if args.output else None  # noqa: SIM115 - lives as long as the server
    server = make_server(AlertReceiver(commands=commands, output=output), args.port, args.addr)
    threading.Thread(target=server.serve_forever, name="mlscope-alert-receiver", daemon=True).start()
    print(f"mlscope: alert receiver on http://{args.addr}:{args.port}/alerts "
          f"({len(commands)} alert command(s))", file=sys.stderr, flush=True)
    wait_for_shutdown()
    server.shutdown()
    server.server_close()
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from ..dashboards.build import build, stale

    source, output = Path(args.source), Path(args.output)
    if not source.is_dir() or not any(source.glob("*.py")):
        print(f"mlscope: no dashboard sources in {source.resolve()}: run from the repository root or pass --source",
              file=sys.stderr)
        return 2
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


def _demo(args: argparse.Namespace) -> int:
    from ..demo.service import DemoService, inject_remote, serve

    if args.action == "inject":
        if not args.incident:
            print("mlscope: which incident? drift, errors, latency or quality", file=sys.stderr)
            return 2
        try:
            body = inject_remote(args.url, args.incident, args.seconds)
        except (ValueError, OSError) as exc:
            print(f"mlscope: {exc}", file=sys.stderr)
            return 1
        print(f"mlscope: active incidents: {body['active']}")
        return 0
    demo = DemoService(state_dir=Path(args.state_dir), profile=args.profile, rate=args.rate,
                       loki_url=args.loki_url, schedule=not args.no_schedule).start()
    server = serve(demo, args.port, args.addr)
    print(f"mlscope: demo model on http://{args.addr}:{args.port}/metrics; incidents: POST /faults", flush=True)
    wait_for_shutdown()
    server.shutdown()
    demo.stop()
    return 0


def _init(args: argparse.Namespace) -> int:
    from ..stack.assets import init

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
    from ..resources.exporter import run

    return run(args)



def _logs(args: argparse.Namespace) -> int:
    from ..logs.sampling import write_level

    if (args.level is None) == (not args.reset):
        print("mlscope: give a LEVEL or --reset", file=sys.stderr)
        return 2
    try:
        data = write_level(args.file, args.model, args.model_version, None if args.reset else args.level)
    except (ValueError, OSError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    print(f"mlscope: {args.file} now holds {json.dumps(data, sort_keys=True)}")
    return 0


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

    ref = sub.add_parser("reference", help="build or inspect a drift reference profile")
    ref.add_argument("action", choices=["build", "show"])
    ref.add_argument("path", help="build: training data (.csv, .tsv, .parquet, .npy); show: a profile .json")
    ref.add_argument("--model", help="model name (build)")
    ref.add_argument("--model-version", help="model version (build)")
    where = ref.add_mutually_exclusive_group()
    where.add_argument("--out", help="profile path to write")
    where.add_argument("--next-to", help="model file: the profile is written beside it as <stem>.reference.json")
    ref.add_argument("--columns", help="comma-separated columns to read (default: all; names for .npy)")
    ref.add_argument("--categorical", help="comma-separated numeric columns to treat as categorical")
    ref.add_argument("--output-column", help="column holding the model's output on these rows")
    for name, default in (("psi-bins", 10), ("fine-bins", 20), ("top-k", 20), ("chunk-size", 5000),
                          ("sample-size", 1000)):
        ref.add_argument(f"--{name}", type=int, default=default, help="default: %(default)s")
    ref.set_defaults(func=_reference)

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
    up.add_argument("--profile", default="fast", choices=["default", "fast"],
                    help="rule profile: fast (1 s scrape, minute windows; default) or default (production)")
    from ..stack.native import Ports

    for name, port in vars(Ports()).items():
        up.add_argument(f"--{name.replace('_', '-')}-port", type=int, default=port, help="default: %(default)s")
    up.set_defaults(func=_up)

    rcv = sub.add_parser("alert-receiver", help="Alertmanager webhook receiver: JSON logs, per-alert commands")
    rcv.add_argument("--port", type=int, default=9095)
    rcv.add_argument("--addr", default="127.0.0.1")
    rcv.add_argument("--config", help="YAML with alert_commands: {AlertName: {command: [...], timeout: 60}}")
    rcv.add_argument("--output", help="append the JSON lines to this file (default: stdout)")
    rcv.set_defaults(func=_alert_receiver)

    demo = sub.add_parser("demo", help="run the demo model service, or inject an incident into a running one")
    demo.add_argument("action", nargs="?", choices=["run", "inject"], default="run")
    demo.add_argument("incident", nargs="?", help="inject: drift, errors, latency or quality")
    demo.add_argument("--seconds", type=float, default=60, help="inject: how long (default: %(default)s)")
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="inject: the running demo")
    demo.add_argument("--addr", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--state-dir", default=".state/demo")
    demo.add_argument("--profile", default="fast", choices=["default", "fast"])
    demo.add_argument("--rate", type=float, default=20.0, help="requests per second")
    demo.add_argument("--loki-url", help="Loki push URL for the prediction log (default: a JSON-lines file)")
    demo.add_argument("--no-schedule", action="store_true", help="no incidents unless injected")
    demo.set_defaults(func=_demo)

    ini = sub.add_parser("init", help="write the stack's files (compose, provisioning, alerting) into DIR")
    ini.add_argument("dir")
    ini.add_argument("--force", action="store_true", help="overwrite existing files")
    ini.set_defaults(func=_init)

    dn = sub.add_parser("down", help="stop a running `mlscope up`")
    dn.add_argument("--state-dir", default=".state")
    dn.set_defaults(func=_down)

    from ..resources.exporter import add_arguments as resource_arguments
    res = sub.add_parser("resource-exporter", help="serve host, process and GPU metrics (psutil, NVML)")
    resource_arguments(res)
    res.set_defaults(func=_resource_exporter)

    from ..quality.commands import add_parsers as add_quality_parsers
    add_quality_parsers(sub)

    logs = sub.add_parser("logs", help="prediction-log settings read by running services (no restart)")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    level = logs_sub.add_parser("level", help="set one model version's prediction-log level in a LogLevels file")
    level.add_argument("--file", required=True, help="the JSON file given to LogLevels(path=...)")
    level.add_argument("model")
    level.add_argument("model_version", help='a version, or "*" for every version')
    level.add_argument("level", nargs="?", help="debug (every prediction), info (sample), warning, error")
    level.add_argument("--reset", action="store_true", help="remove the entry (back to the default level)")
    level.set_defaults(func=_logs)

    from ..stack import k8s, remotewrite
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
