"""THE rule configuration: every selector, threshold, window and `for` duration.

Recording and alert rules (``alerting/rules/``), the dashboards' thresholds and
the promtool tests all read these values, so a threshold changes here and
nowhere else. Two profiles share the thresholds and differ in time scales:
``default`` for production and ``fast`` (1 s scrape and evaluation,
minute-scale windows) for tests and the demo.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from ..catalog.logs import LOG_APP
from ..catalog.modelservers import ITL_FAMILIES, TTFT_FAMILIES, ServerSeries, common_buckets
from ..catalog.pipelines import PUSH_JOB
from ..catalog.versions import ROLES
from .promql import duration_seconds as duration_seconds  # re-exported: its callers import it from here


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate alert: both windows must burn faster than ``factor``."""

    long: str
    short: str
    factor: float
    severity: str


@dataclass(frozen=True)
class WindowGuard:
    """When a window of one domain is warm enough for an alert to read it (``builders.warm_up``).

    Warm: the window holds at least ``min_count`` observations, the series it reads existed
    ``min_age_share`` of the window's length ago (1: a whole window; 0: no age condition), and, where
    ``min_sample_share`` is above 0, every series of the guard's sample selector holds at least that share of the
    samples its interval puts in the window (continuity: a window spanning a Prometheus restart has a gap,
    although its series existed a whole window ago).
    """

    min_count: float
    min_age_share: float = 1.0
    min_sample_share: float = 0.0


@dataclass(frozen=True)
class WarmUp:
    """The warm-up guard of every domain: an alert reads a window only while its guard says warm."""

    # Requests in the window (error ratio, latency burn). A ratio of a partly filled window is still that
    # window's ratio, so no age condition: a new version that fails every request pages without delay.
    serving: WindowGuard = WindowGuard(15, 0.0)
    # Present values of the feature (feature and prediction drift): a statistic calibrated on full windows.
    drift: WindowGuard = WindowGuard(100)
    # Rows of the feature (data quality).
    data_quality: WindowGuard = WindowGuard(100)
    # Labelled outcomes (realised quality, regression error, label delay).
    quality: WindowGuard = WindowGuard(100)
    # Predictions with an expected confusion matrix (confidence-based estimates).
    estimated: WindowGuard = WindowGuard(100)
    # Predictions stored for scoring (ground-truth coverage: labels lag predictions, so a young window
    # holds predictions whose labels cannot have arrived yet).
    coverage: WindowGuard = WindowGuard(100)
    # Lines a log shipper handled (sent or given up on): a dropped line is a fact, not an estimate.
    logs: WindowGuard = WindowGuard(1, 0.0)
    # Version comparisons: requests of the candidate and of its baseline in the window (a canary at 1 % of
    # traffic is judged once it served this many); labelled outcomes of each (realised quality); predictions
    # with probabilities of each (estimated quality). No age condition: both read the same, partly filled window.
    versions_traffic: WindowGuard = WindowGuard(200, 0.0)
    versions_labels: WindowGuard = WindowGuard(100, 0.0)
    versions_estimated: WindowGuard = WindowGuard(100, 0.0)
    # Generations in the window (TTFT/TPOT burn, truncation ratio): a ratio, no age condition (as serving).
    genai: WindowGuard = WindowGuard(15, 0.0)
    # Feedback joined with generations (the feedback-positive ratio): user feedback is sparse and late.
    feedback: WindowGuard = WindowGuard(50)
    # A tenant's cost rate: tokens priced in the window, and the window a whole window old (a young window
    # dilutes the rate, so the budget alert judges full windows only).
    genai_cost: WindowGuard = WindowGuard(1)
    # Requests a model server finished in the window (vLLM/SGLang e2e latency count): server TTFT/ITL burn,
    # failed requests, preemptions, throughput collapse. A ratio, no age condition (as serving).
    model_server: WindowGuard = WindowGuard(15, 0.0)
    # A model server's gauges (waiting requests, KV cache) over the alert window: a server that hangs finishes no
    # request, so these guards count samples of the gauge, and the gauge must be as old as the window.
    model_server_state: WindowGuard = WindowGuard(1, 1.0, 0.9)
    # Throughput collapse compares the output token rate of the alert window with the long window's: a rate of a
    # young or gappy window is low (rate() extrapolates a partly sampled window by half an interval only), so
    # both windows must be a whole window old and continuous (90 % of their scrapes), and hold finished requests.
    model_server_throughput: WindowGuard = WindowGuard(15, 1.0, 0.9)
    # Shadow answers compared in the window (shadow agreement), per served and shadow version pair: the minimum
    # traffic, and the comparisons as old as the window (a shadow just switched on is not judged on a few).
    shadow: WindowGuard = WindowGuard(100)
    # Predictions with attributions in the window (the attribution rank agreement), and the window's age.
    attributions: WindowGuard = WindowGuard(100)


