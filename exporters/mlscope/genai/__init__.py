"""Generative models in the light core: tokens, time to first token, time per output token, cost, feedback.

See docs/generative.md. Names and their OpenTelemetry GenAI mapping: :mod:`mlscope.catalog.genai`.
"""
from __future__ import annotations

from .monitor import LENGTH_FEATURES, Generation, GenerationMonitor
from .prices import Price, PriceError, PriceTable
from .profile import length_profile
from .streams import wrap_async_stream, wrap_stream

__all__ = ["GenerationMonitor", "Generation", "Price", "PriceTable", "PriceError", "LENGTH_FEATURES",
           "length_profile", "wrap_stream", "wrap_async_stream"]
