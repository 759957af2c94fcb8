"""A model health report for a period (a weekly review, an audit, a pre-promotion check): per version its panels
and their numbers, the alerts of the period with their time to detect and to resolve (from ``ALERTS``), lineage."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..catalog import serving as serving_cat
from ..rules import config_for
from ..rules.config import duration_seconds
from . import signals
from .fetch import promql_string, step_for
from .page import Page, duration, iso
from .sources import Sources, lineage_of, now, version_panels

ALERT_POINTS = 10_000  # samples of ALERTS per series (Prometheus refuses more than 11,000)
ALERTS = "ALERTS"      # Prometheus's own series of pending and firing alerts


@dataclass
class Episode:
    """One alert's episode in the period: first pending, first and last firing sample, resolved or not."""

    alertname: str
    labels: dict[str, str]
    pending_at: float | None
    firing_at: float | None
    last_firing_at: float | None
    resolved_at: float | None

    @property
    def detect_s(self) -> float | None:
        """Pending to firing (the rule's ``for``, as it went); 0 when it fired at once."""
        if self.firing_at is None:
            return None
        return self.firing_at - self.pending_at if self.pending_at is not None else 0.0

    @property
    def resolve_s(self) -> float | None:
        if self.firing_at is None or self.resolved_at is None:
            return None
        return self.resolved_at - self.firing_at

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "detect_s": self.detect_s, "resolve_s": self.resolve_s}


def alerts_query(matchers: str, reach_s: float) -> str:
    """``ALERTS`` over the last ``reach_s`` at each step (no 5-minute look-back stretching an episode)."""
    return f"max_over_time({ALERTS}{{{matchers}}}[{int(reach_s)}s])"


def episodes(series: list[dict[str, Any]], step: float, end: float) -> list[Episode]:
    """Alert episodes from a range query of :func:`alerts_query`: samples of one alert (its labels without
    ``alertstate``) no more than two steps apart belong to one episode; it resolved a step after its last firing
    sample."""
    timeline: dict[tuple[tuple[str, str], ...], list[tuple[float, str]]] = {}
    for s in series:
        labels = {k: v for k, v in s["metric"].items() if k not in ("alertstate", "__name__")}
        key = tuple(sorted(labels.items()))
        timeline.setdefault(key, []).extend((float(t), s["metric"].get("alertstate", "")) for t, _ in s["values"])
    found = []
    for key, samples in sorted(timeline.items()):
        labels, runs, current = dict(key), [], []  # type: ignore[var-annotated]
        for t, state in sorted(samples):
            if current and t - current[-1][0] > 2 * step:
                runs.append(current)
                current = []
            current.append((t, state))
        runs += [current] if current else []
        for run in runs:
            pending = [t for t, state in run if state == "pending"]
            firing = [t for t, state in run if state == "firing"]
            last = firing[-1] if firing else None
            resolved = last + step if last is not None and end - last > 2 * step else None
            found.append(Episode(labels.get("alertname", ""), labels, pending[0] if pending else None,
                                 firing[0] if firing else None, last, resolved))
    return sorted(found, key=lambda e: (e.pending_at or e.firing_at or 0.0, e.alertname))


def _versions(sources: Sources, model: str, start: float, end: float) -> list[str]:
    expr = (f"group by (model_version) ({serving_cat.REQUEST_RATE.name}{{model={promql_string(model)}}} or "
            f"{serving_cat.MODEL_INFO.name}{{model={promql_string(model)}}})")
    found: set[str] = set()
    for series in sources.fetcher.range(expr, start, end, step_for(start, end)):
        found.add(series["metric"].get("model_version", ""))
    return sorted(v for v in found if v)


def known_versions(sources: Sources, start: float, end: float) -> dict[str, set[str]]:
    """Each model and its versions that ``mlscope_model_info`` had between ``start`` and ``end`` (raises
    :class:`mlscope.lineage.sources.SourceError` when Prometheus does not answer)."""
    expr = (f"group by (model, model_version) "
            f"(last_over_time({serving_cat.MODEL_INFO.name}[{int(math.ceil(end - start)) + 1}s]))")
    found: dict[str, set[str]] = {}
    for sample in sources.fetcher.instant(expr, end):
        metric = sample["metric"]
        found.setdefault(metric.get("model", ""), set()).add(metric.get("model_version", ""))
    return found


