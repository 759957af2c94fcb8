"""Request ids: cheap process-unique ids (no uuid4 on the hot path), and the one normalisation of callers' ids.

Every path that names a prediction by its request id (exemplars and log
lines, the quality store, outcomes from the monitor, HTTP or a file) goes
through :func:`clean_request_id`, so the same id always means the same key.
"""
from __future__ import annotations

import hashlib
import itertools
import numbers
import os
import re

# Exemplar label sets are limited to 128 characters in total (OpenMetrics); a request id leaves room for the
# trace and span ids (32 and 16 hex), so an exemplar always keeps all three: 55 characters.
MAX_REQUEST_ID = 128 - len("request_id") - len("trace_id") - 32 - len("span_id") - 16
_HASH_CHARS = 12  # a longer id keeps its start and 12 hex of a hash of the whole id (48 bits)
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._:/@+=-]")

_PREFIX = os.urandom(4).hex()
_counter = itertools.count(1)


def new_request_id() -> str:
    """Return an id unique across processes with overwhelming probability: ``<random>-<n>``."""
    return f"{_PREFIX}-{next(_counter):x}"


def clean_request_id(request_id: object) -> str:
    """A caller's request id made safe for exemplars and log lines: a bounded, quote-free string.

    Ids of letters, digits and ``._:/@+=-`` up to 55 characters (UUIDs, W3C
    trace ids, ULIDs...) pass unchanged; other characters become ``_``. A longer
    id becomes its first 42 characters, ``-`` and 12 hex of a hash of the whole
    id: distinct long ids stay distinct, and the exemplar keeps room for the
    trace and span ids. Idempotent: cleaning a cleaned id changes nothing.
    """
    text = request_id if isinstance(request_id, str) else str(request_id)
    if len(text) > MAX_REQUEST_ID:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_HASH_CHARS // 2).hexdigest()
        text = f"{text[:MAX_REQUEST_ID - _HASH_CHARS - 1]}-{digest}"
    return _UNSAFE_ID_CHARS.sub("_", text)


def request_id_key(request_id: object) -> str | None:
    """The key a prediction and its outcome are joined on: the cleaned id, or None when it is unusable.

    Strings and integers (``42`` is ``"42"``; numpy integers too) are ids;
    anything else (None, bools, floats, containers) and the empty string are not.
    """
    if isinstance(request_id, bool) or not isinstance(request_id, (str, numbers.Integral)):
        return None
    text = clean_request_id(request_id if isinstance(request_id, str) else int(request_id))
    return text or None


def reseed_after_fork() -> None:
    """Give a forked child its own prefix so ids never repeat across workers."""
    global _PREFIX, _counter
    _PREFIX = os.urandom(4).hex()
    _counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reseed_after_fork)
