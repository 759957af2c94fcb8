"""The demo's standard incidents (registered on import): drift, errors, latency, quality on the schedule, and
on demand (``mlscope demo inject NAME``) shadow-disagree and traffic-drop (the regressor, which no scheduled
incident retrains, so its seasonal history warms up: an adaptive alert to see).

One cycle, after a calm first minute: drift 90 s, errors 60 s, latency 60 s, quality 120 s, each followed
by a minute of calm (about 10.5 minutes in all).
"""
from __future__ import annotations

from .incidents import ScheduleEntry, register, setting

for _incident in (
    setting("drift", "shift every feature by 1.5 training standard deviations",
            "service.faults.drift_shift_std", 1.5, 0.0, ScheduleEntry(10, 90)),
    setting("errors", "30 % of requests fail", "service.faults.error_rate", 0.3, "base_error_rate",
            ScheduleEntry(20, 60)),
    setting("latency", "the feature store answers 300 ms late: every request's feature_fetch span is 300 ms "
            "longer", "service.faults.extra_latency_s", 0.3, 0.0,
            ScheduleEntry(30, 60)),
    setting("quality", "40 % of the late labels disagree with the model (concept drift)",
            "truth.flip_rate", 0.4, 0.0, ScheduleEntry(40, 120)),
    setting("shadow-disagree", "the shadow (1.2.0-shadow) answers the other class on 50 % of requests",
            "service.faults.shadow_flip_rate", 0.5, 0.0),
    setting("traffic-drop", "the regressor's clients send a fifth of their requests (ModelTrafficAnomalous once "
            "its history is as old as the largest offset: 15 minutes in the fast profile)",
            "regressor_traffic.scale", 0.2, 1.0),
):
    register(_incident)
