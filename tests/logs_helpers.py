"""Fixtures shared by the log tests: a Loki receiver and handlers/loggers wired to it."""
from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from loki_receiver import LokiReceiver
from mlscope.logs import JsonFormatter, LokiHandler

_names = itertools.count()


@pytest.fixture
def receiver() -> Iterator[LokiReceiver]:
    r = LokiReceiver(allowed_labels={"app", "env", "model", "model_version", "level"})
    yield r
    r.close()


@pytest.fixture
def make_handler(receiver: LokiReceiver) -> Iterator:
    """``make_handler(**kwargs) -> (handler, logger, registry)`` shipping to the receiver."""
    made: list[LokiHandler] = []

    def make(url: str | None = None, **kwargs) -> tuple[LokiHandler, logging.Logger, CollectorRegistry]:
        registry = kwargs.pop("registry", None) or CollectorRegistry()
        kwargs = {"flush_interval": 0.05, "min_backoff": 0.05, "max_backoff": 0.5, "shutdown_timeout": 2.0,
                  **kwargs}
        handler = LokiHandler(url or receiver.url, registry=registry, **kwargs)
        made.append(handler)
        logger = logging.getLogger(f"mlscope.test.{next(_names)}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        return handler, logger, registry

    yield make
    for handler in made:
        handler.shutdown_timeout = 0.5
        handler.close()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def populate_log_metrics(registry: CollectorRegistry) -> LokiHandler:
    """Give every log metric of the catalog a sample in ``registry``, through real use.

    One line is oversize (truncated), its push gets a 500 (retried) then a 400
    (dropped); a prediction log counts one prediction. The returned handler
    must stay referenced while the registry is scraped (it feeds the gauges).
    """
    from mlscope import ModelMonitor
    from mlscope.logs import PredictionLog

    rx = LokiReceiver()
    rx.script = [500, 400]
    handler = LokiHandler(rx.url, registry=registry, flush_interval=0.01, min_backoff=0.01, max_line_bytes=1024)
    logger = logging.getLogger(f"mlscope.test.{next(_names)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning("x" * 2000)
    assert handler.drain(10)
    logger.warning("ok")
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
