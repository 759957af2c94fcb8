"""Small process-level helpers shared by the long-running commands."""
from __future__ import annotations

import signal
import threading


def wait_for_shutdown() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM (``docker stop``, ``mlscope down``); the caller then cleans up."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