# Prometheus's retention in the stacks (compose, native): the largest default offset (2w) plus a week, so a
# third weekly offset ("3w") fits without changing it.
RETENTION = "22d"
DIRECTIONS = ("up", "down", "both")


def _distinct(offsets: tuple[str, ...]) -> None:
    """Refuse an offset given twice (``or`` would keep one copy: the median of fewer offsets than it says)."""
    seconds = [duration_seconds(o) for o in offsets]
    if len(set(seconds)) < len(seconds):
        raise ValueError(f"offsets: each at most once, got {', '.join(offsets)}")


@dataclass(frozen=True)
class AnomalySignal:
    """One signal's adaptive alert (``rules.anomaly``): judged against its own seasonal baseline.

    ``offsets``/``smoothing`` empty: the section's (:class:`AnomalyRules`). The spread a z-score divides by is
    never below ``spread_floor`` (absolute) nor ``spread_floor_ratio`` x the baseline, so a flat series does not
    fire on its first wobble; below ``min_traffic`` (the signal's traffic measure) it is not judged.

    ``count_window`` set (a ratio of counted events, the error ratio): the signal is judged as a count, the events
    of the last ``count_window`` against the baseline ratio x the requests of that window (a Freeman-Tukey
    deviate, about normal for a Poisson count however small); ``min_traffic`` is then the expected events in the
    window, and ``baseline_floor`` the least baseline ratio judged against (a version that never failed).
    """

    enabled: bool = True
    z_threshold: float = 3.0
    spread_floor: float = 0.0
    spread_floor_ratio: float = 0.0
    min_traffic: float = 0.0
    # up: only a rise alerts; down: only a fall; both.
    direction: str = "up"
    for_duration: str = "5m"
    smoothing: str = ""
    offsets: tuple[str, ...] = ()
    count_window: str = ""
    baseline_floor: float = 0.0

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.z_threshold <= 0:
            raise ValueError(f"z_threshold must be positive, got {self.z_threshold:g}")
        for name in ("spread_floor", "spread_floor_ratio", "min_traffic", "baseline_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name):g}")
        optional = tuple(d for d in (self.smoothing, self.count_window) if d)
        for text in self.offsets + optional + (self.for_duration,):
            duration_seconds(text)
        _distinct(self.offsets)


