"""Cheap, process-unique request ids (no uuid4 on the hot path)."""
from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(4).hex()
_counter = itertools.count(1)


def new_request_id() -> str:
    """Return an id unique across processes with overwhelming probability: ``<random>-<n>``."""
    return f"{_PREFIX}-{next(_counter):x}"


def reseed_after_fork() -> None:
    """Give a forked child its own prefix so ids never repeat across workers."""
    global _PREFIX, _counter
    _PREFIX = os.urandom(4).hex()
    _counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reseed_after_fork)
