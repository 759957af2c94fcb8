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

    from .quality.commands import add_parsers as add_quality_parsers
    add_quality_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
