"""Small helpers to write rule dictionaries the same way in every group."""
from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import quote

from ..catalog import RecordedSpec
from ..catalog import serving as serving_cat
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
            by: str, samples: tuple[str, ...] = (), every: str = "", no_reset: bool = False) -> Rule:
    """The warm-up guard of one domain's ``window``: a recording rule of ``spec`` (``…:mlscope_window_warm:bool``).

    Per group of ``by`` labels that ``count`` (the observations in the window, summed ``by``) returns: 1 when
    the window holds at least ``guard.min_count``, a series of ``age`` (a selector) existed
    ``guard.min_age_share`` of the window's length ago (``age offset …``: no sample back then, no full
    window yet) and, with ``guard.min_sample_share``, every series of ``samples`` (selectors, one sample per
    ``every``) holds that share of the window's samples (no gap: a Prometheus restart leaves one), else 0.
    With ``no_reset`` (``age`` a counter), the age is the process's: a counter reset (a restarted process)
    within those seconds makes it cold again, so an alert judges the new process's window, not the old
    process's series across the restart. Alerts read it through :func:`when_warm`; a dashboard can show it.
    """
    enough = f"({count}) >= bool {guard.min_count:g}"
    conditions = []
    age_s = round(guard.min_age_share * duration_seconds(window))
    if age_s > 0:
        old_enough = f"group by ({by}) ({age} offset {age_s}s)"
        if no_reset:
            old_enough = f"({old_enough} unless on ({by}) sum by ({by}) (resets({age}[{age_s}s])) > 0)"
        conditions.append(old_enough)
    if guard.min_sample_share > 0:
        if not samples or not every:
            raise ValueError(f"the {domain} guard wants continuity: give samples and every")
        expected = math.floor(guard.min_sample_share * duration_seconds(window) / duration_seconds(every))
        counts = " or ".join(f"count_over_time({s}[{window}])" for s in samples)
        conditions.append(f"group by ({by}) (min by ({by}) ({counts}) >= {expected})")
    if conditions:
        enough = f"({enough})" + "".join(f" * on ({by}) {c}" for c in conditions) + f" or on ({by}) 0 * ({count})"
    return record(spec, enough, domain=domain, window=window)


def when_warm(expr: str, spec: RecordedSpec, domain: str, window: str, by: str, *matchers: str) -> str:
    """``expr`` only where the warm-up guard (:func:`warm_up`) of its ``window`` says warm (the value is kept).

    ``by``: the labels ``expr`` and the guard share; ``matchers`` narrow the guard's series further.
    """
    warm = spec.name + selector(f'domain="{domain}"', f'window="{window}"', *matchers)
    return f"({expr}) and on ({by}) {warm} == 1"


MODEL_VARS = "var-model={{$labels.model}}&var-model_version={{$labels.model_version}}"
PIPELINE_VARS = "var-pipeline={{$labels.pipeline}}"


def loki_explore_url(cfg: RuleConfig) -> str:
    """Grafana Explore on the Loki datasource, showing the alert's model version's log lines."""
    version = 'model="{{$labels.model}}",model_version="{{$labels.model_version}}"'
    selector = f'{{app="{cfg.links.log_app}",{version}}}'
    return explore_url(cfg, selector)


def explore_url(cfg: RuleConfig, expr: str) -> str:
    """Grafana Explore on the Loki datasource with ``expr`` over the last hour."""
    state = json.dumps({"datasource": "loki", "queries": [{"refId": "A", "expr": expr}], "range":
                        {"from": "now-1h", "to": "now"}}, separators=(",", ":"))
    return f"{cfg.links.grafana_base_url}/explore?left=" + quote(state, safe="{}$.:,[]/=_-")


def stack_logs_url(cfg: RuleConfig) -> str:
    """The logs link of an alert about no model version: every mlscope line (services, the alert receiver)."""
    return explore_url(cfg, f'{{app="{cfg.links.log_app}"}}')


