"""Run Python with some installed packages hidden, as in an environment without their extra.

A finder first on ``sys.meta_path`` raises ``ModuleNotFoundError`` for the hidden top-level packages (and their
submodules), exactly what ``import`` raises when a package is not installed. It runs in a fresh interpreter, so
modules the test process already imported do not leak in.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable

from . import ROOT

# What the light core (`pip install mlscope`) does not install.
NOT_CORE = ("scipy", "sklearn", "pandas", "pyarrow", "yaml", "requests", "grafanalib", "psutil", "pynvml",
            "opentelemetry", "cramjam", "google.protobuf", "jsonschema", "gunicorn", "grafana_foundation_sdk",
            "logging_loki", "attr")

_FINDER = '''
import importlib.abc, sys

class _Hidden(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == n or fullname.startswith(n + ".") for n in self.names):
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden by the test)", name=fullname)
        return None

for _name in list(sys.modules):
    if any(_name == n or _name.startswith(n + ".") for n in %r):
        del sys.modules[_name]
sys.meta_path.insert(0, _Hidden(%r))
'''


def prelude(hidden: Iterable[str]) -> str:
    """Source that installs the hiding finder; run it before anything else."""
    names = tuple(hidden)
    return _FINDER % (names, names)


def run_hidden(code: str, hidden: Iterable[str], *, timeout: float = 120, cwd: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which ``hidden`` cannot be imported."""
    source = prelude(hidden) + "\n" + textwrap.dedent(code)
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "exporters"), str(ROOT / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or str(ROOT), env=environment)