@dataclass(frozen=True)
class AnomalyRules:
    """Seasonal baselines and anomaly bands (docs/adaptive-alerts.md): one section, a signal per field.

    The baseline is the median of the smoothed signal at the same time ``offsets`` ago (absent ones skipped);
    the spread the standard deviation of the signal's residual (value - baseline) over ``spread_window``.
    Prometheus must keep more history than the largest offset (the stack's retention, ``RETENTION``).
    """

    enabled: bool = True
    offsets: tuple[str, ...] = ("1d", "1w", "2w")
    smoothing: str = "10m"
    spread_window: str = "1d"
    # The anomaly groups' own evaluation interval (a 1-day window read every 15 s would cost 4x for nothing).
    evaluation_interval: str = "1m"
    # Requests per second expected (the baseline) below which traffic is not judged.
    traffic: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor_ratio=0.05, min_traffic=0.5,
                                           direction="both")
    # The error ratio, judged as a count: the errors of the last 10 minutes against the baseline ratio (its hourly
    # average at the offsets, never below 0.03 %) x the requests of those 10 minutes, at 3 or more expected
    # errors (benchmarks/README.md: at 10 requests/s a 3x rise from 0.1 % is found in about 13 minutes).
    errors: AnomalySignal = AnomalySignal(z_threshold=3.5, count_window="10m", smoothing="1h", baseline_floor=0.0003,
                                          min_traffic=3.0, for_duration="2m")
    # Requests per second (now) below which the latency is not judged.
    latency: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor_ratio=0.04, spread_floor=0.001,
                                           min_traffic=0.5)
    # Present feature values in the drift window below which PSI is not judged.
    drift: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor=0.01, min_traffic=100)
    # Labelled outcomes / predictions with probabilities in the quality window.
    quality: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor=0.02, min_traffic=100, direction="down",
                                           for_duration="15m")
    estimated_quality: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor=0.02, min_traffic=100,
                                                     direction="down", for_duration="15m")
    # Prediction-log lines per second expected below which the log volume is not judged.
    log_volume: AnomalySignal = AnomalySignal(z_threshold=4.0, spread_floor_ratio=0.1, min_traffic=0.1,
                                              direction="both", for_duration="15m")

    def __post_init__(self) -> None:
        if not self.offsets:
            raise ValueError("offsets: at least one")
        _distinct(self.offsets)
        for text in (*self.offsets, self.smoothing, self.spread_window, self.evaluation_interval):
            duration_seconds(text)
        self._check_fits()

    def _check_fits(self) -> None:
        """Every offset plus its smoothing within the stack's retention; smoothing shorter than the smallest
        offset; a spread window longer than the smoothing and not beyond the retention."""
        keep = duration_seconds(RETENTION)
        signals = [(f.name, getattr(self, f.name)) for f in fields(self)
                   if isinstance(getattr(self, f.name), AnomalySignal)]
        for name, signal in [("", None), *signals]:
            where = f"{name}." if name else ""
            offsets = self.offsets_of(signal) if signal else self.offsets
            smoothing = self.smoothing_of(signal) if signal else self.smoothing
            if signal is not None and not signal.enabled:
                continue
            largest = max(offsets, key=duration_seconds)
            if duration_seconds(largest) + duration_seconds(smoothing) > keep:
                raise ValueError(f"{where}offsets: {largest} + smoothing {smoothing} exceeds the stack's "
                                 f"Prometheus retention {RETENTION} (compose: PROMETHEUS_RETENTION must be "
                                 f"at least that too)")
            smallest = min(offsets, key=duration_seconds)
            if duration_seconds(smoothing) >= duration_seconds(smallest):
                raise ValueError(f"{where}smoothing: {smoothing} must be shorter than the smallest offset "
                                 f"{smallest}")
            if signal is not None and signal.count_window and (
                    duration_seconds(signal.count_window) >= duration_seconds(smallest)):
                raise ValueError(f"{where}count_window: {signal.count_window} must be shorter than the smallest "
                                 f"offset {smallest}")
            spread = duration_seconds(self.spread_window)
            if not duration_seconds(smoothing) < spread <= keep:
                raise ValueError(f"spread_window: {self.spread_window} must be longer than the smoothing "
                                 f"{smoothing} and within the retention {RETENTION}")

    def offsets_of(self, signal: AnomalySignal) -> tuple[str, ...]:
        return signal.offsets or self.offsets

    def smoothing_of(self, signal: AnomalySignal) -> str:
        return signal.smoothing or self.smoothing

    @property
    def history_needed(self) -> str:
        """The largest offset of any enabled signal: the history Prometheus must keep (plus smoothing)."""
        signals = [getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), AnomalySignal)]
        return max((o for s in signals if s.enabled for o in self.offsets_of(s)), key=duration_seconds,
                   default=self.offsets[0])



