"""Alert rules for the log shipper's own health."""
from __future__ import annotations

from typing import Any

from ..catalog import logs as cat
from .builders import alert, group, selector, warm_up, when_warm
from .config import RuleConfig

BY_HANDLER = "job, instance, handler"


def warm_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    """The shipper's warm-up guard of the alert window: lines it handled (sent or given up on)."""
    w, sel = cfg.profile.alert_window, selector(cfg.selectors.model_service)
    # `or` keeps both sides here: dropped lines carry a `reason` label that sent lines have not.
    handled = " or ".join(f"increase({spec.name}{sel}[{w}])" for spec in (cat.LOG_LINES_SENT, cat.LOG_LINES_DROPPED))
    lines = f"sum by ({BY_HANDLER}) ({handled})"
    return [warm_up(cat.HANDLER_WINDOW_WARM, "logs", w, cfg.profile.warmup.logs, count=lines, by=BY_HANDLER,
                    age=f"{cat.LOG_LINES_SENT.name}{sel}")]


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    w, t = cfg.profile.alert_window, cfg.thresholds
    dropped = (f"sum by (job, instance, handler, reason) "
               f"(rate({cat.LOG_LINES_DROPPED.name}{selector(cfg.selectors.model_service)}[{w}]))")
    return [
        alert(cfg, "MLScopeLogShipperDroppingLines",
              when_warm(f"{dropped} > {t.log_drop_rate}", cat.HANDLER_WINDOW_WARM, "logs", w, BY_HANDLER),
              severity="warning", for_=cfg.profile.for_symptom, dashboard="mlscope-stack-health",
              summary="{{ $labels.instance }}: log shipper {{ $labels.handler }} drops lines ({{ $labels.reason }})",
              description="{{ $value | humanize }} log lines per second given up on by {{ $labels.instance }} "
                          "(reason {{ $labels.reason }}) over the last " + w + ": they will never reach Loki."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-logs-recording", cfg, warm_rules(cfg)), group("mlscope-logs-alerts", cfg, alert_rules(cfg))]
