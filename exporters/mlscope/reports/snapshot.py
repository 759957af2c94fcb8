"""An incident snapshot: one page per alert group notification (firing, then resolved), built from the webhook
payload and what Prometheus and Loki hold over a window around it."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..alerts import pages as alert_pages
from . import signals
from .ids import page_id, parse_time
from .logs import excerpt
from .page import Page, iso
from .sources import Sources, lineage_of, now, version_panels

BEFORE_S = 3600.0   # the window starts this long before the group's first alert
AFTER_S = 900.0     # and ends this long after its last end (or now, while it fires)
MAX_VERSIONS = 3    # model versions drawn per page


def _versions(alerts: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    found = [(str(a["labels"]["model"]), str(a["labels"].get("model_version", ""))) for a in alerts
             if a["labels"].get("model")]
    return [v for v in dict.fromkeys(found) if v[1]][:MAX_VERSIONS]


def _alert_row(alert: Mapping[str, Any], versions: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    labels, notes = alert["labels"], alert.get("annotations") or {}
    description = notes.get("description", "")
    if alert["status"] == "resolved":
        description = resolved_description(alert, versions)
    return {"alertname": labels["alertname"], "status": alert["status"], "severity": labels.get("severity", ""),
            "starts_at": alert["startsAt"], "ends_at": "" if alert["status"] == "firing" else alert["endsAt"],
            "summary": notes.get("summary", ""), "description": description,
            "labels": " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")}


def resolved_description(alert: Mapping[str, Any], versions: Sequence[Mapping[str, Any]]) -> str:
    """A resolved alert's wording: its firing description's numbers (``is X, above Y``) were true while it
    fired, not at its end; the page says what its own panel reads at the end (the alert's version, its
    feature's line, else the panel's only line), and keeps the firing text as what was said while firing."""
    labels = alert["labels"]
    keys = signals.panels_for(str(labels["alertname"]))[1]
    said = (alert.get("annotations") or {}).get("description", "")
    for version in versions:
        if (version["model"], version["model_version"]) != (labels.get("model"), labels.get("model_version")):
            continue
        for panel in (p for p in version["panels"] if p["key"] == keys[0]):
            rows = [r for r in panel["rows"] if r["label"].split(" ")[0] == labels.get("feature")] \
                or (panel["rows"] if len(panel["rows"]) == 1 else [])
            if rows:
                row = rows[0]
                limit = f", threshold {row['threshold_shown']}" if row["threshold"] is not None else ""
                return (f"Resolved: past its threshold while it fired; now {row['shown']['last']}{limit} "
                        f"({panel['title']}, at {row['at']}).")
    return f"Resolved. While it fired it said: {said}" if said else "Resolved."


def _links(alerts: list[Mapping[str, Any]], receiver_url: str) -> list[dict[str, str]]:
    links: dict[str, str] = {}
    for a in alerts:
        notes, name = a.get("annotations") or {}, a["labels"]["alertname"]
        for key, text in (("dashboard", "dashboard"), ("logs_url", "logs in Grafana Explore"),
                          ("runbook_url", "runbook")):
            if notes.get(key):
                links.setdefault(notes[key], f"{name}: {text}")
        if a.get("generatorURL"):
            links.setdefault(str(a["generatorURL"]), f"{name}: the PromQL in Prometheus")
        if receiver_url:
            links.setdefault(f"{receiver_url.rstrip('/')}/alerts/{a['fingerprint']}", f"{name}: the receiver's page")
    return [{"url": url, "text": text} for url, text in links.items()]


def _runbooks(alerts: list[Mapping[str, Any]], folder: Path | None) -> tuple[list[dict[str, str]], list[str]]:
    books, missing = [], []
    for name in dict.fromkeys(str(a["labels"]["alertname"]) for a in alerts):
        path = alert_pages.runbook_path(folder, name) if folder else None
        if path is None:
            missing.append(f"runbook of {name}: none in {folder or 'no runbooks folder'}")
        else:
            books.append({"name": name, "text": path.read_text(encoding="utf-8")})
    return books, missing


def build(payload: Mapping[str, Any], sources: Sources, *, runbooks: Path | None = None, receiver_url: str = "",
          at: float | None = None, before_s: float = BEFORE_S, after_s: float = AFTER_S) -> Page:
    """The snapshot page of one webhook notification (already validated)."""
    alerts: list[Mapping[str, Any]] = list(payload["alerts"])
    written = now() if at is None else at
    starts = [t for a in alerts if (t := parse_time(a["startsAt"])) is not None] or [written]
    ends = [t for a in alerts if a["status"] == "resolved" and (t := parse_time(a["endsAt"])) is not None]
    start = min(starts) - before_s
    end = min(written, (max(ends) + after_s) if ends and len(ends) == len(alerts) else written)
    missing: list[str] = []
    keys: list[str] = []
    families = []
    for a in alerts:
        family, found = signals.panels_for(str(a["labels"]["alertname"]), sources.profile)
        families.append(family)
        if family == "unknown":
            missing.append(f"alert {a['labels']['alertname']}: not one the rule generator knows; the page shows "
                           "the model's traffic, errors and latency")
        keys += [k for k in found if k not in keys]
    versions = _versions(alerts)
    if not versions:
        missing.append("no model and model_version labels on these alerts: no model panels, lineage or log lines")
    marks = tuple(sorted(set(starts) | set(ends)))
    contexts, twins, lineage_rows, lineage_twin, logs_twin = [], [], [], [], []
    logs_context: dict[str, Any] | None = None
    for model, version in versions:
        context, twin = version_panels(sources, model, version, keys, start, end, marks)
        contexts.append(context)
        twins.append(twin)
        rows, chain = lineage_of(sources, model, version)
        lineage_rows.append(rows)
        lineage_twin.append(chain)
        got = excerpt(sources.loki, sources.fetcher, model, version, start, end, sources.privacy)
        logs_twin.append({"model": model, "model_version": version, **got.as_dict()})
        if logs_context is None:
            logs_context = got.as_dict()
        else:
            logs_context["lines"] += got.lines
            logs_context["request_ids"] += got.request_ids
            logs_context["missing"] += got.missing
    books, no_book = _runbooks(alerts, runbooks)
    missing = sources.missing() + missing + [m for t in twins for m in t["missing"]]
    status = str(payload.get("status", ""))
    name = str((payload.get("commonLabels") or {}).get("alertname") or alerts[0]["labels"]["alertname"])
    ident = page_id(payload)
    twin = {"id": ident, "group_key": payload["groupKey"], "status": status, "generated_at": written,
            "window": {"start": start, "end": end}, "families": sorted(set(families)),
            "alerts": [dict(a) for a in alerts], "versions": twins, "lineage": lineage_twin, "logs": logs_twin,
            "missing": missing + no_book}
    context = {"alerts": [_alert_row(a, contexts) for a in alerts], "alerts_title": "What fired",
               "versions": contexts, "lineage": lineage_rows, "logs": logs_context if versions else None,
               "runbooks": books, "links": _links(alerts, receiver_url), "missing": missing + no_book}
    return Page("snapshot", f"{name} {status}: incident snapshot",
                f"group {payload['groupKey']} · window {iso(start)} to {iso(end)} · snapshot {ident}",
                context, twin)
