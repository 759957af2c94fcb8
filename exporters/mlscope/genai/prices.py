"""The price table: input and output token prices per model, set in code or read from a JSON file (no network).

Prices are applied when a generation is recorded: the cost counter adds that generation's cost at the price
of that moment, so changing a price later changes later costs only, never the history already counted.
"""
from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PriceError(ValueError):
    """A price table that cannot be used (a negative or non-numeric price, a malformed file); says where."""


@dataclass(frozen=True)
class Price:
    """Cost of one input (prompt) token and of one output (response) token, in the table's currency."""

    input_per_token: float
    output_per_token: float

    def __post_init__(self) -> None:
        for name in ("input_per_token", "output_per_token"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise PriceError(f"{name} must be a finite number >= 0, got {value!r}")

    def of(self, token_type: str) -> float:
        return self.input_per_token if token_type == "input" else self.output_per_token


class PriceTable:
    """Prices by model name. ``prices``: {model: Price, or {"input": x, "output": y}} per ``per_tokens`` tokens
    (1 by default; providers quote per 1,000,000). Thread-safe; :meth:`set` changes a price from now on."""

    def __init__(self, prices: Mapping[str, Price | Mapping[str, float]] | None = None, *, currency: str = "USD",
                 per_tokens: float = 1.0) -> None:
        if isinstance(per_tokens, bool) or not isinstance(per_tokens, (int, float)) or not per_tokens > 0:
            raise PriceError(f"per_tokens must be a number > 0, got {per_tokens!r}")
        self.currency = currency
        self._per_tokens = float(per_tokens)
        self._prices: dict[str, Price] = {}
        self._lock = threading.Lock()
        for model, price in (prices or {}).items():
            self.set(model, price)

    def set(self, model: str, price: Price | Mapping[str, float]) -> None:
        """Price ``model`` from now on (generations already recorded keep the cost they were counted at)."""
        if not isinstance(price, Price):
            try:
                price = Price(price["input"] / self._per_tokens, price["output"] / self._per_tokens)
            except (KeyError, TypeError) as exc:
                raise PriceError(f"price of {model!r} must be a Price or {{'input': x, 'output': y}}, "
                                 f"got {price!r}") from exc
        with self._lock:
            self._prices[str(model)] = price

    def price(self, model: str) -> Price | None:
        """The current price of ``model``, or None when the table has none."""
        return self._prices.get(model)

    def models(self) -> list[str]:
        return sorted(self._prices)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Read ``{"currency": "USD", "per_tokens": 1000000, "models": {"m": {"input": 3, "output": 15}}}``."""
        try:
            data: Any = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise PriceError(f"{path}: cannot read the price table: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise PriceError(f"{path}: a price table is an object with a 'models' object")
        try:
            return cls(data["models"], currency=str(data.get("currency", "USD")),
                       per_tokens=data.get("per_tokens", 1.0))
        except PriceError as exc:
            raise PriceError(f"{path}: {exc}") from None
