"""Where lineage is read from: Prometheus's HTTP API (the info gauges), Loki's query API and JSON-lines files
(the log lines). Standard library only (urllib); every failure is a :class:`SourceError` naming the source."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .queries import LOG_APP, LineQuery

TIMEOUT_S = 10.0


class SourceError(RuntimeError):
    """A source that could not answer (unreachable, an error status, an answer that is not its API's)."""


def _get_json(url: str, what: str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = " ".join(exc.read().decode("utf-8", "replace").split())[:300]  # one line: an HTML page has many
        raise SourceError(f"{what} answered HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{what} did not answer ({reason})") from None
    except ValueError:
        raise SourceError(f"{what} answered something that is not JSON: is it the right URL?") from None


class LogSource(Protocol):
    """Log lines (parsed JSON objects) that answer a :class:`LineQuery`, oldest first."""

    @property
    def name(self) -> str: ...

    def lines(self, query: LineQuery) -> list[dict[str, Any]]: ...


@dataclass
class PrometheusSource:
    """Instant queries on Prometheus's HTTP API (``/api/v1/query``)."""

    url: str
    timeout: float = TIMEOUT_S

    @property
    def name(self) -> str:
        return f"Prometheus at {self.url}"

    def series(self, expr: str) -> list[dict[str, str]]:
        """The label sets of an instant vector query."""
        return [dict(sample["metric"]) for sample in self.query(expr)]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (``metric`` and ``value`` of each sample), at ``at`` (Unix s) or now."""
        params: dict[str, Any] = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        return self._api("query", params, expr)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's result (``metric`` and ``values`` of each series)."""
        return self._api("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                         "step": f"{step:g}"}, expr)

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """The exemplars of ``expr``'s series between ``start`` and ``end``."""
        return self._api("query_exemplars", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}, expr)

    def _api(self, endpoint: str, params: dict[str, Any], expr: str) -> list[dict[str, Any]]:
        url = f"{self.url.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        body = _get_json(url, self.name, self.timeout)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise SourceError(f"{self.name} refused {expr}: {body.get('error') if isinstance(body, dict) else body}")
        data = body["data"]
        return list(data if endpoint == "query_exemplars" else data["result"])


@dataclass
class LokiSource:
    """Log queries on Loki's HTTP API (``/loki/api/v1/query_range``) over the last ``since_s`` seconds."""

    url: str
    since_s: float = 7 * 86400.0
    limit: int = 1000
    app: str = LOG_APP
    timeout: float = TIMEOUT_S

    @property
    def name(self) -> str:
        return f"Loki at {self.url}"

    def lines(self, query: LineQuery, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        """The lines answering ``query`` between ``start`` and ``end`` (Unix s; default the last ``since_s``)."""
        now = time.time_ns() if end is None else int(end * 1e9)
        since = now - int(self.since_s * 1e9) if start is None else int(start * 1e9)
        params = urllib.parse.urlencode({"query": query.logql(self.app), "start": since,
                                         "end": now, "limit": self.limit, "direction": "forward"})
        base = self.url.rstrip("/").removesuffix("/loki/api/v1/push")  # the push URL a service was given works
        body = _get_json(f"{base}/loki/api/v1/query_range?{params}", self.name, self.timeout)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise SourceError(f"{self.name} refused {query.logql(self.app)}: {body}")
        entries = [(int(ts), line) for stream in body["data"]["result"] for ts, line in stream["values"]]
        return [parsed for _, line in sorted(entries) if (parsed := _parse(line)) is not None]


@dataclass
class FileSource:
    """JSON-lines files (one JSON object per line, as :class:`mlscope.logs.JsonFormatter` writes them): the
    fallback when no Loki runs (the demo's ``predictions.jsonl``, the receiver's ``alerts.jsonl``...)."""

    paths: tuple[Path, ...]

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.skipped: dict[Path, tuple[int, int]] = {}  # path -> (lines that are not JSON objects, lines)

    def warnings(self) -> list[str]:
        """Each file with lines that are not JSON objects (skipped), counted; one with none is not JSON lines."""
        out = []
        for path, (skipped, total) in self.skipped.items():
            if skipped and skipped == total:
                out.append(f"{path} is not a JSON-lines file: none of its {total} lines is a JSON object "
                           "(all skipped; give the JSON lines mlscope's JsonFormatter writes)")
            elif skipped:
                out.append(f"{path}: {skipped} of {total} lines are not JSON objects (skipped)")
        return out

    @property
    def name(self) -> str:
        return "files " + ", ".join(str(p) for p in self.paths)

    def lines(self, query: LineQuery) -> list[dict[str, Any]]:
        found = []
        for path in self.paths:
            skipped = total = 0
            try:
                with path.open(encoding="utf-8", errors="replace") as handle:
                    for text in handle:
                        if not text.strip():
                            continue
                        total += 1
                        parsed = _parse(text)
                        skipped += parsed is None
                        if parsed is not None and query.matches(parsed):
                            found.append(parsed)
                self.skipped[path] = (skipped, total)
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
        return sorted(found, key=lambda line: str(line.get("ts", "")))


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None  # not a JSON line (a plain log line in the same file): not lineage
    return value if isinstance(value, dict) else None
