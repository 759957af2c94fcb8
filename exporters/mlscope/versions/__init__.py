"""Model versions side by side: a traffic split a service routes requests with, its authenticated control
endpoint, and ``mlscope rollback``, the containment action the alert receiver runs (docs/versions.md).

Standard library and prometheus-client only: a model service imports :class:`TrafficSplit` and
:func:`serve_control` with the light core.
"""
from __future__ import annotations

from .control import control_response, serve_control
from .split import TrafficSplit, UnknownVersion

__all__ = ["TrafficSplit", "UnknownVersion", "control_response", "serve_control"]
