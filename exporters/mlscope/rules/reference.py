"""The metrics reference (``docs/metrics.md``) and the runbooks' threshold blocks, generated.

Sources, all data already: the catalog (every name, type, unit, labels, help), the rule files rendered from
the rule configuration (which recorded series read which names, which alerts read them, with what
thresholds) and the dashboards' provisioned JSON (which panels query them). Output is deterministic:
sorted, no time stamps. Stack-side: reads YAML and imports the rule generator.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import catalog
from . import anomaly as _anomaly
from .builders import MODEL_OWNER_JOIN_RE, PIPELINE_OWNER_JOIN
from .config import PROFILES, BurnWindow, RuleConfig, WindowGuard
from .generate import render
from .overrides import configured
from .promql import metric_names

REFERENCE = Path("docs/metrics.md")
RUNBOOKS = Path("alerting/runbooks")
DASHBOARDS = Path("provisioning/grafana/dashboards")
BEGIN, END = "<!-- thresholds:begin -->", "<!-- thresholds:end -->"


def without_owner_joins(expr: str) -> str:
    """``expr`` less the join every model- or pipeline-scoped alert makes for its `owner` label (it is not what
    the alert watches)."""
    return MODEL_OWNER_JOIN_RE.sub("", expr.replace(PIPELINE_OWNER_JOIN, ""))


DOMAIN_TITLES = {"serving": "Serving (the model monitor)", "alerting": "Alert receiver", "resources": "Resources",
                 "drift": "Drift and data quality", "quality": "Model quality", "logs": "Logs",
                 "pipelines": "Pipelines, batch jobs and training runs",
                 "tracing": "Traces (span export)", "versions": "Versions compared", "genai": "Generative models",
                 "modelservers": "Model servers (vLLM, SGLang)",
                 "anomaly": "Adaptive alerts (seasonal baselines and bands)"}

# The rule-configuration settings each alert's expression is built from (beyond `for`, windows, severity).
ALERT_SETTINGS: dict[str, tuple[str, ...]] = {
    "ModelErrorRateHigh": ("thresholds.error_ratio", "profile.warmup.serving"),
    "ModelNoPredictions": ("profile.for_no_traffic",),
    "ModelLatencySLOBurn": ("thresholds.latency_slo_seconds", "thresholds.latency_slo_objective",
                            "profile.burn_windows", "profile.warmup.serving"),
    "MLScopeTargetDown": ("profile.for_target_down",),
    "FeatureDriftHigh": ("thresholds.drift_psi_floor", "profile.warmup.drift"),
    "PredictionDriftHigh": ("thresholds.drift_psi_floor", "profile.warmup.drift"),
    "FeatureDataQualityDegraded": ("thresholds.data_quality_ratio", "profile.warmup.data_quality"),
    "ModelQualityBelowBaseline": ("thresholds.quality_max_drop", "profile.warmup.quality"),
    "ModelRegressionErrorAboveBaseline": ("thresholds.regression_max_error_increase",
                                          "profile.warmup.quality"),
    "ModelEstimatedQualityBelowBaseline": ("thresholds.quality_max_drop", "profile.warmup.estimated",
                                           "thresholds.calibration_max_error"),
    "ModelGroundTruthCoverageLow": ("thresholds.quality_min_coverage", "profile.warmup.coverage"),
    "ModelLabelsLate": ("profile.label_delay_max_s", "profile.warmup.quality"),
    "GPUMemoryNearlyFull": ("resources.gpu_memory_used_ratio",),
    "GPUTemperatureHigh": ("resources.gpu_temperature_celsius",),
    "GPUThrottling": ("resources.gpu_throttle_reasons",),
    "HostMemoryPressure": ("resources.host_memory_available_ratio",),
    "MLScopeLogShipperDroppingLines": ("thresholds.log_drop_rate", "profile.warmup.logs"),
    "PipelineStale": ("thresholds.pipeline_stale_factor", "profile.pipeline_expected_interval"),
    "PipelineRejectedRecordsHigh": ("thresholds.pipeline_rejected_ratio",),
    "PipelineDataFreshnessLag": ("profile.pipeline_max_data_age",),
    "PipelineBatchChecksFailing": ("thresholds.data_quality_ratio", "thresholds.drift_psi_floor",
                                   "profile.warmup.drift", "profile.warmup.data_quality"),
    "ModelCandidateWorseThanBaseline": ("versions.error_ratio_margin", "versions.latency_p95_ratio",
                                        "versions.latency_p95_min_difference_s", "versions.quality_margin",
                                        "profile.warmup.versions_traffic",
                                        "profile.warmup.versions_labels", "profile.warmup.versions_estimated",
                                        "profile.warmup.serving", "profile.warmup.quality",
                                        "profile.warmup.estimated"),
    "ModelCandidateOutputsDiverge": ("versions.output_js_distance", "versions.output_js_hysteresis",
                                     "profile.warmup.versions_traffic",
                                     "profile.warmup.serving"),
    "ModelShadowDisagreementHigh": ("versions.shadow_disagreement_max", "profile.warmup.shadow"),
    "ModelAttributionRankChanged": ("versions.attribution_rank_min", "profile.warmup.attributions"),
    "GenAITimeToFirstTokenSLOBurn": ("thresholds.genai_ttft_slo_seconds", "thresholds.genai_ttft_slo_objective",
                                     "profile.burn_windows", "profile.warmup.genai"),
    "GenAITimePerOutputTokenSLOBurn": ("thresholds.genai_tpot_slo_seconds", "thresholds.genai_tpot_slo_objective",
                                       "profile.burn_windows", "profile.warmup.genai"),
    "GenAITruncationRatioHigh": ("thresholds.genai_truncation_ratio", "profile.warmup.genai"),
    "GenAIFeedbackPositiveLow": ("thresholds.genai_feedback_max_drop", "profile.warmup.feedback"),
    "GenAITenantCostOverBudget": ("thresholds.genai_tenant_cost_per_hour", "profile.warmup.genai_cost"),
    "ModelServerTimeToFirstTokenSLOBurn": ("thresholds.genai_ttft_slo_seconds", "model_servers.ttft_slo_seconds",
                                           "thresholds.genai_ttft_slo_objective", "profile.burn_windows",
                                           "profile.warmup.model_server"),
    "ModelServerInterTokenLatencySLOBurn": ("thresholds.genai_tpot_slo_seconds", "model_servers.tpot_slo_seconds",
                                            "thresholds.genai_tpot_slo_objective", "profile.burn_windows",
                                            "profile.warmup.model_server"),
    "ModelServerRequestsFailing": ("model_servers.failed_ratio", "profile.warmup.model_server"),
    "ModelServerQueueTimeHigh": ("model_servers.queue_time_seconds", "profile.warmup.model_server"),
    "ModelServerWaitingRequestsGrowing": ("model_servers.waiting_requests", "profile.warmup.model_server_state"),
    "ModelServerKVCacheNearlyFull": ("model_servers.kv_cache_usage_ratio", "profile.warmup.model_server_state"),
    "ModelServerPreempting": ("model_servers.preemptions_per_second", "profile.warmup.model_server"),
    "ModelServerThroughputCollapse": ("model_servers.throughput_drop_ratio",
                                      "profile.warmup.model_server_throughput"),
}
# The adaptive alerts (mlscope.rules.anomaly): each signal's own settings, then the section's time scales.
_ANOMALY_FIELDS = ("z_threshold", "spread_floor", "spread_floor_ratio", "min_traffic", "direction", "for_duration")
_ANOMALY_SHARED = ("profile.anomaly.offsets", "profile.anomaly.smoothing", "profile.anomaly.spread_window")
_COUNTED_FIELDS = ("count_window", "baseline_floor", "smoothing")  # of a signal judged as a count
for _source in _anomaly.SOURCES:
    _fields = _ANOMALY_FIELDS + (_COUNTED_FIELDS if _source.counts else ())
    ALERT_SETTINGS[_source.alert] = tuple(dict.fromkeys(ALERT_SETTINGS.get(_source.alert, ()) + tuple(
        f"profile.anomaly.{_source.signal}.{name}" for name in _fields) + _ANOMALY_SHARED))
# Alerts whose settings are applied where the data is judged (mlscope.pipelines.checks reads them from the rule
# configuration), not in the alert's expression: it reads the verdict.
APPLIED_BY_THE_JOB: frozenset[str] = frozenset({"PipelineBatchChecksFailing"})
SETTING_TITLES: dict[str, str] = {
    "thresholds.error_ratio": "share of failed requests",
    "profile.warmup.serving": "warm-up guard: requests in the window, window age",
    "thresholds.latency_slo_seconds": "latency SLO (seconds)",
    "thresholds.latency_slo_objective": "share of requests within the SLO",
    "thresholds.drift_psi_floor": "PSI floor (the calibrated threshold never goes below it)",
    "profile.warmup.drift": "warm-up guard: feature values in the window, window age",
    "profile.warmup.data_quality": "warm-up guard: feature rows in the window, window age",
    "thresholds.data_quality_ratio": "share of rows with an issue (missing: above the reference's own rate)",
    "thresholds.quality_max_drop": "drop below the baseline (absolute)",
    "profile.warmup.quality": "warm-up guard: labelled outcomes in the window, window age",
    "profile.warmup.estimated": "warm-up guard: predictions in the window, window age",
    "profile.warmup.coverage": "warm-up guard: stored predictions in the window, window age",
    "profile.warmup.logs": "warm-up guard: log lines handled in the window, window age",
    "thresholds.calibration_max_error": "held-out calibration error of the calibrated reference at most",
    "thresholds.regression_max_error_increase": "MAE increase above the baseline (relative)",
    "thresholds.quality_min_coverage": "ground-truth coverage below",
    "thresholds.log_drop_rate": "dropped log lines per second above",
    "thresholds.pipeline_stale_factor": "times the pipeline's expected interval without a success",
    "profile.pipeline_expected_interval": "expected interval of a pipeline that states none",
    "thresholds.pipeline_rejected_ratio": "share of a step's records read that it rejected, above",
    "profile.pipeline_max_data_age": "age of a step's newest event above",
    "profile.for_no_traffic": "time without a request",
    "profile.for_target_down": "time a target is down",
    "profile.burn_windows": "burn rates (long and short window, both)",
    "profile.label_delay_max_s": "90th percentile label delay above (seconds)",
    "resources.gpu_memory_used_ratio": "share of GPU memory used above",
    "resources.gpu_temperature_celsius": "GPU temperature above (celsius)",
    "resources.gpu_throttle_reasons": "throttle reasons that count",
    "resources.host_memory_available_ratio": "share of host memory available below",
    "versions.error_ratio_margin": "candidate's error ratio above the baseline's by more than (absolute)",
    "versions.latency_p95_ratio": "candidate's p95 latency above this many times the baseline's",
    "versions.latency_p95_min_difference_s": "...and above the baseline's by at least (seconds)",
    "versions.quality_margin": "candidate's accuracy or macro F1 below the baseline's by more than (absolute)",
    "versions.output_js_distance": "Jensen-Shannon distance between the versions' predicted classes above",
    "versions.output_js_hysteresis": "once firing, resolves only below the distance minus",
    "versions.shadow_disagreement_max": "share of a shadow's answers that differ from the served version's above",
    "profile.warmup.shadow": "warm-up guard: shadow answers compared in the window (minimum traffic), window age",
    "versions.attribution_rank_min": "Spearman between the window's and the reference's attribution ranking below",
    "profile.warmup.attributions": "warm-up guard: predictions with attributions in the window, window age",
    "profile.warmup.versions_traffic": "guard: requests of each version in the window",
    "profile.warmup.versions_labels": "guard: labelled outcomes of each version in the window",
    "profile.warmup.versions_estimated": "guard: predictions with probabilities of each version in the window",
    "thresholds.genai_ttft_slo_seconds": "time to first token SLO (seconds)",
    "thresholds.genai_ttft_slo_objective": "share of first tokens within the SLO",
    "thresholds.genai_tpot_slo_seconds": "time per output token SLO (seconds)",
    "thresholds.genai_tpot_slo_objective": "share of generations within the SLO",
    "profile.warmup.genai": "warm-up guard: generations in the window, window age",
    "thresholds.genai_truncation_ratio": "share of generations cut at the token limit, above",
    "thresholds.genai_feedback_max_drop": "feedback-positive ratio below the baseline (absolute)",
    "profile.warmup.feedback": "warm-up guard: feedbacks joined in the window, window age",
    **{f"profile.anomaly.{_s.signal}.{name}": f"{_s.signal}: {title}" for _s in _anomaly.SOURCES
       for name, title in (("z_threshold", "band half-width in spreads (z-score threshold)"),
                           ("spread_floor", "spread floor (absolute)"),
                           ("spread_floor_ratio", "spread floor (share of the baseline)"),
                           ("min_traffic", f"judged from this many expected {_s.signal} in the count window "
                                           f"({_s.traffic_what} without one)" if _s.counts else
                                           f"judged from this much {_s.traffic_what}"),
                           ("count_window", "judged as a count over this window (empty: a smoothed ratio)"),
                           ("baseline_floor", "least baseline ratio a count is judged against"),
                           ("smoothing", "smoothing of the value the offsets read (empty: the section's)"),
                           ("direction", "direction that alerts (up, down, both)"),
                           ("for_duration", "`for`"))},
    "profile.anomaly.offsets": "seasonal offsets (the baseline is their median)",
    "profile.anomaly.smoothing": "smoothing window (average)",
    "profile.anomaly.spread_window": "window of the spread (median absolute residual)",
    "profile.warmup.genai_cost": "warm-up guard: a tenant's tokens priced in the window, window age",
    "thresholds.genai_tenant_cost_per_hour": "cost per tenant per hour above (price table's currency)",
    "profile.warmup.model_server": "warm-up guard: requests the servers finished in the window, window age",
    "profile.warmup.model_server_state": "warm-up guard: samples of the server's gauge in the window, window age "
                                         "and continuity",
    "profile.warmup.model_server_throughput": "warm-up guard of both windows: requests finished, window age and "
                                              "continuity",
    "model_servers.failed_ratio": "share of finished requests aborted, above",
    "model_servers.queue_time_seconds": "mean queue time above (seconds)",
    "model_servers.waiting_requests": "waiting requests (window average) above, and growing",
    "model_servers.kv_cache_usage_ratio": "KV-cache usage above, over the whole window",
    "model_servers.preemptions_per_second": "preemptions per second above",
    "model_servers.throughput_drop_ratio": "output tokens/s below this share of the long window's",
    "model_servers.ttft_slo_seconds": "server time to first token SLO (seconds; 0: the application's, or the "
                                      "nearest common server bucket above it)",
    "model_servers.tpot_slo_seconds": "server inter-token latency SLO (seconds; 0: the application's, or the "
                                      "nearest common server bucket above it)",
}


@dataclass
class Uses:
    """Who reads each catalog name: recording rules, alerts, dashboard panels."""

    sources: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))   # recorded -> names read
    windows: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    alerts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))    # name -> alerts
    panels: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))  # name -> panels

    def derived(self, name: str) -> list[str]:
        """Recorded series computed from ``name``, directly or through other recorded series."""
        found: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            for recorded, read in self.sources.items():
                if current in read and recorded not in found:
                    found.add(recorded)
                    todo.append(recorded)
        return sorted(found)

    def alerts_of(self, name: str) -> list[str]:
        return sorted(set().union(*(self.alerts[n] for n in [name, *self.derived(name)])))

    def panels_of(self, name: str) -> list[tuple[str, str]]:
        return sorted(set().union(*(self.panels[n] for n in [name, *self.derived(name)])))


def catalog_names(expr: str) -> set[str]:
    """Catalog family / recorded names that a PromQL expression reads (foreign series left out)."""
    return {catalog.spec_of(n).name for n in metric_names(expr) if n in catalog.SERIES_NAMES}


def rule_groups(profile: str, settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every rule group of ``profile``, as the generator renders the files (``settings``: a folder's overrides)."""
    return [g for text in render(profile, overrides=settings).values() for g in yaml.safe_load(text)["groups"]]


