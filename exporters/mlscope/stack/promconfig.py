"""Prometheus configuration for natively run stacks and tests."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..rules.config import Profile
from ..rules.promql import duration_seconds

# Per-job guards against a cardinality explosion in one exporter.
SAMPLE_LIMIT = 50_000
LABEL_LIMIT = 30


def scrape_job(name: str, *, targets: Sequence[str] = (), file_sd: Path | None = None,
               interval: str | None = None, honor_labels: bool = False,
               metric_relabel_configs: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    job: dict[str, Any] = {"job_name": name, "sample_limit": SAMPLE_LIMIT, "label_limit": LABEL_LIMIT}
    if honor_labels:  # a Pushgateway: its groups' own job and instance labels are kept
        job["honor_labels"] = True
    if interval:
        job["scrape_interval"] = interval
    if targets:
        job["static_configs"] = [{"targets": list(targets)}]
    if file_sd is not None:
        job["file_sd_configs"] = [{"files": [str(file_sd)], "refresh_interval": "1s"}]
    if metric_relabel_configs:
        job["metric_relabel_configs"] = [dict(c) for c in metric_relabel_configs]
    return job


def pushgateway_job(target: str) -> dict[str, Any]:
    """The Pushgateway's scrape job: ``honor_labels`` keeps each pushed group's ``job``/``instance``."""
    return scrape_job(PUSHGATEWAY_JOB, targets=[target], honor_labels=True)


PUSHGATEWAY_JOB = "pushgateway"


def prometheus_config(profile: Profile, jobs: Sequence[dict[str, Any]], rule_files: Sequence[Path] = (),
                      alertmanagers: Sequence[str] = (), external_labels: Mapping[str, str] | None = None
                      ) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {"scrape_interval": profile.scrape_interval,
                   "evaluation_interval": profile.evaluation_interval,
                   "scrape_timeout": profile.scrape_interval if duration_seconds(profile.scrape_interval) < 10
                   else "10s"},
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": list(jobs),
    }
    if external_labels:
        config["global"]["external_labels"] = dict(external_labels)
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    return config


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path


def write_file_sd(path: Path, targets: Mapping[str, Sequence[str]],
                  intervals: Mapping[str, str] | None = None) -> None:
    """Write a file_sd target list atomically: {service label -> targets}. ``intervals`` (service -> duration)
    scrapes a service's targets at their own interval, with a timeout as long (``__scrape_interval__`` and
    ``__scrape_timeout__`` labels); the others keep the job's."""
    groups = [{"targets": list(t), "labels": {"service": name, **_scraped_every((intervals or {}).get(name))}}
              for name, t in sorted(targets.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(groups, sort_keys=False))
    tmp.replace(path)


def _scraped_every(interval: str | None) -> dict[str, str]:
    return {"__scrape_interval__": interval, "__scrape_timeout__": interval} if interval else {}
