"""The chain as a person reads it (``mlscope lineage``)."""
from __future__ import annotations

import json
from typing import Any

from ..catalog import pipelines as cat
from .chain import Lineage

SHOWN_INFO = ("training_data_fingerprint", "job", "instance", "pipeline", "dataset_version")


def _labels(labels: dict[str, str], keys: tuple[str, ...] = SHOWN_INFO) -> str:
    shown = [f"{k}={labels[k]}" for k in keys if labels.get(k)]
    rest = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in keys and k not in ("model", "model_version")]
    return ", ".join(shown + rest)


def _run(line: dict[str, Any]) -> str:
    status = line.get("status") or "?"
    error = f" ({line['error_type']})" if line.get("error_type") else ""
    return f"run {line.get('run_id')} of pipeline {line.get('pipeline')}: {status}{error}, ended {line.get('ts')}"


def _gone(labels: dict[str, str], retired: bool) -> str:
    """A version no service exposes now: retired (its mlscope_model_retired_info says so) or stopped; its labels
    as they were (a role it had is no longer its role)."""
    why = ("retired (mlscope_model_retired_info), not serving now" if retired
           else "not serving now (mlscope_model_info seen, gone now: stopped, or retired without a marker)")
    was = [f"was {k}={labels[k]}" for k in ("role",) if labels.get(k)]
    return f"  {why}: " + ", ".join([_labels({k: v for k, v in labels.items() if k != "role"}), *was])


def text(found: Lineage) -> str:
    """The chain, one fact per line, sources named; what is missing at the end."""
    out = []
    if found.prediction is not None:
        p = found.prediction
        out.append(f"prediction {p.get('request_id')} at {p.get('ts')} ({p.get('event')}): model {p.get('model')} "
                   f"{p.get('model_version')}, data batch {p.get('data_batch_id') or '(none logged)'}")
    if not found.model:
        return "\n".join(out + [f"missing: {m}" for m in found.missing] + [f"warning: {w}" for w in found.warnings])
    out.append(f"model {found.model} version {found.model_version}")
    out += [f"  serving now (mlscope_model_info scraped from a service): {_labels(s)}" for s in found.serving]
    out += [_gone(s, bool(found.retired)) for s in found.not_serving]
    out += [f"  registered by a training job, not serving (mlscope_model_info pushed): {_labels(s)}"
            for s in found.pushed]
    out += [f"  trained (mlscope_training_info): {_labels(s)}" for s in found.trained]
    for run in found.training_runs:
        out.append(f"  training {_run(run)}")
        out.append(f"    dataset version {run.get('dataset_version')}, fingerprint "
                   f"{run.get('training_data_fingerprint')}")
        out.append(f"    hyperparameters {json.dumps(run.get('hyperparameters') or {}, sort_keys=True)}; "
                   f"transformations {', '.join(run.get('transformations') or []) or '(none)'}")
        if run.get("final_metrics"):
            out.append(f"    final metrics {json.dumps(run['final_metrics'], sort_keys=True)}")
        trigger = run.get(cat.TRIGGERED_BY)
        if isinstance(trigger, dict):
            out.append(f"    triggered by alert {trigger.get('alertname')} ({trigger.get('status')}, fingerprint "
                       f"{trigger.get('fingerprint')}, started {trigger.get('starts_at')})")
    for alert in found.alerts:
        out.append(f"  alert {alert.get('alertname')} {alert.get('status')} at {alert.get('ts')}: "
                   f"{alert.get('summary')}" + (f" ({alert['page_url']})" if alert.get("page_url") else ""))
    if found.batch_ids:
        out.append(f"  data batches: {', '.join(found.batch_ids)}")
    out += [f"    batch {r.get('data_batch_id')}: {_run(r)}" for r in found.pipeline_runs]
    fingerprints = found.fingerprints
    named = "; ".join(f"{where} {', '.join(sorted(v))}" for where, v in fingerprints.items())
    if len(fingerprints) == 1:
        agrees = "" if found.consistent else " (DIFFERENT values)"
        out.append(f"  training-data fingerprint from one source only, nothing to compare{agrees}: {named}")
    elif fingerprints:
        out.append(f"  training-data fingerprints {'agree' if found.consistent else 'DIFFER'}: {named}")
    out += [f"missing: {m}" for m in found.missing]
    out += [f"warning: {w}" for w in found.warnings]
    return "\n".join(out)
