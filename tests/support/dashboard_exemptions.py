"""Dashboard queries a short-lived test stack cannot fill, each with where it is checked instead."""
from __future__ import annotations

from mlscope.catalog.anomaly import NEEDS_HISTORY_NAMES
from mlscope.catalog.modelservers import KINDS


def reads_seasonal_history(expr: str) -> bool:
    """Whether ``expr`` reads a series of the adaptive alerts that needs an anomaly offset's worth of history
    (5m in the fast profile): alerting/tests/anomaly.yml and the `anomaly` benchmark check them."""
    return any(name in expr for name in NEEDS_HISTORY_NAMES)


def reads_model_server(expr: str) -> bool:
    """Whether ``expr`` reads a model server's series (vLLM/SGLang, or what the rules record from them): the demo
    runs no model server; tests/e2e/test_dashboards_live.py scrapes the fixtures' servers and checks these."""
    return any(f"{kind}:" in expr for kind in KINDS) or "mlscope_server_" in expr
