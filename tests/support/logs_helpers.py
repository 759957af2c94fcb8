"""Helpers of the log tests (the receiver and make_handler fixtures are in tests/conftest.py)."""
from __future__ import annotations

import itertools
import json
import logging
import os

from prometheus_client import CollectorRegistry

from mlscope.logs import JsonFormatter, LokiHandler

from .loki_receiver import LokiReceiver

_names = itertools.count()


def unique_logger_name(prefix: str = "mlscope.test") -> str:
    """A logger name no other test uses (loggers are process-wide)."""
    return f"{prefix}.{next(_names)}"


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def populate_log_metrics(registry: CollectorRegistry) -> LokiHandler:
    """Give every log metric of the catalog a sample in ``registry``, through real use.

    One line is oversize (truncated), its push gets a 500 (retried) then a 400
    (dropped); one carries a lone surrogate (escaped); a prediction log counts one prediction. The returned handler
    must stay referenced while the registry is scraped (it feeds the gauges).
    """
    from mlscope import ModelMonitor
    from mlscope.logs import PredictionLog

    rx = LokiReceiver()
    rx.script = [500, 400]
    handler = LokiHandler(rx.url, registry=registry, flush_interval=0.01, min_backoff=0.01, max_line_bytes=1024)
    logger = logging.getLogger(unique_logger_name())
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning("x" * 2000)
    assert handler.drain(10)
    logger.warning("ok", extra={"file": os.fsdecode(b"\xff.csv")})
    ModelMonitor("logged", "1", registry=registry, prediction_log=PredictionLog(logger)).record_error(ValueError())
    assert handler.drain(10)
    rx.close()
    return handler


class JsonLines(logging.Handler):
    """Formats records through the JsonFormatter and keeps the parsed lines."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def logger(self, name: str) -> logging.Logger:
        """A non-propagating logger whose only handler is this one."""
        logger = logging.getLogger(f"mlscope.test.lines.{name}")
        logger.handlers[:] = [self]
        logger.propagate = False
        return logger
