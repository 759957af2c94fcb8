"""Dashboards as code: the house style over grafanalib (``style``), the JSON build (``build``), its checks.

Needs the ``stack`` extra (grafanalib): ``pip install 'mlscope[stack]'``.
"""
from .._runtime import require_extra

require_extra("stack", "mlscope.dashboards (dashboards as code)", "grafanalib", "attr")