def owner_reach(cfg: RuleConfig) -> str:
    """How long a model version keeps its ``owner`` after its info series went (a retraining replaced the
    version): the longest window an alert reads plus ``keep_firing_for``, so an alert still firing on that
    version's windows keeps its labels (and stays one alert, one notification group)."""
    p = cfg.profile
    windows = (*p.traffic_windows, *p.drift_windows, *p.quality_windows, *p.burn_rate_windows)
    return f"{int(max(duration_seconds(w) for w in windows) + duration_seconds(p.keep_firing_for))}s"


def model_owner_join(cfg: RuleConfig) -> str:
    """Each version's owner over :func:`owner_reach` (one per version: ``topk``, even if it changed)."""
    return MODEL_OWNER_JOIN.format(reach=owner_reach(cfg))


MODEL_OWNER_JOIN = ("topk by (model, model_version) (1, max by (model, model_version, owner) "
                    "(last_over_time(mlscope_model_info[{reach}])))")
# The join in any profile's (or a rules-config's) rules: what a reference strips, it is not what the alert watches.
MODEL_OWNER_JOIN_RE = re.compile(re.escape(MODEL_OWNER_JOIN).replace(re.escape("{reach}"), r"\w+"))


RETIRED = serving_cat.MODEL_RETIRED.name


def not_retired(expr: str) -> str:
    """``expr`` without the versions their process retired (``ModelMonitor.retire()``): a replaced version's
    windows hold its last requests for a window's length, and it no longer serves."""
    return f"({expr}) unless on (model, model_version) {RETIRED}"


PIPELINE_OWNER_JOIN = "max by (pipeline, owner) (mlscope_pipeline_info)"


def with_owner(expr: str, on: str, info: str) -> str:
    """``expr`` with the ``owner`` label of its model version (``info`` = :func:`model_owner_join`: ModelMonitor
    metadata) or, with ``on="pipeline"`` and ``info=PIPELINE_OWNER_JOIN``, of its pipeline
    (``PipelineMonitor(owner=...)``) joined in.

    Versions or pipelines whose info series has no owner, or that have no info series at all, alert unchanged.
    """
    return f"({expr}) * on ({on}) group_left (owner) {info} or on ({on}) ({expr})"


def pipeline_logs_url(cfg: RuleConfig) -> str:
    """Grafana Explore on the Loki datasource, showing the alert's pipeline's lines (every run and step)."""
    return explore_url(cfg, f'{{app="{cfg.links.log_app}"}} | json | pipeline="{{{{$labels.pipeline}}}}"')


def alert(cfg: RuleConfig, name: str, expr: str, *, severity: str, summary: str, description: str,
          dashboard: str, for_: str | None = None, keep_firing: bool = True,
          labels: dict[str, str] | None = None, model_scoped: bool = False, pipeline_scoped: bool = False) -> Rule:
    """An alert with the annotations every mlscope alert carries.

    ``model_scoped`` alerts carry ``model``/``model_version`` labels: their
    dashboard link selects that version, their ``logs_url`` opens its Loki logs
    (other alerts': every mlscope line), the version's ``owner`` (from
    ``mlscope_model_info``) is carried over, and a retired version never fires (:func:`not_retired`).
    ``pipeline_scoped`` alerts carry ``pipeline``: the pipeline's
    ``owner`` (``mlscope_pipeline_info``) is carried over and ``logs_url`` opens the pipeline's lines.
    """
    if model_scoped:
        expr = with_owner(not_retired(expr), "model, model_version", model_owner_join(cfg))
    elif pipeline_scoped:
        expr = with_owner(expr, "pipeline", PIPELINE_OWNER_JOIN)
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
        "dashboard": f"{cfg.links.grafana_base_url}/d/{dashboard}" + (f"?{MODEL_VARS}" if model_scoped else
                                                                      f"?{PIPELINE_VARS}" if pipeline_scoped else ""),
    }
    rule["annotations"]["logs_url"] = (loki_explore_url(cfg) if model_scoped else
                                       pipeline_logs_url(cfg) if pipeline_scoped else stack_logs_url(cfg))
    return rule


def group(name: str, cfg: RuleConfig, rules: list[Rule]) -> dict[str, Any]:
    return {"name": name, "interval": cfg.profile.evaluation_interval, "rules": rules}
