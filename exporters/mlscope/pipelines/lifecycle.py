"""Runs that do not end by themselves: SIGTERM inside a run, and a run still open when the process exits.

Every open run is held here until it ends. SIGTERM while one is open (a scheduler stopping the job, a
``kill``) ends each open run as failed with error type ``SIGTERM`` (so it pushes), then does what the
process would have done without mlscope: the handler that was installed before is called, or the default
action (terminate by the signal) taken, or nothing when SIGTERM was ignored. The handler is installed by
the first run opened in the main thread (``PipelineMonitor(handle_sigterm=False)`` opts out) and puts the
previous one back once it has run. A run still open at interpreter exit is warned about, counted
(``run_not_ended``) and ended as failed with error type ``RunNotEnded``, so it pushes too.
"""
from __future__ import annotations

import atexit
import os
import signal
import threading
from types import FrameType
from typing import Any, Protocol

from ..catalog import pipelines as cat


class OpenRun(Protocol):
    def end(self, error: Any = None) -> Any: ...
    def abandoned(self) -> None: ...


_lock = threading.Lock()
_open: dict[int, OpenRun] = {}
_previous: Any = None
_at_exit_registered = False


def opened(run: OpenRun, *, handle_sigterm: bool = True) -> None:
    """Hold ``run`` until :func:`closed`; install the exit hook and, in the main thread, the SIGTERM handler."""
    global _at_exit_registered
    with _lock:
        _open[id(run)] = run
        if not _at_exit_registered:
            atexit.register(end_abandoned)
            _at_exit_registered = True
    if handle_sigterm:
        _install()


def closed(run: OpenRun) -> None:
    with _lock:
        _open.pop(id(run), None)


def open_runs() -> list[OpenRun]:
    """The runs not ended yet, newest first."""
    with _lock:
        return list(reversed(_open.values()))


def _install() -> None:
    global _previous
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is not on_sigterm:
            signal.signal(signal.SIGTERM, on_sigterm)
            _previous = current
    except (ValueError, OSError):  # an embedded interpreter without signals
        pass


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """End every open run as failed (``SIGTERM``, pushed), then the previous handler or the default action."""
    global _previous
    for run in open_runs():
        run.end(cat.SIGTERM_ERROR)
    previous, _previous = _previous, None
    signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:  # SIG_DFL (or a handler set outside Python): terminate by the signal
        os.kill(os.getpid(), signal.SIGTERM)


def end_abandoned() -> None:
    """At exit: warn about, count and end (as ``RunNotEnded``, pushed) every run never ended."""
    for run in open_runs():
        run.abandoned()
