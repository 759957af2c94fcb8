"""The part of LogQL mlscope's queries use, evaluated over the lines a ``LokiReceiver`` stored.

Checked against Loki's documentation (https://grafana.com/docs/loki/latest/query/), not against a running
Loki (none runs where the tests run); Grafana's grammar (``@grafana/lezer-logql``) parses the same queries
in ``tests/e2e/test_dashboards.py``. The subset:

- stream selector ``{name op "value", ...}`` with ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored);
- line filters ``|= "s"``, ``!= "s"``, ``|~ "re"``, ``!~ "re"`` (substring or unanchored regex);
- ``| json`` without arguments: the line's JSON object as labels, nested keys joined with ``_``, characters
  outside ``[a-zA-Z0-9_]`` replaced by ``_``, arrays skipped, ``null`` as ``""``, a key that is a stream
  label renamed ``<key>_extracted``; a line that is not a JSON object gets ``__error__="JSONParserErr"``;
- label filters ``| name op "value"`` (same operators) over stream labels, structured metadata and
  extracted labels: with structured metadata no parser is needed (``{...} | request_id="abc-1"``); one stage
  may join them with ``or`` (``| trace_id="t" or request_id="r"``: either holds);
- ``count_over_time(<log query> [range])``, ``rate(<log query> [range])`` (count / range seconds), each
  optionally inside ``sum(...)`` or ``sum by (labels) (...)``, at one instant: entries in ``(at - range, at]``.

Log queries return one of identical entries (same stream, timestamp and line), as Loki's queriers merge
them (``LokiReceiver.select``); metric queries count every stored copy, which is what a real Loki did
after a push that timed out had landed and was sent again (issue 18: 18,023 counted for 18,000 lines).

Strings are double-quoted (Go escapes) or back-quoted (raw). Anything else raises ``LogQLSubsetError``: a
query the subset cannot evaluate is never silently evaluated as something else.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from mlscope.rules.promql import duration_seconds


class LogQLSubsetError(ValueError):
    """The query uses LogQL outside this subset (or is not LogQL)."""


class Entry(Protocol):
    """What a stored line offers a query (``support.loki_receiver.Line``)."""

    labels: dict[str, str]
    ts: int
    line: str
    metadata: dict[str, str]


_TOKEN = re.compile(r'''\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<op>\|=|\|~|!=|!~|=~|=|\||[{}(),\[\]])
                        |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>[0-9][0-9a-z.]*))''', re.X)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise LogQLSubsetError(f"cannot read {expr[pos:]!r} in {expr!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _string(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return json.loads(token)  # Go's double-quoted escapes, for what the queries use (\" \\ \n \t \uXXXX)


Matcher = Callable[[str], bool]


def _matcher(op: str, value: str) -> Matcher:
    if op in ("=~", "!~"):
        pattern = re.compile(value)
        return (lambda v: pattern.fullmatch(v) is not None) if op == "=~" else (
            lambda v: pattern.fullmatch(v) is None)
    return (lambda v: v == value) if op == "=" else (lambda v: v != value)


def _line_filter(op: str, value: str) -> Matcher:
    if op in ("|~", "!~"):
        pattern = re.compile(value)
        return (lambda line: pattern.search(line) is not None) if op == "|~" else (
            lambda line: pattern.search(line) is None)
    return (lambda line: value in line) if op == "|=" else (lambda line: value not in line)


def _flatten(obj: Mapping[str, object], prefix: str, out: dict[str, str]) -> None:
    for key, value in obj.items():
        name = prefix + re.sub(r"[^a-zA-Z0-9_]", "_", key)
        if isinstance(value, dict):
            _flatten(value, name + "_", out)
        elif isinstance(value, list):
            continue
        elif value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)


def json_labels(line: str, stream: Mapping[str, str]) -> dict[str, str]:
    """What ``| json`` adds for ``line`` (see the module's description)."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return {"__error__": "JSONParserErr"}
    flat: dict[str, str] = {}
    _flatten(obj, "", flat)
    return {(f"{k}_extracted" if k in stream else k): v for k, v in flat.items()}


Stage = Callable[[Entry, dict[str, str]], bool]


@dataclass
class LogQuery:
    """A parsed log query: stream matchers, then pipeline stages in order."""

    selector: list[tuple[str, Matcher]]
    stages: list[Stage]

    def labels(self, entry: Entry) -> dict[str, str] | None:
        """The entry's labels after the pipeline (stream, structured metadata, extracted), None if filtered out."""
        if not all(m(entry.labels.get(name, "")) for name, m in self.selector):
            return None
        labels = {**entry.metadata, **entry.labels}
        return labels if all(stage(entry, labels) for stage in self.stages) else None

    def select(self, entries: Iterable[Entry]) -> list[Entry]:
        """The entries the log query returns."""
        return [e for e in entries if self.labels(e) is not None]


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr, self.toks, self.i = expr, _tokens(expr), 0

    def peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.i >= len(self.toks):
            raise LogQLSubsetError(f"unexpected end of {self.expr!r}")
        k, v = self.toks[self.i]
        if (kind and k != kind) or (value and v != value):
            raise LogQLSubsetError(f"expected {value or kind}, got {v!r} in {self.expr!r}")
        self.i += 1
        return v

    def done(self) -> None:
        if self.i != len(self.toks):
            raise LogQLSubsetError(f"unexpected {self.peek()!r} in {self.expr!r}")

    def matchers(self, close: str) -> list[tuple[str, str, str]]:
        out = []
        while self.peek() != close:
            name, op = self.take("ident"), self.take("op")
            if op not in ("=", "!=", "=~", "!~"):
                raise LogQLSubsetError(f"matcher operator {op!r} in {self.expr!r}")
            out.append((name, op, _string(self.take("str"))))
            if self.peek() == ",":
                self.take()
        return out

    def log_query(self) -> LogQuery:
        self.take("op", "{")
        selector = [(name, _matcher(op, value)) for name, op, value in self.matchers("}")]
        self.take("op", "}")
        if not selector:
            raise LogQLSubsetError(f"empty stream selector in {self.expr!r}")
        stages: list[Stage] = []
        while self.peek() in ("|=", "!=", "|~", "!~", "|"):
            op = self.take()
            if op != "|":
                keep = _line_filter(op, _string(self.take("str")))
                stages.append(lambda e, _labels, keep=keep: keep(e.line))
            elif self.peek() == "json":
                self.take()
                stages.append(lambda e, labels: labels.update(json_labels(e.line, e.labels)) or True)
            else:
                alternatives = [self.label_filter()]
                while self.peek() == "or":
                    self.take()
                    alternatives.append(self.label_filter())
                stages.append(lambda _e, labels, alternatives=alternatives: any(
                    keep(labels.get(name, "")) for name, keep in alternatives))
        return LogQuery(selector, stages)

    def label_filter(self) -> tuple[str, Matcher]:
        name, fop = self.take("ident"), self.take("op")
        if fop not in ("=", "!=", "=~", "!~"):
            raise LogQLSubsetError(f"label filter operator {fop!r} in {self.expr!r}")
        return name, _matcher(fop, _string(self.take("str")))


def parse_log_query(expr: str) -> LogQuery:
    parser = _Parser(expr)
    query = parser.log_query()
    parser.done()
    return query


RANGE_FUNCTIONS = {"count_over_time", "rate"}


def _range_function(p: _Parser) -> tuple[str, LogQuery, float]:
    function = p.take("ident")
    if function not in RANGE_FUNCTIONS:
        raise LogQLSubsetError(f"function {function!r} is outside the subset in {p.expr!r}")
    p.take("op", "(")
    query = p.log_query()
    p.take("op", "[")
    seconds = duration_seconds(p.take("num"))
    p.take("op", "]")
    p.take("op", ")")
    return function, query, seconds


def evaluate(expr: str, entries: Iterable[Entry], at_ns: int) -> dict[tuple[tuple[str, str], ...], float]:
    """A metric query at one instant: ``{sorted label pairs: value}`` (Loki's instant query, this subset)."""
    p = _Parser(expr)
    by: list[str] | None = None
    if p.peek() == "sum":
        p.take()
        by = []
        if p.peek() == "by":
            p.take()
            p.take("op", "(")
            while p.peek() != ")":
                by.append(p.take("ident"))
                if p.peek() == ",":
                    p.take()
            p.take("op", ")")
        p.take("op", "(")
        function, query, seconds = _range_function(p)
        p.take("op", ")")
    else:
        function, query, seconds = _range_function(p)
    p.done()
    start = at_ns - int(seconds * 1e9)
    series: dict[tuple[tuple[str, str], ...], float] = {}
    for entry in entries:
        labels = query.labels(entry) if start < entry.ts <= at_ns else None
        if labels is None:
            continue
        key = tuple(sorted((k, v) for k, v in labels.items() if by is None or k in by))
        series[key] = series.get(key, 0.0) + 1.0
    if function == "rate":
        series = {k: v / seconds for k, v in series.items()}
    return series
