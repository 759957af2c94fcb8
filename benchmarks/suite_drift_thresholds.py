"""Suite `drift_thresholds`: false alarms without drift, against the rate the profile promises.

Windows are drawn from the distribution the reference came from (a fresh reference per draw of
references, so an unlucky reference counts as often as it happens). A threshold row passes when the
share of windows above the feature's threshold is at most the promised rate plus its 95 % binomial
margin; a snapshot row when the share of exact-snapshot p-values below 0.05 is at most 6.5 %.
"""
from __future__ import annotations

import sys
from pathlib import Path

from common import Row

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mlscope.drift.build import DEFAULTS
from support.drift_null import margin, snapshot_false_alarms, threshold_false_alarms

WINDOWS = (100, 1_000, 10_000)      # the alerts' minimum count and larger windows
CASES = (("normal", 124), ("normal", 2_000), ("normal", 100_000), ("poisson(3)", 455), ("poisson(3)", 100_000),
         ("lognormal", 20_000))


def suite_drift_thresholds(quick: bool) -> list[Row]:
    rate = float(DEFAULTS["false_alarm_rate"])
    rows: list[Row] = []
    references, per_reference = (40, 50) if quick else (100, 25)
    for distribution, reference_rows in CASES:
        for result in threshold_false_alarms(distribution, reference_rows, WINDOWS, references=references,
                                             windows_per_reference=per_reference, seed=1):
            bound = rate + margin(rate, result.windows)
            for statistic in ("psi", "js_distance", "ks"):
                rows.append(Row(
                    "drift_thresholds",
                    f"{statistic} above threshold, {distribution}, reference {reference_rows:,} rows, window "
                    f"{result.window_values:,} values ({result.windows:,} windows)",
                    100 * result.share(statistic), "%", "promised rate + 95 % margin", 100 * bound,
                    f"<= {100 * bound:.2f} %"))
    seeds, per_seed = (range(10), 100) if quick else (range(20), 250)
    for distribution in ("normal", "poisson(3)"):
        shares = snapshot_false_alarms(distribution, 20_000, 2_000, seeds=seeds, windows_per_seed=per_seed)
        pooled = sum(shares.values()) / len(shares)
        rows.append(Row("drift_thresholds",
                        f"snapshot p < 0.05 without drift, {distribution}, reference 20,000, window 2,000 "
                        f"({len(shares) * per_seed:,} windows over {len(shares)} references; worst reference "
                        f"{100 * max(shares.values()):.1f} %)",
                        100 * pooled, "%", "alpha", 5.0, "<= 6.5 %"))
    return rows
