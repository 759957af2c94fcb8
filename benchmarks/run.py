"""mlscope benchmarks: one command, a table with ratios to references measured in the same run.

    python benchmarks/run.py            # every suite; prints the table and rewrites benchmarks/README.md
    python benchmarks/run.py --quick    # fewer repetitions, prints only
    python benchmarks/run.py --suite drift --suite logs

Each suite lives in its own module (``suite_<name>.py``) and returns rows.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Row  # noqa: E402 - importable only once HERE is on sys.path

SUITES = ("install", "monitor", "resources", "drift", "drift_thresholds", "quality", "logs", "pipelines", "tracing",
          "genai", "agreement", "reports", "scale", "anomaly", "soak")


def run_suite(name: str, quick: bool) -> list[Row]:
    return getattr(importlib.import_module(f"suite_{name}"), f"suite_{name}")(quick)


def table(rows: list[Row]) -> str:
    lines = ["| suite | case | value | reference | reference value | ratio | target |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        ref_value = f"{r.reference_value:.3f} {r.unit}" if r.reference_value is not None else ""
        lines.append(f"| {r.suite} | {r.case} | {r.value:.3f} {r.unit} | {r.reference} | {ref_value} | "
                     f"{r.ratio} | {r.target} |")
    return "\n".join(lines)


def environment() -> str:
    from importlib.metadata import version

    import numpy as np
    import psutil

    return (f"Python {platform.python_version()}, prometheus-client {version('prometheus-client')}, "
            f"numpy {np.__version__}, {psutil.cpu_count()} CPUs ({platform.machine()}), "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; do not rewrite README.md")
    parser.add_argument("--suite", action="append", choices=SUITES, help="run only these suites")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.suite or SUITES:
        print(f"running suite {name}...", file=sys.stderr, flush=True)
        rows += run_suite(name, args.quick)
    result = table(rows)
    print(result)
    if not args.quick and not args.suite:
        readme = HERE / "README.md"
        readme.write_text(
            "# Benchmarks\n\nRun `make bench` (or `python benchmarks/run.py`). Medians; references measured in the "
            "same run; ratio = value / reference (lower is better for times, higher for rates).\n\n"
            f"Environment: {environment()}\n\n{result}\n{written_sections(readme)}")
    return 0


def written_sections(readme: Path) -> str:
    """The README's hand-written sections after the table (from its first ``## `` heading), kept across runs."""
    text = readme.read_text() if readme.exists() else ""
    start = text.find("\n## ")
    return text[start:] if start >= 0 else ""


if __name__ == "__main__":
    sys.exit(main())
