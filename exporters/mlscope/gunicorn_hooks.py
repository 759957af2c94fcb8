"""Gunicorn server hooks for prometheus-client's multiprocess mode.

Use with ``gunicorn -c python:mlscope.gunicorn_hooks ...`` (or import
``child_exit`` into your own config) and set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty folder before gunicorn starts.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import multiprocess

_mark_process_dead: Callable[[int], None] = multiprocess.mark_process_dead  # a typed view of an untyped function


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (in-flight requests) from the aggregate."""
    _mark_process_dead(worker.pid)
