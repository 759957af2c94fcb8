"""``mlscope lineage MODEL VERSION`` and ``mlscope lineage --request-id ID``."""
from __future__ import annotations

import argparse
import json
import sys
import urllib.parse

from ..rules.config import duration_seconds
from .chain import from_prediction, trace
from .render import text
from .sources import FileSource, LogSource, LokiSource, PrometheusSource

# Each URL flag's example, in its help and in its refusal.
EXAMPLES = {"--prometheus": "http://127.0.0.1:9090", "--loki": "http://127.0.0.1:3100"}


def url_problem(url: str, example: str) -> str | None:
    """Why ``url`` is not an HTTP URL (a usage error), or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"not an http:// or https:// URL with a host (e.g. {example})"
    return None


def add_lineage(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="the model (with VERSION)")
    p.add_argument("version", nargs="?", help="the model version")
    p.add_argument("--request-id", help="trace back from this prediction's log line instead")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus (mlscope_model_info, mlscope_training_info), "
                                                       f"e.g. {EXAMPLES['--prometheus']}")
    p.add_argument("--loki", metavar="URL", help=f"Loki (run ids, batch ids, alerts), e.g. {EXAMPLES['--loki']}")
    p.add_argument("--logs", metavar="FILE", action="append", default=[],
                   help="JSON-lines log files, when no Loki runs (repeatable: the demo's predictions.jsonl, "
                        "a job's log, the receiver's alerts.jsonl)")
    p.add_argument("--since", default="7d", help="how far back to look (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the chain as one JSON object")
    p.set_defaults(func=lineage)


def lineage(args: argparse.Namespace) -> int:
    if args.request_id and args.model:
        print("mlscope: give either MODEL VERSION or --request-id ID, not both", file=sys.stderr)
        return 2
    if not args.request_id and not (args.model and args.version):
        print("mlscope: give MODEL VERSION, or --request-id ID", file=sys.stderr)
        return 2
    try:
        since_s = duration_seconds(args.since)
    except ValueError as exc:
        print(f"mlscope: --since: {exc}", file=sys.stderr)
        return 2
    for flag, url in (("--prometheus", args.prometheus), ("--loki", args.loki)):
        problem = url_problem(url, EXAMPLES[flag]) if url else None
        if problem:
            print(f"mlscope: {flag} {url!r}: {problem}", file=sys.stderr)
            return 2
    prometheus = PrometheusSource(args.prometheus) if args.prometheus else None
    logs: list[LogSource] = [LokiSource(args.loki, since_s=since_s)] if args.loki else []
    logs += [FileSource(args.logs)] if args.logs else []
    if args.request_id:
        found = from_prediction(args.request_id, prometheus=prometheus, logs=logs, since=args.since)
    else:
        found = trace(args.model, args.version, prometheus=prometheus, logs=logs, since=args.since)
    print(json.dumps(found.as_dict(), indent=2, default=str) if args.json else text(found))
    has_any = found.serving or found.trained or found.training_runs or found.prediction
    return 0 if has_any else 1