@dataclass(frozen=True)
class Profile:
    """Time scales of one deployment profile."""

    name: str
    scrape_interval: str
    evaluation_interval: str
    # Windows of the traffic recording rules; the first is the one alerts read.
    traffic_windows: tuple[str, ...]
    # `for` of alerts on a symptom that must persist before it pages.
    for_symptom: str
    # `for` of target-down alerts: at least twice the scrape interval, and longer than Prometheus takes to
    # drop a target removed from service discovery (up to ~6 s: discovery updates are sent every 5 s), so a
    # service that deregisters as it stops (a targets folder file removed) never raises a false alert.
    for_target_down: str
    # keep_firing_for: how long an alert stays firing after its expression stops
    # returning (a missed scrape must not resolve and re-fire it).
    keep_firing_for: str
    # How long a serving model version may see no request before ModelNoPredictions fires.
    for_no_traffic: str
    # Latency SLO burn-rate alerts (Google SRE workbook: 14.4x over 1h/5m pages, 6x over 6h/30m tickets).
    burn_windows: tuple[BurnWindow, ...]
    # Prometheus's --rules.alert.resend-delay: how often firing alerts are re-sent to Alertmanager.
    alert_resend_delay: str = "1m"
    # Windows of the drift and data-quality recording rules; the first is the one alerts read.
    drift_windows: tuple[str, ...] = ("1h", "1d")
    # `for` of drift and data-quality alerts.
    for_drift: str = "15m"

    @property
    def burn_rate_windows(self) -> tuple[str, ...]:
        """Every window a burn-rate alert reads, in first-use order."""
        return tuple(dict.fromkeys(w for b in self.burn_windows for w in (b.long, b.short)))
    # Windows of the model-quality recording rules (late ground truth: hours to days); the first is the one
    # quality alerts read, the last the one coverage and label-delay alerts read.
    quality_windows: tuple[str, ...] = ("1h", "1d")
    # 90th percentile label delay (seconds) above which ground truth counts as late.
    label_delay_max_s: float = 86400.0
    # When each domain's windows hold enough data to alert on (minimum counts, age).
    warmup: WarmUp = WarmUp()
    # How often a pipeline that states no expected_interval_s is expected to succeed.
    pipeline_expected_interval: str = "1d"
    # Age of a pipeline step's newest event time above which its data counts as late.
    pipeline_max_data_age: str = "1d"
    # `for` of the version-comparison alerts (candidate worse than its baseline, outputs diverge).
    for_versions: str = "10m"
    # Adaptive alerts: seasonal baselines, spreads and bands per signal (docs/adaptive-alerts.md).
    anomaly: AnomalyRules = AnomalyRules()

    @property
    def alert_window(self) -> str:
        return self.traffic_windows[0]

    @property
    def scraped_within_seconds(self) -> float:
        """A target Prometheus scrapes now has an ``up`` sample younger than this (3 scrape intervals: a scrape
        that times out lands an interval plus its timeout after it started); an older one is a target it no
        longer scrapes (removed while Prometheus was down), which no target-down alert judges."""
        return 3 * duration_seconds(self.scrape_interval)


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds, shared by every profile."""

    # Share of failed prediction requests over the alert window.
    error_ratio: float = 0.05
    # Latency SLO: `latency_slo_objective` of requests faster than `latency_slo_seconds`
    # (must be a bucket boundary of mlscope_prediction_latency_seconds).
    latency_slo_seconds: float = 0.25
    latency_slo_objective: float = 0.99
    # Drift alerts fire when the statistic exceeds the feature's threshold calibrated on the reference,
    # but never below this floor (a statistically certain but tiny PSI is not worth a page).
    drift_psi_floor: float = 0.1
    # Share of a feature's rows with a data-quality issue (beyond the reference's own missing rate).
    data_quality_ratio: float = 0.05
    # Model quality: realised or estimated accuracy / macro F1 this far (absolute) below the version's baseline.
    quality_max_drop: float = 0.05
    # Estimates need a calibrated reference: held-out top-label calibration error of the calibrated
    # probabilities at most this (a perfectly calibrated model of 85 % accuracy measures 0.067 or less on 200
    # labelled rows 19 times in 20). Above it estimates are refused and the estimated-quality alert is silent.
    calibration_max_error: float = 0.08
    # Regression: MAE this much (relative) above the version's baseline MAE.
    regression_max_error_increase: float = 0.25
    # Ground-truth coverage (labelled / predicted) below which labels are missing.
    quality_min_coverage: float = 0.5
    # Log lines per second the Loki shipper may give up on (queue/spool full, rejected) before alerting.
    log_drop_rate: float = 0.0
    # Share of a pipeline step's records read in its last run that it rejected (every reason).
    pipeline_rejected_ratio: float = 0.05
    # A pipeline is stale when its last success is older than this many times its expected interval.
    pipeline_stale_factor: float = 1.5
    # Generative models (mlscope.genai). Time to first token SLO: `genai_ttft_slo_objective` of first tokens
    # within `genai_ttft_slo_seconds` (a bucket bound of mlscope_genai_time_to_first_token_seconds).
    genai_ttft_slo_seconds: float = 1.0
    genai_ttft_slo_objective: float = 0.99
    # Time per output token SLO (a bucket bound of mlscope_genai_time_per_output_token_seconds).
    genai_tpot_slo_seconds: float = 0.1
    genai_tpot_slo_objective: float = 0.99
    # Share of generations cut at the token limit (finish_reason="length") above which answers are truncated.
    genai_truncation_ratio: float = 0.1
    # Feedback-positive ratio this far (absolute) below the version's baseline (quality baseline
    # metric "feedback_positive").
    genai_feedback_max_drop: float = 0.1
    # Cost budget per tenant, in the price table's currency per hour.
    genai_tenant_cost_per_hour: float = 50.0


@dataclass(frozen=True)
class Selectors:
    """Label selectors that scope the rules to mlscope's series."""

    # Every scrape job that publishes a model monitor's metrics.
    model_service: str = ""
    # Jobs whose `up` series target-down alerts watch ("" = every job).
    targets: str = ""
    # Jobs that publish the quality counters (the quality exporter, or services that own their store).
    quality: str = ""
    # Series pushed by batch jobs through the Pushgateway (its scrape job keeps their job label): a batch
    # scoring job's model version serves no live traffic, so ModelNoPredictions leaves it out.
    pushed: str = f'job="{PUSH_JOB}"'


