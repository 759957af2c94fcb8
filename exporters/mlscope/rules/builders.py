"""Small helpers to write rule dictionaries the same way in every group."""
from __future__ import annotations

from typing import Any

from ..catalog import RecordedSpec
from .config import RuleConfig

Rule = dict[str, Any]


def selector(*matchers: str) -> str:
    """Join label matchers into ``{a,b}``, dropping empty ones ("" when none is left)."""
    kept = [m for m in matchers if m]
    return "{" + ",".join(kept) + "}" if kept else ""


def record(spec: RecordedSpec, expr: str, **labels: str) -> Rule:
    rule: Rule = {"record": spec.name, "expr": expr}
    if labels:
        rule["labels"] = dict(labels)
    return rule


def alert(cfg: RuleConfig, name: str, expr: str, *, severity: str, summary: str, description: str,
          dashboard: str, for_: str | None = None, keep_firing: bool = True,
          labels: dict[str, str] | None = None) -> Rule:
    """An alert with the annotations every mlscope alert carries."""
    rule: Rule = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    if keep_firing:
        rule["keep_firing_for"] = cfg.profile.keep_firing_for
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{cfg.links.runbook_base_url}/{name}.md",
        "dashboard": f"{cfg.links.grafana_base_url}/d/{dashboard}",
    }
    return rule


def group(name: str, cfg: RuleConfig, rules: list[Rule]) -> dict[str, Any]:
    return {"name": name, "interval": cfg.profile.evaluation_interval, "rules": rules}
