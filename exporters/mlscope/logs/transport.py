"""HTTP transport to Loki's push API: one POST per batch, with timeouts, and an outcome the sender acts on."""
from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

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
    """

    def __init__(self, url: str, *, encoding: Encoding = "json", connect_timeout: float = 3.0,
                 read_timeout: float = 10.0, tenant: str | None = None, auth: tuple[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if encoding not in CONTENT_TYPES:
            raise ValueError(f"encoding must be one of {sorted(CONTENT_TYPES)}, got {encoding!r}")
        if encoding == "protobuf":
            import cramjam  # noqa: F401 - fail at configuration time, not on the first push
        self.url = url
        self.encoding: Encoding = encoding
        self.timeout = (connect_timeout, read_timeout)
        self._headers = {"Content-Type": CONTENT_TYPES[encoding], **(headers or {})}
        if tenant:
            self._headers["X-Scope-OrgID"] = tenant
        self._auth = auth
        self._session: requests.Session | None = None

    def push(self, body: bytes) -> PushResult:
        if self._session is None:
            self._session = requests.Session()
            self._session.auth = self._auth
        try:
            response = self._session.post(self.url, data=body, headers=self._headers, timeout=self.timeout)
            response.close()
        except requests.Timeout:
            self.close()
            return PushResult(ok=False, retry=True, reason="timeout")
        except requests.ConnectionError:
            self.close()  # a fresh connection next time
            return PushResult(ok=False, retry=True, reason="connection")
        except requests.RequestException:
            self.close()
            return PushResult(ok=False, retry=True, reason="error")
        return classify(response.status_code, response.headers.get("Retry-After"))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
