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

# Exit codes (docs/reports.md): the page is complete; written but something could not be read (a source not
# answering, a section without data: the page's "What this page could not read"); a usage error (nothing written:
# a bad option, a model or version Prometheus has never seen, a --verify folder that does not exist).
COMPLETE, INCOMPLETE, USAGE = 0, 1, 2
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
    p.add_argument("--profile", choices=["default", "fast"],
                   help="the rule profile whose windows the panels read (default: the one whose windows "
                        "Prometheus holds for the model; `mlscope up` runs fast)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per query (default: %(default)s)")
    p.add_argument("--verify", metavar="DIR", help="check the pages of DIR against its manifest.json instead")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    if args.verify:
        return _verify(Path(args.verify))
    if not args.model:
        print("mlscope: report needs --model (or --verify DIR)", file=sys.stderr)
        return USAGE
    try:
        require_extra(EXTRA, "`mlscope report`", *MODULES)
    except MissingExtra as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return USAGE
    from . import period
    from .page import clean, within_budget
    from .sources import Sources

    reference = time.time()
    try:
        end = parse_when(args.until, reference)
        start = parse_when(args.since, end)
    except ValueError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return USAGE
    if start >= end:
        print(f"mlscope: --since ({args.since}) must be before --until ({args.until})", file=sys.stderr)
        return USAGE
    sources = Sources(args.prometheus, args.loki, args.profile or "default", timeout_s=args.timeout)
    if not args.profile:
        from .sources import detect_profile

        sources.profile, how = detect_profile(sources, args.model, start, end)
        print(f"mlscope: {how}", file=sys.stderr)
    unknown = period.unknown(sources, args.model, args.version, start, end)
    if unknown:
        print(f"mlscope: {unknown}", file=sys.stderr)
        return USAGE
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
    return INCOMPLETE if page.twin.get("missing") else COMPLETE


def _verify(folder: Path) -> int:
    """``--verify DIR``: 0 when every page matches the manifest, 1 on a mismatch, 2 when DIR is no folder."""
    from .store import verify

    if not folder.is_dir():
        print(f"mlscope: {folder}: no such directory", file=sys.stderr)
        return USAGE
    problems = verify(folder)
    for problem in problems:
        print(f"mlscope: {problem}", file=sys.stderr)
    print(f"mlscope: {folder}: {'every page matches its manifest' if not problems else 'MISMATCH'}")
    return INCOMPLETE if problems else COMPLETE