@dataclass(frozen=True)
class Links:
    """Where notifications point to (``mlscope rules build|check`` and ``mlscope up`` take
    ``--runbook-base-url`` and ``--grafana-url``)."""

    # The alert receiver's runbooks (`mlscope up` and the compose stack serve them there); a team's wiki instead.
    runbook_base_url: str = "http://127.0.0.1:9095/runbooks"
    grafana_base_url: str = "http://127.0.0.1:3000"
    # The `app` stream label the log shipper gives the model services' lines in Loki.
    log_app: str = LOG_APP


@dataclass(frozen=True)
class ResourceRules:
    """Thresholds and selector of the resource alerts (host, GPU)."""

    # Series of the resource exporter ("" = wherever they come from).
    selector: str = ""
    # Share of a GPU's memory in use above which it is nearly full.
    gpu_memory_used_ratio: float = 0.95
    # GPU die temperature (celsius) above which it runs hot.
    gpu_temperature_celsius: float = 85.0
    # Throttle reasons that mean trouble (power capping and idling under normal load do not).
    gpu_throttle_reasons: tuple[str, ...] = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown",
                                             "sw_thermal_slowdown")
    # Share of host memory still available below which the host is under memory pressure.
    host_memory_available_ratio: float = 0.10


class ModelServerError(ValueError):
    """A model-server setting the rule configuration refuses (a GPU assignment without a model...)."""


