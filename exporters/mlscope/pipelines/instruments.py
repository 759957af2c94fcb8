"""The pipeline metrics of one registry, created once from the catalog, and the checks of what jobs hand in."""
from __future__ import annotations

import math
import numbers
from typing import Any

from prometheus_client import CollectorRegistry

from .._promclient import PerRegistry
from ..catalog import pipelines as cat
from ..instruments import Instruments, instruments_for


class PipelineInstruments:
    """Every family of the catalog's pipelines domain in one registry, beside the registry's label guard."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # The serving instruments own the registry's label guard (caps, folds counted in
        # mlscope_label_overflow_total) and its internal-error counter: one of each per registry.
        self.core: Instruments = instruments_for(registry)
        self.runs = cat.RUNS.create(registry)
        self.steps = cat.STEPS.create(registry)
        self.step_failures = cat.STEP_FAILURES.create(registry)
        self.records = cat.RECORDS.create(registry)
        self.rejected = cat.REJECTED.create(registry)
        self.bytes = cat.BYTES.create(registry)
        self.last_records = cat.LAST_RECORDS.create(registry)
        self.last_success = cat.LAST_SUCCESS.create(registry)
        self.last_failure = cat.LAST_FAILURE.create(registry)
        self.last_start = cat.LAST_START.create(registry)
        self.last_error = cat.LAST_ERROR.create(registry)
        self.last_error_type: dict[str, str] = {}  # pipeline -> the error type its last_error series names
        self.last_run_duration = cat.LAST_RUN_DURATION.create(registry)
        self.last_step_duration = cat.LAST_STEP_DURATION.create(registry)
        self.newest_event = cat.NEWEST_EVENT.create(registry)
        self.expected_interval = cat.EXPECTED_INTERVAL.create(registry)
        self.max_data_age = cat.MAX_DATA_AGE.create(registry)
        self.info = cat.INFO.create(registry)
        self.check_failures = cat.CHECK_FAILURES.create(registry)
        self.check_feature_failed = cat.CHECK_FEATURE_FAILED.create(registry)
        self.checked_rows = cat.CHECKED_ROWS.create(registry)
        self.invalid = cat.INVALID_INPUTS.create(registry)
        self.push_failures = cat.PUSH_FAILURES.create(registry)
        self.training_runs = cat.TRAINING_RUNS.create(registry)
        self.training_last_success = cat.TRAINING_LAST_SUCCESS.create(registry)
        self.training_last_failure = cat.TRAINING_LAST_FAILURE.create(registry)
        self.training_last_duration = cat.TRAINING_LAST_DURATION.create(registry)
        self.training_last_epoch = cat.TRAINING_LAST_EPOCH.create(registry)
        self.training_epoch_metric = cat.TRAINING_EPOCH_METRIC.create(registry)
        self.training_final_metric = cat.TRAINING_FINAL_METRIC.create(registry)
        self.training_info = cat.TRAINING_INFO.create(registry)

    def admit(self, label: str, value: object) -> str:
        """``value`` as a bounded label value (folded into ``__overflow__``/``__invalid__`` past the cap)."""
        return self.core.guard.admit(label, value)


_instruments: PerRegistry[PipelineInstruments] = PerRegistry()


def pipeline_instruments(registry: CollectorRegistry | None) -> PipelineInstruments:
    """The registry's pipeline instruments (None: prometheus-client's default registry), created on first use."""
    return _instruments.get(registry, PipelineInstruments)


def count_value(value: Any, unit: str) -> tuple[int | None, str | None]:
    """``(value, None)`` for a count >= 0, else ``(None, reason)``: ``<unit>_negative`` or ``<unit>_not_integer``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value), None
        return None, f"{unit}_not_integer"
    if value < 0:
        return None, f"{unit}_negative"
    return int(value), None


def seconds_value(value: Any) -> float | None:
    """A finite, non-negative number of seconds, or None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
