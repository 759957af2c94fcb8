"""Series of the adaptive alerts (``mlscope.rules.anomaly``): seasonal baselines, spreads, z-scores and bands.

Each is recorded at two levels, with a ``signal`` label (traffic, errors, latency, log_volume, quality,
estimated_quality per model version; drift per feature), so one query draws every signal's band.
"""
from __future__ import annotations

from .spec import RecordedSpec

LEVELS = {"model_version": ("model", "model_version", "signal"),
          "feature": ("model", "model_version", "feature", "signal")}

# operation -> help
_OPERATIONS = (
    ("value", "The signal as its alert reads it (e.g. the 5m request rate), labelled by signal."),
    ("smoothed", "The signal averaged over the smoothing window: one noisy scrape cannot fire."),
    ("baseline", "Seasonal baseline: median of the smoothed signal at the same time each offset ago (1d, 1w, 2w "
                 "by default); offsets without history are skipped, not read as 0."),
    ("residual", "Absolute difference of the smoothed signal and its baseline."),
    ("spread", "1.4826 x the median residual over the spread window (a robust standard deviation), never below "
               "the signal's floors nor the offsets' disagreement; a signal judged as a count (errors): the "
               "ratio's Poisson deviation at the expected count."),
    ("zscore", "(smoothed - baseline) / spread: how unusual the signal is now; a signal judged as a count "
               "(errors): the Freeman-Tukey deviate of the count over its window from the expected one."),
    ("upper", "Upper band: baseline + z_threshold x spread (a signal judged as a count: the ratio whose count "
              "deviates by exactly z_threshold)."),
    ("lower", "Lower band: baseline - z_threshold x spread, at least 0 (judged as a count: as the upper band)."),
    ("history_ready", "1 once the smoothed signal has history as old as the largest offset (the anomaly "
                      "warm-up guard), else 0: no anomaly alert before."),
)

RECORDED_BY_LEVEL: dict[str, dict[str, RecordedSpec]] = {
    level: {op: RecordedSpec(f"{level}:mlscope_anomaly:{op}", help_, labels) for op, help_ in _OPERATIONS}
    for level, labels in LEVELS.items()}

# The operations that exist only once the smoothed signal has history as old as the smallest offset (a young
# stack, e.g. a test's or the first minutes of a demo, has none: its band panels draw the value alone).
NEEDS_HISTORY = ("baseline", "residual", "spread", "zscore", "upper", "lower")
NEEDS_HISTORY_NAMES = tuple(RECORDED_BY_LEVEL[level][op].name for level in LEVELS for op in NEEDS_HISTORY)

METRICS = ()
RECORDED = tuple(spec for specs in RECORDED_BY_LEVEL.values() for spec in specs.values())
