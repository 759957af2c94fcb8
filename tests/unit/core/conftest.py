"""tests/unit/core: tests that need the light core alone (prometheus-client, numpy, pytest, the standard library).

Every test here is marked ``core``; CI runs ``pytest -m core`` in a virtual environment holding only
``pip install . pytest`` (tests/unit/test_layout.py checks the same here, with the extras hidden).
"""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).is_relative_to(HERE):
            item.add_marker(pytest.mark.core)
