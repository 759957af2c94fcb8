"""What pytest collected, as plain data, for the suite's own checks (tests/unit/test_suite_layout.py).

Loaded as a plugin (``-p support.collected``), it writes every collected test's path and marker names to the
JSON file named by ``MLSCOPE_COLLECTED`` once collection is done.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import pytest


def describe(items: Iterable[pytest.Item]) -> list[dict[str, Any]]:
    """Each test's path and the names of its markers (as pytest applied them: conftest hooks included)."""
    return [{"path": str(item.path), "markers": sorted({m.name for m in item.iter_markers()})} for item in items]


def pytest_collection_finish(session: pytest.Session) -> None:
    with open(os.environ["MLSCOPE_COLLECTED"], "w", encoding="utf-8") as out:
        json.dump(describe(session.items), out)