def alert_rules(profile: str, settings: Mapping[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Alert name -> its rules (an alert may have several: one per severity or metric)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for group in rule_groups(profile, settings):
        for rule in group["rules"]:
            if "alert" in rule:
                out[rule["alert"]].append(rule)
    return dict(out)


def dashboards(folder: Path) -> list[dict[str, Any]]:
    """The provisioned dashboards, by title."""
    boards = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return sorted(boards, key=lambda d: str(d["title"]))


def _panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _prometheus_exprs(item: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in item.get("targets", [])
            if t.get("datasource", {}).get("type") == "prometheus" and t.get("expr")]


def collect(boards: list[dict[str, Any]]) -> Uses:
    """Read the default profile's rules and the dashboards into who-reads-what."""
    uses = Uses()
    for profile in sorted(PROFILES):
        for group in rule_groups(profile):
            for rule in group["rules"]:
                if "record" in rule:
                    window = rule.get("labels", {}).get("window")
                    if window:
                        seen = uses.windows[rule["record"]].setdefault(profile, [])
                        seen.extend([window] if window not in seen else [])
                    if profile == "default":
                        uses.sources[rule["record"]] |= catalog_names(rule["expr"])
                elif profile == "default":
                    for name in catalog_names(without_owner_joins(rule["expr"])):
                        uses.alerts[name].add(rule["alert"])
    for board in boards:
        title = f"{board['title']}\t{board['uid']}"  # the uid is what runbooks and alert links name
        for panel in _panels(board.get("panels", [])):
            for expr in _prometheus_exprs(panel):
                for name in catalog_names(expr):
                    uses.panels[name].add((title, str(panel.get("title", ""))))
        for variable in board.get("templating", {}).get("list", []):
            query = variable.get("query")
            if variable.get("type") == "query" and isinstance(query, str):
                for name in catalog_names(query):
                    uses.panels[name].add((title, f"variable ${variable['name']}"))
    return uses


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def prose(text: str) -> str:
    """Catalog help as Markdown: dunder words (``__overflow__``) as code, stray asterisks escaped."""
    return re.sub(r"\b(__\w+__)", r"`\1`", text).replace("*", "\\*")


def _code_link(name: str) -> str:
    return f"[`{name}`](#{anchor(name)})"


def _alert_link(name: str) -> str:
    return f"[`{name}`](../alerting/runbooks/{name}.md)"


def _panel_list(panels: list[tuple[str, str]]) -> str:
    by_board: dict[str, list[str]] = defaultdict(list)
    for board, panel in panels:
        by_board[board].append(panel)
    def name(board: str) -> str:
        title, _, uid = board.partition("\t")
        return f"*{title}* (`{uid}`)" if uid else f"*{title}*"

    return "; ".join(f"{name(board)}: " + ", ".join(titles) for board, titles in sorted(by_board.items()))


def _windows(uses: Uses, name: str) -> str:
    per_profile = uses.windows.get(name, {})
    return " · ".join(f"{p}: {', '.join(w)}" for p, w in sorted(per_profile.items()))


def _metric_entry(spec: catalog.MetricSpec, uses: Uses) -> list[str]:
    facts = [spec.kind, f"unit `{spec.unit}`" if spec.unit else "no unit",
             "labels " + (", ".join(f"`{label}`" for label in spec.labels) if spec.labels else "none")]
    lines = [f"### `{spec.name}`", "", " · ".join(facts), "", prose(spec.help), ""]
    if spec.otel_name:
        lines += [f"- OpenTelemetry: `{spec.otel_name}` (GenAI semantic conventions), buckets "
                  + ", ".join(str(int(b)) if float(b).is_integer() else f"{b:g}" for b in spec.buckets or ()), ""]
    lines += _uses_lines(spec.name, uses, uses.derived(spec.name))
    return lines


def _recorded_entry(spec: catalog.RecordedSpec, uses: Uses) -> list[str]:
    facts = ["recorded", "labels " + ", ".join(f"`{label}`" for label in spec.labels)]
    windows = _windows(uses, spec.name)
    if windows:
        facts.append("`window` " + windows)
    lines = [f"### `{spec.name}`", "", " · ".join(facts), "", prose(spec.help), ""]
    read = sorted(uses.sources.get(spec.name, set()))
    if read:
        lines.append("- Computed from: " + ", ".join(_code_link(n) for n in read))
    lines += _uses_lines(spec.name, uses, uses.derived(spec.name), read)
    return lines


def _uses_lines(name: str, uses: Uses, derived: list[str], sources: list[str] | None = None) -> list[str]:
    lines = []
    if derived:
        lines.append("- Recorded into: " + ", ".join(_code_link(n) for n in derived))
    alerts = uses.alerts_of(name)
    lines.append("- Alerts: " + (", ".join(_alert_link(a) for a in alerts) if alerts else "none"))
    panels = uses.panels_of(name)
    source_panels = sorted({p for source in sources or () for p in uses.panels_of(source)})
    if panels:
        lines.append("- Panels: " + _panel_list(panels))
    elif source_panels:  # dashboards compute it from its sources over the dashboard's own window
        lines.append("- Panels: none directly; from its sources: " + _panel_list(source_panels))
    else:
        lines.append("- Panels: none")
    return [*lines, ""]


def _domain_table(metrics: tuple[catalog.MetricSpec, ...], recorded: tuple[catalog.RecordedSpec, ...]) -> list[str]:
    rows = ["| name | type | unit | labels |", "|---|---|---|---|"]
    rows += [f"| {_code_link(m.name)} | {m.kind} | {m.unit} | {', '.join(m.labels)} |" for m in metrics]
    rows += [f"| {_code_link(r.name)} | recorded | | {', '.join(r.labels)} |" for r in recorded]
    return [*rows, ""]


def _server_table(server_series: Iterable[Any]) -> list[str]:
    """The model servers' own series (read, not published): versions, and the recorded series that read them."""
    read_by: dict[str, set[str]] = defaultdict(set)
    for group in rule_groups("default"):
        for rule in group["rules"]:
            if "record" in rule:
                for name in metric_names(rule["expr"]):
                    read_by[name].add(rule["record"])
    rows = ["| server series (read, not published) | type | labels | versions | recorded into |",
            "|---|---|---|---|---|"]
    for s in server_series:
        into = sorted(set().union(*(read_by[n] for n in s.series_names)))
        rows.append(f"| `{s.name}` | {s.kind} | {', '.join(s.labels)} | {', '.join(s.versions)} | "
                    + ", ".join(_code_link(r) for r in into) + " |")
    return [*rows, ""]


def render_reference(boards: list[dict[str, Any]]) -> str:
    """The text of ``docs/metrics.md``."""
    uses = collect(boards)
    lines = [
        "# Metrics reference",
        "",
        "<!-- Generated by `mlscope docs build` (`make generate`) from the catalog (exporters/mlscope/catalog/), "
        "the rule configuration and the dashboards' JSON. Do not edit. -->",
        "",
        "Every name mlscope publishes or records: its type, unit, labels and help (from "
        "[`exporters/mlscope/catalog/`](../exporters/mlscope/catalog/)); the recorded series computed from it "
        "(rules in [`alerting/rules/`](../alerting/rules/)); the alerts that read it or those series (linked to "
        "their runbooks); and the dashboard panels that query it or them "
        "([`provisioning/grafana/dashboards/`](../provisioning/grafana/dashboards/)). Windows are those of the "
        "production (`default`) and `fast` rule profiles. Every model-scoped alert also joins "
        "`mlscope_model_info` for the version's `owner` label, every pipeline alert `mlscope_pipeline_info` for "
        "the pipeline's; those joins are not listed.",
        "",
    ]
    domains = [(name, getattr(catalog, name)) for name in DOMAIN_TITLES]
    lines += ["Contents: " + " · ".join(f"[{DOMAIN_TITLES[n]}](#{anchor(DOMAIN_TITLES[n])})" for n, _ in domains),
              ""]
    for name, module in domains:
        metrics = tuple(sorted(module.METRICS, key=lambda s: s.name))
        recorded = tuple(sorted(module.RECORDED, key=lambda s: s.name))
        doc = (module.__doc__ or "").strip().splitlines()[0]
        lines += [f"## {DOMAIN_TITLES[name]}", "", doc, "", *_domain_table(metrics, recorded)]
        attributes: dict[str, str] = getattr(module, "OTEL_ATTRIBUTES", {})
        if attributes:
            lines += ["| label | OpenTelemetry attribute (metrics and spans) |", "|---|---|"]
            lines += [f"| `{label}` | `{attribute}` |" for label, attribute in attributes.items()] + [""]
        server_series = getattr(module, "SERVER_SERIES", ())
        if server_series:
            lines += _server_table(server_series)
        for spec in metrics:
            lines += _metric_entry(spec, uses)
        for rec in recorded:
            lines += _recorded_entry(rec, uses)
    return "\n".join(lines).rstrip() + "\n"


# --- runbook thresholds -------------------------------------------------------------------------------------


def setting_value(cfg: RuleConfig, path: str) -> object:
    """The value of ``path`` (``thresholds.error_ratio``) in a rule configuration."""
    value: object = cfg
    for part in path.split("."):
        value = getattr(value, part)
    return value


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, WindowGuard):
        age = ("no age condition" if value.min_age_share <= 0 else "series a whole window old"
               if value.min_age_share == 1 else f"series {value.min_age_share:g} of a window old")
        gaps = f", {value.min_sample_share:.0%} of its scrapes" if value.min_sample_share > 0 else ""
        return f"at least {value.min_count:g}, {age}{gaps}"
    if isinstance(value, tuple) and value and all(isinstance(v, BurnWindow) for v in value):
        return "; ".join(f"{b.factor:g}x over {b.long} and {b.short} ({b.severity})" for b in value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def rule_windows(expr: str) -> list[str]:
    """Windows an expression reads: ``window="…"`` matchers, ``[…]`` ranges and offsets, in order."""
    found = re.findall(r'window="([^"]+)"|\[(\w+)\]|offset (\w+)', without_owner_joins(expr))
    return list(dict.fromkeys(w for groups in found for w in groups if w))


def _joined(values: Iterable[object]) -> str:
    kept = [str(v) for v in dict.fromkeys(values) if v not in (None, "")]
    return ", ".join(kept) if kept else "none"


def threshold_rows(alert: str, rules: Mapping[str, list[dict[str, Any]]],
                   settings: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(setting, default value, fast value) rows of one alert; ``rules`` maps profile -> its rules."""
    def row(title: str, value: Callable[[str], str]) -> tuple[str, str, str]:
        return title, value("default"), value("fast")

    rows = [row("severity", lambda p: _joined(r["labels"]["severity"] for r in rules[p])),
            row("windows the expression reads",
                lambda p: _joined(w for r in rules[p] for w in rule_windows(r["expr"]))),
            row("`for`", lambda p: _joined(r.get("for") for r in rules[p])),
            row("`keep_firing_for`", lambda p: _joined(r.get("keep_firing_for") for r in rules[p]))]
    for path in ALERT_SETTINGS.get(alert, ()):
        values = [format_value(setting_value(configured(p, settings or {}), path)) for p in ("default", "fast")]
        rows.append((f"{SETTING_TITLES[path]} (`{path}`)", values[0], values[1]))
    return rows


def thresholds_block(alert: str, rules: Mapping[str, list[dict[str, Any]]],
                     settings: Mapping[str, Any] | None = None) -> str:
    lines = [BEGIN, "## Thresholds", "",
             "Generated by `mlscope docs build` from the rule configuration. To change a value, set it by its "
             "path in your stack folder's `alerting/rules-config.yml` (`thresholds.…` and the other sections at "
             "the top; `profile.…` under `profiles: {default: …, fast: …}`) and run `mlscope rules build` "
             "([alerting.md](../../docs/alerting.md#your-own-settings-alertingrules-configyml)).", "",
             "| setting | production (`default`) | `fast` profile |", "|---|---|---|"]
    lines += [f"| {name} | {default} | {fast} |" for name, default, fast in threshold_rows(alert, rules, settings)]
    return "\n".join([*lines, END])


def with_thresholds(text: str, block: str) -> str:
    """A runbook with its thresholds block replaced, or inserted before "## First checks" (else at the end)."""
    if BEGIN in text and END in text:
        start, stop = text.index(BEGIN), text.index(END) + len(END)
        return text[:start] + block + text[stop:]
    marker = "\n## First checks"
    if marker in text:
        at = text.index(marker) + 1
        return text[:at] + block + "\n\n" + text[at:]
    return text.rstrip() + "\n\n" + block + "\n"


def thresholds_blocks(settings: Mapping[str, Any]) -> dict[str, str]:
    """Alert name -> its thresholds block under a folder's ``settings`` (what the alert receiver serves)."""
    per_profile = {p: alert_rules(p, settings) for p in ("default", "fast")}
    return {alert: thresholds_block(alert, {p: per_profile[p][alert] for p in per_profile}, settings)
            for alert in sorted(per_profile["default"])}


def runbooks(folder: Path) -> dict[Path, str]:
    """Runbook path -> its text with a fresh thresholds block (only runbooks of generated alerts)."""
    per_profile = {p: alert_rules(p) for p in ("default", "fast")}
    out = {}
    for alert in sorted(per_profile["default"]):
        path = folder / f"{alert}.md"
        if path.exists():
            rules = {p: per_profile[p][alert] for p in per_profile}
            out[path] = with_thresholds(path.read_text(), thresholds_block(alert, rules))
    return out


# --- build and check ---------------------------------------------------------------------------------------


def wanted(root: Path) -> dict[Path, str]:
    """Every generated documentation file under ``root`` and its fresh text."""
    files = {root / REFERENCE: render_reference(dashboards(root / DASHBOARDS))}
    files.update(runbooks(root / RUNBOOKS))
    return files


def build(root: Path) -> list[Path]:
    """Write the files that changed; return them."""
    written = []
    for path, text in wanted(root).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


def stale(root: Path) -> list[Path]:
    """Files that differ from a fresh build."""
    return [p for p, text in wanted(root).items() if not p.exists() or p.read_text() != text]
