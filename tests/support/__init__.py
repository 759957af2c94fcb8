"""Support code of the test suite: helpers, local receivers, recorded data and the apps the tests start.

Importable as ``support`` (``pythonpath`` in pyproject.toml). Modules here import only the light core at
module level unless their name says otherwise (``alerting_stack``, ``drift_support``, ``recorded_psutil``,
``remote_write_receiver`` need the test extras).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
