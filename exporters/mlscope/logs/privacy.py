"""Field privacy: named fields of a log record are dropped, replaced by a keyed HMAC, or kept."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, MutableMapping
from typing import Any

HASH_PREFIX = "hmac-sha256:"
HASH_HEX_CHARS = 32  # 128 bits: collisions are negligible, lines stay short


class Privacy:
    """Rules applied to a record's fields before they are formatted or shipped.

    ``drop`` fields never appear; ``hash`` fields become ``hmac-sha256:<hex>``
    computed with ``key`` (the same value always gives the same digest, so a
    user can still be followed across lines, but the value cannot be read
    back or guessed without the key). Every other field is kept. Only fields
    are covered: do not interpolate personal data into the message text.
    """

    __slots__ = ("drop", "hash", "_key", "_cache")

    def __init__(self, *, drop: Iterable[str] = (), hash: Iterable[str] = (),
                 key: bytes | str | None = None) -> None:
        self.drop = frozenset(drop)
        self.hash = frozenset(hash)
        if self.drop & self.hash:
            raise ValueError(f"fields both dropped and hashed: {sorted(self.drop & self.hash)}")
        if self.hash and not key:
            raise ValueError("hashing fields needs a secret key (bytes or str); an unkeyed hash of a "
                             "low-entropy value such as an e-mail address can be reversed by guessing")
        self._key = key.encode() if isinstance(key, str) else (key or b"")
        self._cache: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return bool(self.drop or self.hash)

    def digest(self, value: Any) -> str:
        """The keyed digest that replaces ``value``."""
        text = value if isinstance(value, str) else str(value)
        found = self._cache.get(text)
        if found is None:
            mac = hmac.new(self._key, text.encode("utf-8", "surrogatepass"), hashlib.sha256)
            found = HASH_PREFIX + mac.hexdigest()[:HASH_HEX_CHARS]
            if len(self._cache) < 10_000:
                self._cache[text] = found
        return found

    def apply(self, fields: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Drop and hash the named fields of ``fields`` in place; return it."""
        for name in self.drop.intersection(fields):
            del fields[name]
        for name in self.hash.intersection(fields):
            if fields[name] is not None:
                fields[name] = self.digest(fields[name])
        return fields
