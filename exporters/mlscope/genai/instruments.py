"""The generation mode's metrics, created once per registry from the catalog (:mod:`mlscope.catalog.genai`)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from .._promclient import PerRegistry
from ..catalog import genai as cat


class GenAIInstruments:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.generations = cat.GENERATIONS.create(registry)
        self.token_usage = cat.TOKEN_USAGE.create(registry)
        self.tokens = cat.TOKENS.create(registry)
        self.duration = cat.DURATION.create(registry)
        self.ttft = cat.TIME_TO_FIRST_TOKEN.create(registry)
        self.tpot = cat.TIME_PER_OUTPUT_TOKEN.create(registry)
        self.tokens_per_second = cat.OUTPUT_TOKENS_PER_SECOND.create(registry)
        self.no_first_token = cat.NO_FIRST_TOKEN.create(registry)
        self.errors = cat.ERRORS.create(registry)
        self.cost = cat.COST.create(registry)
        self.in_flight = cat.STREAMS_IN_FLIGHT.create(registry)


_instruments: PerRegistry[GenAIInstruments] = PerRegistry()


def genai_instruments(registry: CollectorRegistry | None) -> GenAIInstruments:
    return _instruments.get(registry, GenAIInstruments)
