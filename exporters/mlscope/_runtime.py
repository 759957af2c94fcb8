"""Process-level helpers shared by the commands and the optional parts: missing extras, shutdown signals."""
from __future__ import annotations

import importlib.util
import signal
import threading


class MissingExtra(ImportError):
    """A feature needs packages of an extra that is not installed; the message says what to install."""

    def __init__(self, feature: str, extra: str, missing: list[str]) -> None:
        self.feature, self.extra, self.missing = feature, extra, missing
        super().__init__(f"{feature} needs the mlscope[{extra}] extra ({', '.join(missing)} not installed): "
                         f"pip install 'mlscope[{extra}]'")


def missing_modules(*modules: str) -> list[str]:
    """The top-level modules of ``modules`` that cannot be imported here."""
    return [name for name in modules if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses the name, or a broken half-installed package
        return False


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` when any of ``modules`` is not installed."""
    missing = missing_modules(*modules)
    if missing:
        raise MissingExtra(feature, extra, missing)


def wait_for_shutdown() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM (``docker stop``, ``mlscope down``); the caller then cleans up."""
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
