"""Iterator wrappers: monitor a streaming response (sync or async) without changing what the caller sees.

Each item passes through unchanged; ``tokens_of(item)`` says how many output tokens it holds (default 1) and
``finish_reason_of(item)`` the finish reason it announces, if any (default: none; exhaustion is ``stop``).
The stream ends as ``error`` when the source raises, and as ``abandoned`` when the consumer stops early
(``close()``, ``break`` out of a ``for``, garbage collection), which Python signals to a generator with
``GeneratorExit``.
"""
from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Callable, Generator, Iterable
from typing import Any, TypeVar

from .monitor import Generation

T = TypeVar("T")
TokensOf = Callable[[Any], int]
ReasonOf = Callable[[Any], str | None]


def _one(_: Any) -> int:
    return 1


def _none(_: Any) -> str | None:
    return None


def wrap_stream(generation: Generation, source: Iterable[T], tokens_of: TokensOf = _one,
                finish_reason_of: ReasonOf = _none) -> Generator[T, None, None]:
    """Yield ``source``'s items, recording each in ``generation`` and ending it once."""
    reason: str | None = None
    try:
        for item in source:
            generation.chunk(tokens_of(item))
            reason = finish_reason_of(item) or reason
            yield item
    except GeneratorExit:
        generation.close()
        raise
    except BaseException as exc:
        generation.fail(exc)
        raise
    generation.finish(reason)


async def wrap_async_stream(generation: Generation, source: AsyncIterable[T], tokens_of: TokensOf = _one,
                            finish_reason_of: ReasonOf = _none) -> AsyncGenerator[T, None]:
    """The async form of :func:`wrap_stream` (``async for``); ``aclose()`` or cancellation abandons it."""
    reason: str | None = None
    try:
        async for item in source:
            generation.chunk(tokens_of(item))
            reason = finish_reason_of(item) or reason
            yield item
    except GeneratorExit:
        generation.close()
        raise
    except BaseException as exc:
        if type(exc).__name__ == "CancelledError":
            generation.close()
        else:
            generation.fail(exc)
        raise
    generation.finish(reason)
