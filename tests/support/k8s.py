"""Kubernetes manifests rendered by `mlscope k8s render`, by kind."""
from __future__ import annotations

from typing import Any


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
