"""``mlscope rollback``: the shipped containment action of the version comparisons."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..alerts.contract import FAILED


def add_rollback(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="the service's control endpoint, e.g. http://svc:8000 "
                   "(it answers POST /traffic/<model>/rollback)")
    p.add_argument("--token-file", help="file holding the bearer token (default: $MLSCOPE_CONTROL_TOKEN)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the service (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .rollback import alert_from, alert_from_environment, line_for, rollback, token_file_warning, token_from

    alert = alert_from_environment(os.environ)  # what a failure names when stdin cannot be read
    try:
        alert = alert_from("" if sys.stdin.isatty() else sys.stdin.read(), os.environ)
        token = token_from(args.token_file)
        warning = token_file_warning(args.token_file)
    except (OSError, ValueError) as exc:
        print(json.dumps({**line_for(alert), "result": "failed", "reason": str(exc)}, sort_keys=True), flush=True)
        return FAILED
    outcome = rollback(args.url, token, alert, args.timeout)
    line = {**outcome.line, "warning": warning} if warning else outcome.line
    print(json.dumps(line, sort_keys=True), flush=True)  # one line: the receiver keeps stdout and stderr together
    return outcome.status
