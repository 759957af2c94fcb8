"""``mlscope resource-exporter``: host, process and GPU metrics on their own /metrics (127.0.0.1 by default)."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest

from .._runtime import wait_for_shutdown
from ..exposition import DEFAULT_ADDR, start_metrics_server
from .fake_nvml import FakeNVML
from .monitor import DEFAULT_INTERVAL, ResourceMonitor

DEFAULT_PORT = 9839
ONCE_CPU_WINDOW_S = 0.5


def add_resource_exporter(p: argparse.ArgumentParser) -> None:
    """Arguments of ``mlscope resource-exporter``."""
    p.add_argument("--addr", default=DEFAULT_ADDR, help="listen address (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="listen port (default: %(default)s)")
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                   help="seconds between samples (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds after which a sample still running is reported hung (default: max(2 x interval, 5))")
    for name in ("host", "process", "gpu"):
        p.add_argument(f"--no-{name}", dest=name, action="store_false", help=f"switch the {name} collector off")
    p.add_argument("--pid", type=int, action="append", default=[], help="watch this process (repeatable)")
    p.add_argument("--process-pattern", help="watch processes whose name or command line matches this regex")
    p.add_argument("--children", action="store_true", help="also report the watched processes' children")
    p.add_argument("--model", default="", help="model served by the watched processes (GPU memory attribution)")
    p.add_argument("--model-version", default="", help="its version")
    p.add_argument("--simulate-gpus", type=int, default=0, metavar="N",
                   help="simulate N GPUs (series carry simulated=\"true\") instead of asking NVML")
    p.add_argument("--once", action="store_true", help="sample once, print the exposition and a summary, exit")
    p.set_defaults(func=run)


def build(args: argparse.Namespace) -> ResourceMonitor:
    nvml = FakeNVML.demo(args.simulate_gpus) if args.simulate_gpus else None
    labels = (args.model, args.model_version)
    return ResourceMonitor(CollectorRegistry(), host=args.host, process=args.process, gpu=args.gpu,
                           interval=args.interval, timeout=args.timeout, pids=args.pid,
                           process_pattern=args.process_pattern, children=args.children, nvml=nvml,
                           model_labels=lambda: labels)


def summary(monitor: ResourceMonitor) -> str:
    """What the collectors found, in words (for ``--once`` on a new machine)."""
    lines = []
    for snap in monitor.sampler.snapshot():
        series = sum(len(v) for v in snap.sample.values.values()) if snap.sample else 0
        errors = ", ".join(f"{k}={v}" for k, v in snap.errors.items()) or "none"
        lines.append(f"{snap.name}: {'up' if snap.up else 'DOWN'}, {series} series, errors: {errors}")
    gpu = monitor.gpu
    if gpu is not None:
        if gpu.off_reason:
            lines.append(f"GPU metrics off: {gpu.off_reason}")
        else:
            lines.append(f"NVML driver {gpu.driver_version}: {gpu.count} GPU(s)")
            for d in gpu.devices.values():
                skipped = sorted({f for f, _ in d.unsupported})
                lines.append(f"  gpu {d.index} {d.name} {d.uuid}: XID events "
                             f"{'on' if d.xid_supported else 'NOT available'}; "
                             f"not supported: {', '.join(skipped) or 'nothing'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    monitor = build(args)
    if args.once:
        time.sleep(ONCE_CPU_WINDOW_S)  # CPU utilisation is measured between two readings
        monitor.sample_once()
        sys.stdout.write(generate_latest(monitor.registry).decode())
        print(summary(monitor), file=sys.stderr)
        monitor.stop()
        return 0
    monitor.start()
    server, _thread = start_metrics_server(args.port, addr=args.addr, registry=monitor.registry)
    print(f"mlscope: resource exporter on http://{args.addr}:{args.port}/metrics "
          f"(every {args.interval:g}s)", flush=True)
    wait_for_shutdown()
    server.shutdown()
    monitor.stop()
    return 0
