"""One JSON object per line, with fixed keys first: usable alone for stdout and files, and by the Loki handler."""
from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from .. import tracing
from .privacy import Privacy
from .timestamps import Clock

# Keys every line has, in this order (null when the record has no value for them).
FIXED_KEYS = ("ts", "level", "event", "model", "model_version", "request_id", "data_batch_id", "message")
# Keys taken from the record's `extra` when present (the rest of FIXED_KEYS is computed).
CONTEXT_KEYS = ("event", "model", "model_version", "request_id", "data_batch_id")
TRACE_KEYS = ("trace_id", "span_id")
# LogRecord attributes: `extra` cannot set them.
RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_NOT_EXTRAS = RESERVED | frozenset(CONTEXT_KEYS) | frozenset(TRACE_KEYS)


def _clean(value: Any) -> Any:
    """``value`` with non-finite floats turned into strings, so the line stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _default(value: Any) -> Any:
    """JSON for what json cannot encode: numpy scalars and arrays, sets, then ``str()``."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# One encoder, built once: json.dumps() with options builds a new one per call.
_STRICT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default)
_LENIENT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)


def _dumps(fields: Mapping[str, Any]) -> str:
    try:
        return _STRICT.encode(fields)
    except ValueError:
        return _STRICT.encode(_clean(json.loads(_LENIENT.encode(fields))))


# What UTF-8 cannot encode: lone surrogates, as ``surrogateescape`` leaves for undecodable bytes (file names).
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(fields: Mapping[str, Any]) -> tuple[str, bool]:
    """:func:`dumps` and whether lone surrogates had to be escaped to make the line valid UTF-8.

    They can only occur inside JSON strings, where ``\\udcff`` is the same
    value (``json.loads`` gives the surrogate back): nothing is lost.
    """
    line = _dumps(fields)
    if line.isascii():
        return line, False
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_json_escape, line), True
    return line, False


def dumps(fields: Mapping[str, Any]) -> str:
    """Compact, strict JSON, valid UTF-8 (non-finite floats become strings, lone surrogates ``\\uXXXX``)."""
    return json_line(fields)[0]


def utf8_text(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD: for label and metadata values, which are not JSON."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Fixed keys come first (``ts``, ``level``, ``event``, ``model``,
    ``model_version``, ``request_id``, ``data_batch_id``, ``message``), then
    ``trace_id``/``span_id`` when an OpenTelemetry span is active, then
    ``static`` fields, then the record's extras (``logger.info(..., extra={})``),
    then ``exc`` with the traceback. ``event`` defaults to the message
    template (``record.msg``), which groups lines that differ only in values.
    ``privacy`` drops or hashes named fields before anything is written.
    """

    def __init__(self, *, static: Mapping[str, Any] | None = None, privacy: Privacy | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})
        self.privacy = privacy if privacy is not None and privacy.active else None
        self._clock = Clock()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as an ordered dictionary of JSON-able fields (privacy applied)."""
        attrs = record.__dict__
        event = attrs.get("event")
        fields: dict[str, Any] = {
            "ts": self._clock.format(record.created),
            "level": record.levelname.lower(),
            "event": event if event is not None else (record.msg if isinstance(record.msg, str) else None),
            "model": attrs.get("model"),
            "model_version": attrs.get("model_version"),
            "request_id": attrs.get("request_id"),
            "data_batch_id": attrs.get("data_batch_id"),
            "message": record.getMessage(),
        }
        trace_id = attrs.get("trace_id")
        if trace_id is None:
            ids = tracing.current_ids()
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
        else:
            fields["trace_id"], fields["span_id"] = trace_id, attrs.get("span_id")
        if self.static:
            for key, value in self.static.items():
                fields.setdefault(key, value)
        extras = attrs.keys() - _NOT_EXTRAS
        if extras:
            for key in attrs:  # in the order the caller gave them
                if key in extras:
                    fields.setdefault(key, attrs[key])
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        if self.privacy is not None:
            self.privacy.apply(fields)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        return dumps(self.fields(record))
