"""Helpers for the Prometheus language: durations, and the metric names a PromQL expression reads.

:func:`metric_names` is a lexical scan, not a parser: strings, label
matchers, ranges, grouping clauses, numbers and function calls are removed,
and what is left of the identifiers are metric names. Syntax itself is
checked by Prometheus.
"""
from __future__ import annotations

import re

# Prometheus durations: units from the largest to the smallest, each at most once (model.ParseDuration).
_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration: ``90s``, ``5m``, ``1h30m``, ``1d``, ``1w``, ``1y`` (365 days), ``100ms``.

    Raises ValueError for anything else (units out of order or repeated, a
    space, a sign, a fraction, an empty string); ``"0"`` is zero, as in Prometheus.
    """
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text else None
    if match is None or not any(match.groups()):
        raise ValueError(f"not a Prometheus duration: {text!r} (expected e.g. 90s, 5m, 1h30m, 1d, 1w, 1y, 100ms)")
    return float(sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n))

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\b(?:offset|@)\s*-?[\w.$()]+")
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "offset", "inf", "nan", "Inf", "NaN"})


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    text = _STRINGS.sub(" ", expr)
    while _MATCHERS.search(text):
        text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names
