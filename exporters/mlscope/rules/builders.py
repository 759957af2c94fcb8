"""Small helpers to write rule dictionaries the same way in every group."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..catalog import RecordedSpec
from .config import RuleConfig, WindowGuard, duration_seconds

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


def warm_up(spec: RecordedSpec, domain: str, window: str, guard: WindowGuard, *, count: str, age: str,
            by: str) -> Rule:
    """The warm-up guard of one domain's ``window``: a recording rule of ``spec`` (``…:mlscope_window_warm:bool``).

    Per group of ``by`` labels that ``count`` (the observations in the window, summed ``by``) returns: 1 when
    the window holds at least ``guard.min_count`` and a series of ``age`` (a selector) existed
    ``guard.min_age_share`` of the window's length ago (``age offset …``: no sample back then, no full
    window yet), else 0. Alerts read it through :func:`when_warm`; a dashboard can show it.
    """
    enough = f"({count}) >= bool {guard.min_count:g}"
    age_s = round(guard.min_age_share * duration_seconds(window))
    if age_s > 0:
        old_enough = f"group by ({by}) ({age} offset {age_s}s)"
        enough = f"({enough}) * on ({by}) {old_enough} or on ({by}) 0 * ({count})"
    return record(spec, enough, domain=domain, window=window)


def when_warm(expr: str, spec: RecordedSpec, domain: str, window: str, by: str, *matchers: str) -> str:
    """``expr`` only where the warm-up guard (:func:`warm_up`) of its ``window`` says warm (the value is kept).

    ``by``: the labels ``expr`` and the guard share; ``matchers`` narrow the guard's series further.
    """
    warm = spec.name + selector(f'domain="{domain}"', f'window="{window}"', *matchers)
    return f"({expr}) and on ({by}) {warm} == 1"


MODEL_VARS = "var-model={{$labels.model}}&var-model_version={{$labels.model_version}}"


def loki_explore_url(cfg: RuleConfig) -> str:
    """Grafana Explore on the Loki datasource, showing the alert's model version's log lines."""
    version = 'model="{{$labels.model}}",model_version="{{$labels.model_version}}"'
    selector = f'{{app="{cfg.links.log_app}",{version}}}'
    state = json.dumps({"datasource": "loki", "queries": [{"refId": "A", "expr": selector}], "range":
                        {"from": "now-1h", "to": "now"}}, separators=(",", ":"))
    return f"{cfg.links.grafana_base_url}/explore?left=" + quote(state, safe="{}$.:,[]/=_-")


def with_owner(expr: str) -> str:
    """``expr`` with the model version's ``owner`` label (set through ModelMonitor metadata) joined in.

    Versions whose ``mlscope_model_info`` has no owner, or no info series at all, still alert unchanged.
    """
    info = "max by (model, model_version, owner) (mlscope_model_info)"
    return f"({expr}) * on (model, model_version) group_left (owner) {info} or on (model, model_version) ({expr})"


def alert(cfg: RuleConfig, name: str, expr: str, *, severity: str, summary: str, description: str,
          dashboard: str, for_: str | None = None, keep_firing: bool = True,
          labels: dict[str, str] | None = None, model_scoped: bool = False) -> Rule:
    """An alert with the annotations every mlscope alert carries.

    ``model_scoped`` alerts carry ``model``/``model_version`` labels: their
    dashboard link selects that version, a ``logs_url`` opens its Loki logs,
    and the version's ``owner`` (from ``mlscope_model_info``) is carried over.
    """
    rule: Rule = {"alert": name, "expr": with_owner(expr) if model_scoped else expr}
    if for_:
        rule["for"] = for_
    if keep_firing:
        rule["keep_firing_for"] = cfg.profile.keep_firing_for
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{cfg.links.runbook_base_url}/{name}.md",
        "dashboard": f"{cfg.links.grafana_base_url}/d/{dashboard}" + (f"?{MODEL_VARS}" if model_scoped else ""),
    }
    if model_scoped:
        rule["annotations"]["logs_url"] = loki_explore_url(cfg)
    return rule


def group(name: str, cfg: RuleConfig, rules: list[Rule]) -> dict[str, Any]:
    return {"name": name, "interval": cfg.profile.evaluation_interval, "rules": rules}
