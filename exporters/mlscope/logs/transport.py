"""HTTP transport to Loki's push API: one POST per batch, with timeouts, and an outcome the sender acts on.

Standard library only (``http.client``), so the Loki handler stays in the light core: one kept-alive
connection, re-opened after any failure.
"""
from __future__ import annotations

import base64
import email.utils
import http.client
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._runtime import require_extra
from .payload import CONTENT_TYPES, Encoding

# Statuses counted under their own reason when rejected; others fold into "http_other".
KNOWN_REJECTIONS = frozenset({400, 401, 403, 404, 413})


@dataclass(frozen=True)
class PushResult:
    """``ok``; else ``retry`` (with ``reason`` and an optional server-given delay) or a final rejection."""

    ok: bool
    retry: bool = False
    reason: str = ""
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(status: int, retry_after: str | None = None) -> PushResult:
    """What to do after an HTTP answer: 2xx done; 429 and 5xx retried; any other status dropped."""
    if 200 <= status < 300:
        return PushResult(ok=True)
    if status == 429 or status >= 500:
        return PushResult(ok=False, retry=True, reason="http_429" if status == 429 else "http_5xx",
                          retry_after=parse_retry_after(retry_after))
    return PushResult(ok=False, reason=f"http_{status}" if status in KNOWN_REJECTIONS else "http_other")


class HttpTransport:
    """POSTs push bodies to ``url`` (``.../loki/api/v1/push``) with bounded connect and read timeouts.

    ``tenant`` sets ``X-Scope-OrgID`` (multi-tenant Loki); ``auth`` is
    ``(user, password)`` for basic auth; ``headers`` are added to every request.
    Proxies from the environment are not used: Loki is reached directly.
    """

    def __init__(self, url: str, *, encoding: Encoding = "json", connect_timeout: float = 3.0,
                 read_timeout: float = 10.0, tenant: str | None = None, auth: tuple[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if encoding not in CONTENT_TYPES:
            raise ValueError(f"encoding must be one of {sorted(CONTENT_TYPES)}, got {encoding!r}")
        if encoding == "protobuf":
            # Fail at configuration time, not on the first push.
            require_extra("loki-protobuf", "encoding='protobuf'", "cramjam")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Loki push URL must be http(s)://host[:port]/path, got {url!r}")
        self.url = url
        self.encoding: Encoding = encoding
        self.timeout = (connect_timeout, read_timeout)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": CONTENT_TYPES[encoding], **(headers or {})}
        if tenant:
            self._headers["X-Scope-OrgID"] = tenant
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        connect_timeout, read_timeout = self.timeout
        connection = (http.client.HTTPSConnection(self._host, self._port, timeout=connect_timeout,
                                                  context=ssl.create_default_context())
                      if self._https else http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout))
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(read_timeout)
        return connection

    def _post(self, connection: http.client.HTTPConnection, body: bytes) -> PushResult:
        connection.request("POST", self._path, body=body, headers=self._headers)
        response = connection.getresponse()
        response.read()
        if response.will_close:
            self.close()
        return classify(response.status, response.getheader("Retry-After"))

    def push(self, body: bytes) -> PushResult:
        reused = self._connection is not None
        try:
            if self._connection is None:
                self._connection = self._connect()
            try:
                return self._post(self._connection, body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                self.close()  # the server closed the idle kept-alive connection: once more on a fresh one
                self._connection = self._connect()
                return self._post(self._connection, body)
        except TimeoutError:
            self.close()
            return PushResult(ok=False, retry=True, reason="timeout")
        except (OSError, http.client.HTTPException):
            self.close()  # a fresh connection next time
            return PushResult(ok=False, retry=True, reason="connection")

    def forget_connection(self) -> None:
        """In a forked child: drop the parent's connection without closing its socket (the parent still uses it)."""
        self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
