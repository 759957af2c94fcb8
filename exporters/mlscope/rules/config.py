"""THE rule configuration: every selector, threshold, window and `for` duration.

Recording and alert rules (``alerting/rules/``), the dashboards' thresholds and
the promtool tests all read these values, so a threshold changes here and
nowhere else. Two profiles share the thresholds and differ in time scales:
``default`` for production and ``fast`` (1 s scrape and evaluation,
minute-scale windows) for tests and the demo.
"""
from __future__ import annotations

from dataclasses import dataclass, field


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
    # `for` of target-down alerts: at least twice the scrape interval.
    for_target_down: str
    # keep_firing_for: how long an alert stays firing after its expression stops
    # returning (a missed scrape must not resolve and re-fire it).
    keep_firing_for: str

    @property
    def alert_window(self) -> str:
        return self.traffic_windows[0]


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds, shared by every profile."""

    # Share of failed prediction requests over the alert window.
    error_ratio: float = 0.05
    # Requests per second below which the error ratio is too noisy to alert on.
    min_request_rate: float = 0.05
    # Log lines per second the Loki shipper may give up on (queue/spool full, rejected) before alerting.
    log_drop_rate: float = 0.0


@dataclass(frozen=True)
class Selectors:
    """Label selectors that scope the rules to mlscope's series."""

    # Every scrape job that publishes a model monitor's metrics.
    model_service: str = ""
    # Jobs whose `up` series target-down alerts watch ("" = every job).
    targets: str = ""


@dataclass(frozen=True)
class Links:
    """Where notifications point to."""

    runbook_base_url: str = "https://github.com/mlscope/mlscope/blob/main/alerting/runbooks"
    grafana_base_url: str = "http://127.0.0.1:3000"


@dataclass(frozen=True)
class RuleConfig:
    profile: Profile
    thresholds: Thresholds = field(default_factory=Thresholds)
    selectors: Selectors = field(default_factory=Selectors)
    links: Links = field(default_factory=Links)


DEFAULT = Profile(
    name="default", scrape_interval="15s", evaluation_interval="15s",
    traffic_windows=("5m", "1h"), for_symptom="10m", for_target_down="2m", keep_firing_for="5m")
FAST = Profile(
    name="fast", scrape_interval="1s", evaluation_interval="1s",
    traffic_windows=("1m", "5m"), for_symptom="5s", for_target_down="3s", keep_firing_for="5s")

PROFILES: dict[str, Profile] = {p.name: p for p in (DEFAULT, FAST)}


def config_for(profile: str) -> RuleConfig:
    """The rule configuration of a named profile (``default`` or ``fast``)."""
    try:
        return RuleConfig(profile=PROFILES[profile])
    except KeyError:
        raise ValueError(f"unknown rule profile {profile!r}; choose one of {sorted(PROFILES)}") from None
