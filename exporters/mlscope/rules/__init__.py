"""Prometheus recording and alert rules generated from one configuration (see ``config``).

The configuration is light (the quality exporter and the demo read its windows); the generator needs the
``stack`` extra (PyYAML) and is imported on first use of ``build_all``, ``render`` or ``stale_files``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PROFILES, Profile, RuleConfig, config_for

if TYPE_CHECKING:
    from .generate import build_all, render, stale_files

__all__ = ["PROFILES", "Profile", "RuleConfig", "config_for", "build_all", "render", "stale_files"]
_GENERATOR = ("build_all", "render", "stale_files")


def __getattr__(name: str) -> Any:
    if name in _GENERATOR:
        from . import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
