"""``mlscope demo`` and ``mlscope workload``: the demo model service and a synthetic one."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .._runtime import wait_for_shutdown

DEMO_URL = "http://127.0.0.1:8000"


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"a finite number of seconds, got {value}")
    return seconds


def _incident_seconds(value: str) -> float:
    """``--seconds``: how long an incident lasts, more than 0."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"an incident lasts a positive number of seconds, got {value}")
    return seconds


def _cooldown_seconds(value: str) -> float:
    """``--cooldown``: 0 or more seconds (0: no cooldown, every alert retrains)."""
    seconds = _seconds(value)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"a cooldown is 0 (none) or more seconds, got {value}")
    return seconds


def add_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="breast_cancer", choices=["breast_cancer", "wine", "diabetes"])
    p.add_argument("--model", default="synthetic")
    p.add_argument("--model-version", default="1.0.0")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--addr", default="127.0.0.1")
    p.set_defaults(func=workload)


def add_demo(p: argparse.ArgumentParser) -> None:
    from .retrain import COOLDOWN_S  # light: scikit-learn loads only when a retraining runs

    p.add_argument("action", nargs="?", choices=["run", "inject", "retrain"], default="run",
                   help="run the demo; inject an incident into it; retrain its model (an alert command: the alert "
                        "as JSON on stdin)")
    p.add_argument("incident", nargs="?", help="inject: a registered incident (drift, errors, latency, quality, ...)")
    p.add_argument("--seconds", type=_incident_seconds, default=60.0,
                   help="inject: how long, in seconds, more than 0 (default: %(default)s)")
    p.add_argument("--url", help=f"inject: the running demo (default: {DEMO_URL}); retrain: the demo the new "
                                  "version is deployed to (left out: trained and reported only)")
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--state-dir", default=".state/demo")
    p.add_argument("--profile", default="fast", choices=["default", "fast"])
    p.add_argument("--rate", type=float, default=20.0, help="requests per second")
    p.add_argument("--loki-url", help="Loki push URL for the prediction log (default: a JSON-lines file)")
    p.add_argument("--no-schedule", action="store_true", help="no incidents unless injected")
    p.add_argument("--pushgateway", help="retrain: the Pushgateway (host:port) the training run is pushed to")
    p.add_argument("--cooldown", type=_cooldown_seconds, default=COOLDOWN_S,
                   help="retrain: seconds after a retraining during which another alert retrains nothing; 0: no "
                        "cooldown (default: %(default)s)")
    p.set_defaults(func=demo)


def workload(args: argparse.Namespace) -> int:
    from ..exposition import start_metrics_server
    from ..monitor import ModelMonitor
    from .workload import SyntheticService, Traffic, train

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


def demo(args: argparse.Namespace) -> int:
    if args.action == "retrain":
        from .retrain import main

        return main(Path(args.state_dir), args.url, args.pushgateway, args.loki_url, args.cooldown)
    from .service import DemoService, inject_remote, serve

    if args.action == "inject":
        if not args.incident:
            from . import standard_incidents  # noqa: F401  (registers the standard ones)
            from .incidents import INCIDENTS
            print(f"mlscope: which incident? registered: {', '.join(INCIDENTS.names())}", file=sys.stderr)
            return 2
        try:
            body = inject_remote(args.url or DEMO_URL, args.incident, args.seconds)
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