@dataclass(frozen=True)
class GPUAssignment:
    """GPU ``gpu`` of the resource exporter at ``instance`` serves ``model_version`` of ``model`` (share 0-1)."""

    model: str
    model_version: str
    instance: str
    gpu: str
    share: float = 1.0

    def __post_init__(self) -> None:
        for name in ("model", "model_version", "instance", "gpu"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or '"' in value or "\\" in value:
                raise ModelServerError(f"a GPU assignment needs a non-empty quoted string {name} (no quotes or "
                                       f"backslashes), got {value!r}")
        if not 0 < self.share <= 1:
            raise ModelServerError(f"GPU assignment {self.model} {self.model_version} on {self.gpu}: share must "
                                   f"be in (0, 1], got {self.share!r}")


def _assignment(item: object) -> GPUAssignment:
    if isinstance(item, GPUAssignment):
        return item
    if isinstance(item, dict):
        try:
            return GPUAssignment(**item)
        except TypeError:
            pass
    raise ModelServerError("a GPU assignment has the keys model, model_version, instance, gpu and optionally "
                           f"share, got {item!r}")


@dataclass(frozen=True)
class ModelServerRules:
    """Thresholds of the vLLM/SGLang alerts, and GPUs assigned by hand (docs/model-servers.md).

    The servers' TTFT and inter-token latency SLOs default to the application's (``thresholds.genai_ttft_slo_*``,
    ``thresholds.genai_tpot_slo_*``: both sides of one generation are held to one objective); where the
    application's threshold is not a bucket of every server histogram, the nearest common bucket at or above
    it (:meth:`ttft_slo` / :meth:`tpot_slo`). A threshold set here must be such a bucket.
    """

    # Share of finished requests that failed (vLLM finished_reason="abort").
    failed_ratio: float = 0.05
    # Mean queue time (seconds) above which requests wait too long before running.
    queue_time_seconds: float = 5.0
    # Waiting requests (averaged over the alert window) above which the queue counts as long, if it grew.
    waiting_requests: float = 10.0
    # KV-cache usage (lowest over the alert window) above which the cache is nearly full.
    kv_cache_usage_ratio: float = 0.95
    # Preemptions per second (alert window) above which the engine is evicting running requests.
    preemptions_per_second: float = 0.1
    # Output token rate over the alert window below this share of the rate over the long traffic window,
    # while requests run or wait: throughput collapsed.
    throughput_drop_ratio: float = 0.5
    # The servers' SLO thresholds in seconds (0: derived from the application's, see the class docstring); the
    # objectives are the application's. A value must be a bucket of every vLLM and SGLang version's histogram.
    ttft_slo_seconds: float = 0.0
    tpot_slo_seconds: float = 0.0
    # GPUs assigned by hand, for servers whose processes the resource exporter does not watch.
    gpus: tuple[GPUAssignment, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpus", tuple(_assignment(g) for g in self.gpus))
        for name in ("failed_ratio", "kv_cache_usage_ratio", "throughput_drop_ratio"):
            if not 0 < getattr(self, name) < 1:
                raise ModelServerError(f"model_servers.{name} must be between 0 and 1, got {getattr(self, name)!r}")
        for name, families in (("ttft_slo_seconds", TTFT_FAMILIES), ("tpot_slo_seconds", ITL_FAMILIES)):
            value, allowed = getattr(self, name), common_buckets(families)
            if value and value not in allowed:
                raise ModelServerError(f"model_servers.{name} {value:g} is not a bucket of every model server's "
                                       f"histogram; choose one of {', '.join(f'{b:g}' for b in allowed)}")
        shares: dict[tuple[str, str], float] = {}
        for g in self.gpus:
            shares[(g.instance, g.gpu)] = shares.get((g.instance, g.gpu), 0.0) + g.share
            if shares[(g.instance, g.gpu)] > 1 + 1e-9:
                raise ModelServerError(f"model_servers.gpus: GPU {g.gpu} of {g.instance} is assigned "
                                       f"{shares[(g.instance, g.gpu)]:g} of itself (the shares of one GPU sum to 1 "
                                       "at most)")

    def ttft_slo(self, application: float) -> float:
        """The servers' time to first token SLO threshold, given the application's."""
        return self.ttft_slo_seconds or _bucket_at_or_above(application, TTFT_FAMILIES)

    def tpot_slo(self, application: float) -> float:
        """The servers' inter-token latency SLO threshold, given the application's time per output token SLO."""
        return self.tpot_slo_seconds or _bucket_at_or_above(application, ITL_FAMILIES)


def _bucket_at_or_above(value: float, families: tuple[ServerSeries, ...]) -> float:
    """``value`` when every one of ``families`` has it as a bucket, else their nearest common bucket above it
    (their largest when none is)."""
    allowed = common_buckets(families)
    return next((b for b in allowed if b >= value), allowed[-1])


class RoleError(ValueError):
    """A role declaration the rule configuration refuses (unknown role, a version with two roles...)."""


@dataclass(frozen=True)
class RoleDeclaration:
    """``model_version`` of ``model`` plays ``role`` (stable, canary or shadow); wins over the monitor's."""

    model: str
    model_version: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise RoleError(f"{self.model} {self.model_version}: role {self.role!r} is not one of {ROLES}")
        for name in ("model", "model_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise RoleError(f"a role declaration needs a non-empty {name}, got {value!r}")


def _declaration(item: object) -> RoleDeclaration:
    if isinstance(item, RoleDeclaration):
        return item
    if isinstance(item, dict) and set(item) == {"model", "model_version", "role"}:
        for key, value in item.items():
            if not isinstance(value, str):  # YAML reads 3.20 as the float 3.2: str() would lose the version
                raise RoleError(f"{key} {value!r} is not a string: quote it as written in the file (YAML reads "
                                f"an unquoted 3.20 as the number 3.2), e.g. {key}: \"3.20\"")
        return RoleDeclaration(**item)
    raise RoleError(f"a role declaration has the keys model, model_version and role, got {item!r}")


def _declarations(items: tuple[object, ...]) -> tuple[RoleDeclaration, ...]:
    declarations = []
    for i, item in enumerate(items):
        try:
            declarations.append(_declaration(item))
        except RoleError as exc:
            raise RoleError(f"roles[{i}]: {exc}") from None
    return tuple(declarations)


# The range of each VersionRules threshold (a negative margin would fire on a candidate better than its baseline).
_RANGES = (("baseline_switch_margin", 0.0, 1.0), ("error_ratio_margin", 0.0, 1.0), ("latency_p95_ratio", 1.0, math.inf),
           ("latency_p95_min_difference_s", 0.0, math.inf), ("quality_margin", 0.0, 1.0),
           ("output_js_distance", 0.0, 1.0), ("output_js_hysteresis", 0.0, 1.0),
           ("shadow_disagreement_max", 0.0, 1.0), ("attribution_rank_min", -1.0, 1.0))


@dataclass(frozen=True)
class VersionRules:
    """Roles and comparison thresholds of a model's versions (docs/versions.md)."""

    # Roles declared here (they win over the monitors' role=); a model has at most one stable version here.
    roles: tuple[RoleDeclaration, ...] = ()
    # Hysteresis of the traffic-derived baseline: another version takes over only once its traffic share
    # exceeds the incumbent's by this much (absolute), so a 50/50 split never flips it back and forth.
    baseline_switch_margin: float = 0.1
    # Candidate worse than its baseline: error ratio higher by more than this (absolute)...
    error_ratio_margin: float = 0.02
    # ...p95 latency more than this many times the baseline's and higher by at least this many seconds (a 1 ms
    # p95 that becomes 1.6 ms is noise, not a regression)...
    latency_p95_ratio: float = 1.5
    latency_p95_min_difference_s: float = 0.05
    # ...realised or estimated accuracy / macro F1 lower by more than this (absolute).
    quality_margin: float = 0.05
    # Outputs diverge: Jensen-Shannon distance (base 2) between the versions' predicted-class shares above this.
    output_js_distance: float = 0.1
    # ...and, once firing, it resolves only below output_js_distance minus this (hysteresis: two fixed models
    # whose distance hovers at the limit do not flap).
    output_js_hysteresis: float = 0.03
    # A shadow disagrees too often: share of its answers that differ from the served version's above this.
    shadow_disagreement_max: float = 0.1
    # Attributions changed: Spearman correlation between the window's and the reference's ranking of the
    # reference's top features below this (1 is the same order).
    attribution_rank_min: float = 0.5

    def __post_init__(self) -> None:
        for name, low, high in _RANGES:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
        # Also from a stack folder's rules-config.yml (mlscope.rules.overrides): mappings with the three keys.
        object.__setattr__(self, "roles", _declarations(self.roles))
        seen: dict[tuple[str, str], str] = {}
        stable: dict[str, str] = {}
        for d in self.roles:
            key = (d.model, d.model_version)
            if key in seen and seen[key] != d.role:
                raise RoleError(f"roles: {d.model} {d.model_version} is declared with two roles: {seen[key]} and "
                                f"{d.role}")
            seen[key] = d.role
            if d.role == "stable" and stable.setdefault(d.model, d.model_version) != d.model_version:
                raise RoleError(f"roles: {d.model} has two stable versions declared: {stable[d.model]} and "
                                f"{d.model_version} (declare the new one stable and the old one canary, or drop it)")


@dataclass(frozen=True)
class RuleConfig:
    profile: Profile
    thresholds: Thresholds = field(default_factory=Thresholds)
    selectors: Selectors = field(default_factory=Selectors)
    links: Links = field(default_factory=Links)
    resources: ResourceRules = field(default_factory=ResourceRules)
    versions: VersionRules = field(default_factory=VersionRules)
    model_servers: ModelServerRules = field(default_factory=ModelServerRules)


def _scaled_anomaly(rules: AnomalyRules, for_duration: str, signal_scales: dict[str, dict[str, object]],
                    **scales: object) -> AnomalyRules:
    """``rules`` on other time scales (the fast profile): every signal's ``for`` set to ``for_duration``, and the
    signals' own fields to ``signal_scales`` (signal -> field -> value)."""
    signals = {f.name: replace(getattr(rules, f.name), for_duration=for_duration,
                               **signal_scales.get(f.name, {}))
               for f in fields(rules) if isinstance(getattr(rules, f.name), AnomalySignal)}
    return replace(rules, **signals, **scales)  # type: ignore[arg-type]


DEFAULT = Profile(
    name="default", scrape_interval="15s", evaluation_interval="15s",
    traffic_windows=("5m", "1h"), for_symptom="10m", for_target_down="2m", keep_firing_for="5m",
    for_no_traffic="15m",
    burn_windows=(BurnWindow("1h", "5m", 14.4, "critical"), BurnWindow("6h", "30m", 6.0, "warning")))
FAST = Profile(
    name="fast", scrape_interval="1s", evaluation_interval="1s",
    traffic_windows=("1m", "5m"), for_symptom="5s", for_target_down="10s", keep_firing_for="5s",
    for_no_traffic="10s",
    burn_windows=(BurnWindow("1m", "15s", 14.4, "critical"), BurnWindow("5m", "1m", 6.0, "warning")),
    alert_resend_delay="2s",
    drift_windows=("1m", "5m"), for_drift="5s",
    quality_windows=("1m", "5m"), label_delay_max_s=30.0,
    warmup=WarmUp(serving=WindowGuard(3, 0.0), versions_traffic=WindowGuard(50, 0.0),
                  versions_labels=WindowGuard(50, 0.0), versions_estimated=WindowGuard(50, 0.0),
                  genai=WindowGuard(3, 0.0), feedback=WindowGuard(10), model_server=WindowGuard(3, 0.0),
                  model_server_throughput=WindowGuard(3, 1.0, 0.9),
                  shadow=WindowGuard(50), attributions=WindowGuard(50)),
    pipeline_expected_interval="1m", pipeline_max_data_age="2m", for_versions="5s",
    # Minute-scale offsets: the mechanics (warm-up, median, floors, direction), not a real seasonality. The
    # latency floor is 5 ms: over a 1-minute smoothing an in-process p95 on a busy 2-core machine moved between 5
    # and 13 ms in normal traffic, and at 1 ms a 30-minute soak fired ModelLatencyAnomalous on every model at once.
    anomaly=_scaled_anomaly(AnomalyRules(), offsets=("5m", "10m", "15m"), smoothing="1m", spread_window="10m",
                            evaluation_interval="10s", for_duration="30s",
                            signal_scales={"errors": {"smoothing": "2m", "count_window": "1m"},
                                           "latency": {"spread_floor": 0.005}}))

PROFILES: dict[str, Profile] = {p.name: p for p in (DEFAULT, FAST)}


def config_for(profile: str) -> RuleConfig:
    """The rule configuration of a named profile (``default`` or ``fast``)."""
    try:
        return RuleConfig(profile=PROFILES[profile])
    except KeyError:
        raise ValueError(f"unknown rule profile {profile!r}; choose one of {sorted(PROFILES)}") from None
