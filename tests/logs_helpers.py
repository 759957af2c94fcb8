"""Fixtures shared by the log tests: a Loki receiver and handlers/loggers wired to it."""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from loki_receiver import LokiReceiver
from mlscope.logs import LokiHandler

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
