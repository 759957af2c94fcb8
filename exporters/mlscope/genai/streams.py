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


class _Recorder:
    """What both wrappers do with each item and at the end."""

    __slots__ = ("generation", "tokens_of", "finish_reason_of", "reason")

    def __init__(self, generation: Generation, tokens_of: TokensOf, finish_reason_of: ReasonOf) -> None:
        self.generation, self.tokens_of, self.finish_reason_of = generation, tokens_of, finish_reason_of
        self.reason: str | None = None

    def item(self, item: Any) -> None:
        self.generation.chunk(self.tokens_of(item))
        self.reason = self.finish_reason_of(item) or self.reason

    def stopped(self, exc: BaseException) -> None:
        """The consumer went away (abandoned) or the source raised (error)."""
        if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
            self.generation.close()
        else:
            self.generation.fail(exc)

    def done(self) -> None:
        self.generation.finish(self.reason)


def wrap_stream(generation: Generation, source: Iterable[T], tokens_of: TokensOf = _one,
                finish_reason_of: ReasonOf = _none) -> Generator[T, None, None]:
    """Yield ``source``'s items, recording each in ``generation`` and ending it once."""
    recorder = _Recorder(generation, tokens_of, finish_reason_of)
    try:
        for item in source:
            recorder.item(item)
            yield item
    except BaseException as exc:
        recorder.stopped(exc)
        raise
    recorder.done()


async def wrap_async_stream(generation: Generation, source: AsyncIterable[T], tokens_of: TokensOf = _one,
                            finish_reason_of: ReasonOf = _none) -> AsyncGenerator[T, None]:
    """The async form of :func:`wrap_stream` (``async for``); ``aclose()`` or cancellation abandons it."""
    recorder = _Recorder(generation, tokens_of, finish_reason_of)
    try:
        async for item in source:
            recorder.item(item)
            yield item
    except BaseException as exc:
        recorder.stopped(exc)
        raise
    recorder.done()
