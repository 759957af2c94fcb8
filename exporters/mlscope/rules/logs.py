"""Alert rules for the log shipper's own health."""
from __future__ import annotations

from typing import Any

from ..catalog import logs as cat
from .builders import alert, group, selector
from .config import RuleConfig


def alert_rules(cfg: RuleConfig) -> list[dict[str, Any]]:
    w, t = cfg.profile.alert_window, cfg.thresholds
    dropped = (f"sum by (job, instance, handler, reason) "
               f"(rate({cat.LOG_LINES_DROPPED.name}{selector(cfg.selectors.model_service)}[{w}]))")
    return [
        alert(cfg, "MLScopeLogShipperDroppingLines", f"{dropped} > {t.log_drop_rate}",
              severity="warning", for_=cfg.profile.for_symptom, dashboard="mlscope-stack-health",
              summary="{{ $labels.instance }}: log shipper {{ $labels.handler }} drops lines ({{ $labels.reason }})",
              description="{{ $value | humanize }} log lines per second given up on by {{ $labels.instance }} "
                          "(reason {{ $labels.reason }}) over the last " + w + f" (threshold {t.log_drop_rate:g} per "
                          "second): they will never reach Loki."),
    ]


def groups(cfg: RuleConfig) -> list[dict[str, Any]]:
    return [group("mlscope-logs-alerts", cfg, alert_rules(cfg))]
