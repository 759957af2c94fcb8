"""``mlscope report``: a model health report for a period, or ``--verify`` a folder of pages against its
manifest."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from .._runtime import MissingExtra, require_extra
from . import EXTRA, MODULES

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, reference: float) -> float:
    """``now``, a duration before ``reference`` (``7d``, ``36h``), Unix seconds or an RFC 3339 time."""
    from .ids import parse_time

    if text == "now":
        return reference
    found = DURATION.match(text)
    if found:
        return reference - float(found.group(1)) * UNITS[found.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = parse_time(text if "T" in text else text + "T00:00:00Z")
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"not a time: {text!r} (now, a duration such as 7d, Unix seconds or RFC 3339)")
    return parsed


def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="the model (the `model` label)")
    p.add_argument("--version", help="one model version (default: every version with data in the period)")
    p.add_argument("--since", default="7d", help="start: a duration before --until (7d), Unix s or RFC 3339 "
                   "(default: %(default)s)")
    p.add_argument("--until", default="now", help="end (default: %(default)s)")
    p.add_argument("--out", help="the HTML file (default: report-MODEL-UNTIL.html); its JSON twin beside it, .json")
    p.add_argument("--prometheus", default="http://127.0.0.1:9090", help="default: %(default)s")
    p.add_argument("--loki", default="", help="Loki's URL, for the lineage's log lines (training runs, batches)")
    p.add_argument("--profile", default="default", choices=["default", "fast"],
                   help="the rule profile whose windows the panels read (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per query (default: %(default)s)")
    p.add_argument("--verify", metavar="DIR", help="check the pages of DIR against its manifest.json instead")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    if args.verify:
        from .store import verify

        problems = verify(Path(args.verify))
        for problem in problems:
            print(f"mlscope: {problem}", file=sys.stderr)
        print(f"mlscope: {args.verify}: {'every page matches its manifest' if not problems else 'MISMATCH'}")
        return 1 if problems else 0
    if not args.model:
        print("mlscope: report needs --model (or --verify DIR)", file=sys.stderr)
        return 2
    try:
        require_extra(EXTRA, "`mlscope report`", *MODULES)
    except MissingExtra as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    from . import period
    from .page import clean, within_budget
    from .sources import Sources

    reference = time.time()
    try:
        end = parse_when(args.until, reference)
        start = parse_when(args.since, end)
    except ValueError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 2
    if start >= end:
        print(f"mlscope: --since ({args.since}) must be before --until ({args.until})", file=sys.stderr)
        return 2
    sources = Sources(args.prometheus, args.loki, args.profile, timeout_s=args.timeout)
    page = period.build(sources, args.model, start, end, args.version)
    html = within_budget(page)
    out = Path(args.out or f"report-{args.model}-{int(end)}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    twin = out.with_suffix(".json")
    twin.write_text(json.dumps(clean(page.twin), indent=1, allow_nan=False, sort_keys=True, default=str),
                    encoding="utf-8")
    for note in page.twin.get("missing", []):
        print(f"mlscope: missing: {note}", file=sys.stderr)
    print(f"mlscope: wrote {out} ({len(html.encode())} bytes) and {twin}")
    return 0