def unknown(sources: Sources, model: str, version: str | None, start: float, end: float) -> str:
    """Why ``model`` (and ``version``) is none Prometheus knows, naming the known ones; "" when it is known, or
    when that cannot be told (Prometheus not answering: the page says so; no ``mlscope_model_info`` at all)."""
    from ..lineage.sources import SourceError

    if sources.fetcher.prometheus is None:
        return ""
    try:
        known = known_versions(sources, start, end)
    except SourceError:
        return ""
    if not known:
        return ""
    if model not in known:
        return (f"no model {model!r} in {serving_cat.MODEL_INFO.name} between {iso(start)} and {iso(end)}; "
                f"known models: {', '.join(sorted(known))}")
    if version and version not in known[model]:
        return (f"no version {version!r} of {model} in {serving_cat.MODEL_INFO.name} between {iso(start)} and "
                f"{iso(end)}; known versions: {', '.join(sorted(known[model]))}")
    return ""


def build(sources: Sources, model: str, start: float, end: float, version: str | None = None,
          at: float | None = None) -> Page:
    """The report of ``model`` (one ``version`` or every version with data) between ``start`` and ``end``."""
    from ..lineage.sources import SourceError

    missing: list[str] = []
    versions = [version] if version else []
    if not version and sources.fetcher.prometheus is not None:
        try:
            versions = _versions(sources, model, start, end)
        except SourceError as exc:
            missing.append(f"model versions: {exc}")
        if not versions and not sources.fetcher.down:
            missing.append(f"no version of {model} has data between {iso(start)} and {iso(end)}")
    contexts, twins, lineage_rows, lineage_twin = [], [], [], []
    for v in versions:
        context, twin = version_panels(sources, model, v, signals.REPORT_PANELS, start, end)
        contexts.append(context)
        twins.append(twin)
        lineage_row, chain = lineage_of(sources, model, v)
        lineage_rows.append(lineage_row)
        lineage_twin.append(chain)
    step = step_for(start, end, ALERT_POINTS)
    reach = max(step, duration_seconds(config_for(sources.profile).profile.evaluation_interval))
    matchers = f"model={promql_string(model)}" + (f",model_version={promql_string(version)}" if version else "")
    found: list[Episode] = []
    try:
        found = episodes(sources.fetcher.range(alerts_query(matchers, reach), start, end, step), reach, end)
    except SourceError as exc:
        missing.append(f"alerts of the period ({ALERTS}): {exc}")
    rows = [{"alertname": e.alertname, "status": "resolved" if e.resolved_at else
             ("firing" if e.firing_at else "pending"), "severity": e.labels.get("severity", ""),
             "starts_at": iso(e.firing_at or e.pending_at), "ends_at": iso(e.resolved_at),
             "detect_s": _num(e.detect_s), "detect": duration(e.detect_s), "resolve_s": _num(e.resolve_s),
             "resolve": duration(e.resolve_s), "summary": "", "description": "",
             "labels": " ".join(f"{k}={v}" for k, v in sorted(e.labels.items()) if k != "alertname")}
            for e in found]
    written = now() if at is None else at
    missing = sources.missing() + missing + [m for t in twins for m in t["missing"]]
    twin = {"model": model, "model_version": version, "generated_at": written,
            "period": {"start": start, "end": end}, "versions": twins, "lineage": lineage_twin,
            "alerts": {"step_s": step, "reach_s": reach, "episodes": [e.as_dict() for e in found]}, "missing": missing}
    context = {"alerts": rows, "alerts_title": "Alerts in the period",
               "alerts_note": f"From Prometheus's {ALERTS}{{alertstate}} series, read at one point every {step:g}s, "
                              f"each point telling whether the alert was pending or firing in the {reach:g}s before "
                              f"it: the times below are accurate to about {max(step, reach):g}s. "
                              "Time to detect: pending to firing; time to resolve: firing to resolved."
                              + ("" if rows else " No alert was pending or firing in the period."),
               "versions": contexts, "lineage": lineage_rows, "missing": missing}
    title = f"{model}{' ' + version if version else ''}: model health report"
    return Page("report", title, f"period {iso(start)} to {iso(end)}", context, twin)


def _num(value: float | None) -> float | str:
    return "" if value is None or not math.isfinite(value) else value
