"""Suite `install`: what a model service installs and imports: the light core against ``mlscope[all]``.

Each case is a fresh virtual environment holding mlscope from this checkout (``pip install .`` with or
without extras); the size is what the install adds to an empty environment's site-packages, the import
time is the median wall time of ``python -c "import mlscope"`` minus that of ``python -c pass``. The
0.1.0 row installs the dependencies 0.1.0 required of every user (the stack, GPU and demo ones).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_IN_0_1_0 = ["prometheus-client>=0.20", "python-logging-loki>=0.3.1", "grafanalib>=0.7.1", "psutil>=5.9",
                     "nvidia-ml-py>=12.535", "scikit-learn>=1.3", "requests>=2.31", "PyYAML>=6.0"]


def _site_bytes(venv: Path) -> int:
    site = next(venv.glob("lib/python*/site-packages"))
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())


def _venv(where: Path, requirements: list[str]) -> tuple[Path, int]:
    """A fresh venv with ``requirements`` installed; returns its python and the bytes they added."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    empty = _site_bytes(where)
    python = where / "bin" / "python"
    if requirements:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                       check=True)
    return python, _site_bytes(where) - empty


def _import_ms(python: Path, statement: str, repeat: int) -> float:
    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([str(python), "-c", code], check=True)
        return time.perf_counter() - start

    once(statement)  # warm the file cache and write the .pyc files
    return (statistics.median(once(statement) for _ in range(repeat))
            - statistics.median(once("pass") for _ in range(repeat))) * 1e3


def suite_install(quick: bool) -> list[Row]:
    repeat = 5 if quick else 15
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        core, core_size = _venv(base / "core", [str(ROOT)])
        everything, all_size = _venv(base / "all", [f"{ROOT}[all]"])
        _, old_size = _venv(base / "old", REQUIRED_IN_0_1_0)
        core_ms = _import_ms(core, "import mlscope", repeat)
        all_ms = _import_ms(everything, "import mlscope", repeat)
        core_service_ms = _import_ms(core, "import mlscope.drift, mlscope.quality, mlscope.logs", repeat)
        all_service_ms = _import_ms(everything, "import mlscope.drift, mlscope.quality, mlscope.logs", repeat)
    mib = 1024 * 1024
    return [
        Row("install", "installed size: pip install mlscope (core)", core_size / mib, "MiB",
            "mlscope[all]", all_size / mib),
        Row("install", "installed size: pip install mlscope (core)", core_size / mib, "MiB",
            "0.1.0's required dependencies", old_size / mib),
        Row("install", "import mlscope (core)", core_ms, "ms", "the same in mlscope[all]", all_ms),
        Row("install", "import mlscope.drift, .quality, .logs (core)", core_service_ms, "ms",
            "the same in mlscope[all]", all_service_ms),
    ]
