"""Where a page reads from, and the parts every page shares: a model version's panels and its lineage."""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import lineage
from ..catalog import serving as serving_cat
from ..lineage.sources import FileSource, LogSource, LokiSource, PrometheusSource, SourceError
from ..logs.privacy import Privacy
from ..rules import config_for
from ..rules.config import PROFILES
from . import signals
from .fetch import Fetcher, PanelData, promql_string, selector
from .page import panel_context

TIMEOUT_S = 5.0


@dataclass
class Sources:
    """Prometheus and Loki (either may be absent), the rule profile whose windows the panels read, the privacy
    rules log lines pass through, each query's timeout."""

    prometheus_url: str = ""
    loki_url: str = ""
    profile: str = "default"
    privacy: Privacy | None = None
    timeout_s: float = TIMEOUT_S
    log_files: tuple[Path, ...] = ()  # JSON-lines files of the lineage (training runs...), those that exist
    fetcher: Fetcher = field(init=False)

    def __post_init__(self) -> None:
        prom = PrometheusSource(self.prometheus_url, self.timeout_s) if self.prometheus_url else None
        self.fetcher = Fetcher(prom)

    @property
    def loki(self) -> LokiSource | None:
        return LokiSource(self.loki_url, timeout=self.timeout_s) if self.loki_url else None

    def lineage_logs(self) -> list[LogSource]:
        """Where a version's lineage lines are read: Loki, and the log files that exist now."""
        files = [p for p in self.log_files if Path(p).is_file()]
        return ([self.loki] if self.loki else []) + ([FileSource(files)] if files else [])

    def missing(self) -> list[str]:
        """What the page lacks because a source is absent or stopped answering (call once the page is read)."""
        if not self.prometheus_url:
            return ["Prometheus: no URL given, so no panels, exemplars or lineage gauges"]
        if self.fetcher.down:
            return [f"{self.fetcher.down}: the panels, exemplars and lineage gauges it did not answer are "
                    "missing (the page was written all the same)"]
        return []


def version_panels(sources: Sources, model: str, version: str, keys: Sequence[str], start: float, end: float,
                   marks: tuple[float, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template context, JSON twin) of one model version's panels over ``[start, end]``."""
    known = signals.panels(config_for(sources.profile))
    read: list[PanelData] = []
    for key in keys:
        if sources.fetcher.prometheus is None:
            break
        read.append(sources.fetcher.panel(known[key], selector(model, version), start, end))
    context = {"model": model, "model_version": version,
               "panels": [panel_context(p, marks, window=(start, end)) for p in read]}
    twin = {"model": model, "model_version": version, "start": start, "end": end,
            "panels": [p.as_dict() for p in read],
            "missing": [empty for p in read if (empty := no_data(p, model, version, sources.profile))]}
    return context, twin


def no_data(data: PanelData, model: str, version: str, profile: str) -> str:
    """The "could not read" line of a panel none of whose queries had data ("" when it has some), with the hint
    that the stack may run another rule profile (whose windows the recorded series carry)."""
    if data.lines or not data.missing:
        return ""
    others = " or ".join(f"--profile {p}" for p in sorted(PROFILES) if p != profile)
    return (f"{data.panel.title} of {model} {version}: no data at the {profile} profile's window "
            f"(does the stack run another profile? {others})")


def detect_profile(sources: Sources, model: str, start: float, end: float) -> tuple[str, str]:
    """(profile, how it was chosen): the one profile all of whose traffic windows the model's recorded request
    rate carries in Prometheus; ``default`` when none or several do, or Prometheus does not answer."""
    expr = (f"group by (window) (last_over_time({serving_cat.REQUEST_RATE.name}{{model={promql_string(model)}}}"
            f"[{int(math.ceil(end - start)) + 1}s]))")
    try:
        windows = {s["metric"].get("window", "") for s in sources.fetcher.instant(expr, end)}
    except SourceError as exc:
        return "default", f"profile default: the windows in Prometheus could not be read ({exc})"
    fits = [name for name, p in sorted(PROFILES.items()) if set(p.traffic_windows) <= windows]
    if len(fits) == 1:
        return fits[0], f"profile {fits[0]}: the windows in Prometheus ({', '.join(sorted(windows))})"
    return "default", (f"profile default: the windows in Prometheus ({', '.join(sorted(windows)) or 'none'}) "
                       f"fit {' and '.join(fits) or 'no profile'}; give --profile")


SHOWN_LINEAGE = ("training_data_fingerprint", "owner", "dataset_version", "pipeline", "job", "instance")


def lineage_of(sources: Sources, model: str, version: str, since: str = "30d") -> tuple[dict[str, Any], dict[str, Any]]:
    """(context, twin) of a version's lineage: its serving and training gauges, training runs, batches."""
    prometheus = None if sources.fetcher.down else sources.fetcher.prometheus
    found = lineage.trace(model, version, prometheus=prometheus, logs=sources.lineage_logs(), since=since,
                          prometheus_down=sources.fetcher.down)
    rows: list[tuple[str, str]] = []
    for where, sets in (("serving (mlscope_model_info)", found.serving),
                        ("training (mlscope_training_info)", found.trained)):
        for labels in sets:
            shown = [f"{k}={labels[k]}" for k in SHOWN_LINEAGE if labels.get(k)]
            rest = [f"{k}={v}" for k, v in sorted(labels.items())
                    if k not in SHOWN_LINEAGE and k not in ("model", "model_version")]
            rows.append((where, ", ".join(shown + rest)))
    for run in found.training_runs:
        rows.append(("training run", f"{run.get('run_id')}: {run.get('status')}, ended {run.get('ts')}"))
    if found.batch_ids:
        rows.append(("data batches", ", ".join(found.batch_ids)))
    if not found.compared:
        named = ", ".join(found.fingerprints) or "none"
        rows.append(("fingerprints agree", f"not compared: it takes two sources naming one (named by: {named})"))
    else:
        rows.append(("fingerprints agree", "yes" if found.consistent else "NO: " + str(found.fingerprints)))
    rows += [("missing", note) for note in found.missing]
    return {"model": model, "model_version": version, "rows": rows}, found.as_dict()


def now() -> float:
    return time.time()
