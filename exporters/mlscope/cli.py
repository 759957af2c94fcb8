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
    from .native import NativeStack
    from .servers import ServerError

    stack = NativeStack(Path(args.state_dir), demo=args.demo, profile=args.profile,
                        prometheus_port=args.prometheus_port, demo_port=args.demo_port)
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


def _logs(args: argparse.Namespace) -> int:
    from .logs.sampling import write_level

    if (args.level is None) == (not args.reset):
        print("mlscope: give a LEVEL or --reset", file=sys.stderr)
        return 2
    try:
        data = write_level(args.file, args.model, args.model_version, None if args.reset else args.level)
    except (ValueError, OSError) as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    print(f"mlscope: {args.file}: {data}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlscope", description=__doc__)
    p.add_argument("--version", action="version", version=f"mlscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    rules = sub.add_parser("rules", help="generate or check alerting/rules/ from the rule configuration")
    rules.add_argument("action", choices=["build", "check"])
    rules.add_argument("--dir", default="alerting/rules", help="rules folder (default: %(default)s)")
    rules.set_defaults(func=_rules)

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
    up.add_argument("--demo-port", type=int, default=8000)
    up.set_defaults(func=_up)

    dn = sub.add_parser("down", help="stop a running `mlscope up`")
    dn.add_argument("--state-dir", default=".state")
    dn.set_defaults(func=_down)

    logs = sub.add_parser("logs", help="prediction-log settings read by running services (no restart)")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    level = logs_sub.add_parser("level", help="set one model version's prediction-log level in a LogLevels file")
    level.add_argument("--file", required=True, help="the JSON file given to LogLevels(path=...)")
    level.add_argument("model")
    level.add_argument("model_version", help='a version, or "*" for every version')
    level.add_argument("level", nargs="?", help="debug (every prediction), info (sample), warning, error")
    level.add_argument("--reset", action="store_true", help="remove the entry (back to the default level)")
    level.set_defaults(func=_logs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
