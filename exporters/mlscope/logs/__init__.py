"""Structured, correlated logs: a JSON formatter, a non-blocking Loki handler, a per-prediction log.

    import logging
    from mlscope.logs import JsonFormatter, LokiHandler, PredictionLog, Privacy

    handler = LokiHandler("http://127.0.0.1:3100/loki/api/v1/push", env="prod", spool_dir="/var/spool/mlscope",
                          privacy=Privacy(hash={"user_id"}, key=secret))
    logging.getLogger("mlscope.predictions").addHandler(handler)
    monitor = ModelMonitor("churn", "3.2.0", prediction_log=PredictionLog(sample_rate=0.05))
"""
from __future__ import annotations

from .formatter import FIXED_KEYS, JsonFormatter
from .handler import STREAM_LABELS, LokiHandler
from .predictions import PredictionLog
from .privacy import Privacy
from .sampling import LogLevels
from .transport import HttpTransport

__all__ = ["FIXED_KEYS", "STREAM_LABELS", "HttpTransport", "JsonFormatter", "LogLevels", "LokiHandler",
           "PredictionLog", "Privacy"]
