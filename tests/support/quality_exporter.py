"""Talking to a running `mlscope quality-exporter`."""
from __future__ import annotations

import json
from typing import Any

import requests

from mlscope.quality.server import QualityServer

TOKEN = "s3cret-token"


def url(srv: QualityServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_port}{path}"


def post(srv: QualityServer, path: str, body: Any, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(url(srv, path), data=data, headers=headers, timeout=10, **kwargs)
