"""The log lines of the affected requests: the latency exemplars' request ids first, then the version's other
prediction lines, read from Loki and passed through the prediction log's privacy rules before a page holds them."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..catalog import serving as serving_cat
from ..lineage.queries import PREDICTION_EVENTS, LineQuery
from ..lineage.sources import LokiSource, SourceError
from ..logs.privacy import Privacy
from .fetch import Fetcher, selector

MAX_LINES = 50       # lines a page shows
MAX_LINE_CHARS = 600  # characters of one line


@dataclass
class LogExcerpt:
    lines: list[dict[str, Any]] = field(default_factory=list)  # {"ts", "request_id", "exemplar", "text"}
    request_ids: list[str] = field(default_factory=list)       # the exemplars' request ids
    missing: list[str] = field(default_factory=list)
    truncated: int = 0                                         # lines left out, or cut to MAX_LINE_CHARS

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def exemplar_ids(fetcher: Fetcher, model: str, version: str, start: float, end: float) -> list[str]:
    """Request ids of the version's latency exemplars in the window, the slowest first."""
    expr = f"{serving_cat.PREDICTION_LATENCY.name}_bucket{{{selector(model, version)}}}"
    found: list[tuple[float, str]] = []
    for series in fetcher.exemplars(expr, start, end):
        for ex in series.get("exemplars", []):
            rid = ex.get("labels", {}).get("request_id")
            if rid:
                found.append((float(ex.get("value", 0.0)), str(rid)))
    return list(dict.fromkeys(rid for _, rid in sorted(found, reverse=True)))


def redact(line: dict[str, Any], privacy: Privacy | None) -> dict[str, Any]:
    """A copy of the parsed line with the privacy rules' fields dropped or hashed."""
    copy = dict(line)
    return dict(privacy.apply(copy)) if privacy is not None and privacy.active else copy


def excerpt(loki: LokiSource | None, fetcher: Fetcher, model: str, version: str, start: float, end: float,
            privacy: Privacy | None = None, limit: int = MAX_LINES) -> LogExcerpt:
    """The version's prediction lines in the window, exemplars' requests first, redacted, bounded."""
    out = LogExcerpt()
    try:
        out.request_ids = exemplar_ids(fetcher, model, version, start, end)[:limit]
    except SourceError as exc:
        out.missing.append(f"exemplars: {exc}")
    if loki is None:
        out.missing.append("log lines: no Loki URL given (the lines stay in the services' logs)")
        return out
    query = LineQuery(PREDICTION_EVENTS, (("model", model), ("model_version", version)))
    try:
        lines = loki.lines(query, start, end)
    except SourceError as exc:
        out.missing.append(f"log lines: {exc}")
        return out
    if not lines:
        out.missing.append(f"log lines: none of {model} {version} in {loki.name} in this window")
    rank = {rid: i for i, rid in enumerate(out.request_ids)}
    wanted = set(rank)
    ordered = sorted((x for x in lines if str(x.get("request_id")) in wanted),
                     key=lambda x: rank[str(x.get("request_id"))]) + \
        [x for x in lines if str(x.get("request_id")) not in wanted]
    out.truncated = max(0, len(ordered) - limit)
    for line in ordered[:limit]:
        clean = redact(line, privacy)
        text = json.dumps(clean, sort_keys=True, default=str)
        if len(text) > MAX_LINE_CHARS:
            text, out.truncated = text[:MAX_LINE_CHARS] + " …", out.truncated + 1
        out.lines.append({"ts": str(clean.get("ts", "")), "request_id": str(clean.get("request_id", "")),
                          "exemplar": str(line.get("request_id")) in wanted, "text": text})
    return out


def privacy_of(drop: Iterable[str] = (), hash_: Iterable[str] = (), key: str | None = None) -> Privacy | None:
    """The prediction log's privacy rules as the receiver is configured with them (None: no rule)."""
    drop, hash_ = tuple(drop), tuple(hash_)
    return Privacy(drop=drop, hash=hash_, key=key) if drop or hash_ else None
