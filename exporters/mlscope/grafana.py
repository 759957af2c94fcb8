"""Public path of the dashboards' house style (``from mlscope import grafana as gf`` in dashboard sources).

The implementation lives in :mod:`mlscope.dashboards.style`; this module re-exports its public names.
"""
from __future__ import annotations

from .dashboards.style import *  # noqa: F403 - the public path re-exports the whole house style
