"""One log record per prediction, written through the standard logging machinery by the monitor.

Every failed and every slow prediction gets a full record; other predictions
get one for a sample of request ids (``sample_rate``), and are only counted
otherwise (``mlscope_prediction_log_records_total{decision}``). The request id
in the record is the one in the latency histogram's exemplar.

When the prediction has a span (``ModelMonitor(tracing=...)``), a sampled trace is always logged
(``follow_traces``), on top of the log's own sample: a line is written when the trace is sampled *or* the
request id is in ``sample_rate``, so a sampled trace has its log lines, and traces that are off or unsampled
(``OTEL_SDK_DISABLED``, ``always_off``, a caller's unsampled ``traceparent``) never take the log below its own
rate. Only a line of a sampled trace carries a ``trace_id``, so no link leads nowhere.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from .formatter import RESERVED
from .metrics import log_metrics
from .sampling import LogLevels
from .sampling import sampled as in_sample

DEFAULT_LOGGER = "mlscope.predictions"
DECISIONS = ("error", "slow", "sampled", "debug", "counted")


class PredictionLog:
    """Configuration of the per-prediction log, shared by the monitors given it.

    ``logger`` (name or Logger) receives the records: attach a
    :class:`~mlscope.logs.LokiHandler` or a ``StreamHandler`` with a
    :class:`~mlscope.logs.JsonFormatter` to it. Its level is set to DEBUG
    because ``levels`` decides what is written. ``follow_traces`` (default) also logs every
    prediction whose trace is sampled, beside the ``sample_rate`` share of request ids.
    """

    def __init__(self, logger: str | logging.Logger = DEFAULT_LOGGER, *, sample_rate: float = 0.01,
                 slow_seconds: float = 1.0, levels: LogLevels | None = None,
                 include_output: bool = True, follow_traces: bool = True) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], got {sample_rate!r}")
        if not slow_seconds > 0:
            raise ValueError(f"slow_seconds must be positive, got {slow_seconds!r}")
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.logger.setLevel(logging.DEBUG)
        self.sample_rate = sample_rate
        self.slow_seconds = slow_seconds
        self.levels = levels if levels is not None else LogLevels()
        self.include_output = include_output
        self.follow_traces = follow_traces

    def bind(self, model: str, model_version: str, registry: CollectorRegistry | None) -> BoundPredictionLog:
        return BoundPredictionLog(self, model, model_version, registry)


class BoundPredictionLog:
    """The prediction log of one model version (what a monitor calls per prediction)."""

    __slots__ = ("_config", "model", "model_version", "_counts")

    def __init__(self, config: PredictionLog, model: str, model_version: str,
                 registry: CollectorRegistry | None) -> None:
        self._config = config
        self.model, self.model_version = model, model_version
        records = log_metrics(registry).records
        self._counts = {d: records.labels(model, model_version, d) for d in DECISIONS}

    def prediction(self, request_id: str, latency: float | None, error_type: str | None = None,
                   output: Any = None, score: Any = None, fields: Mapping[str, Any] | None = None, *,
                   ids: tuple[str, str] | None = None, sampled: bool | None = None,
                   data_batch_id: str | None = None, attributions: list[list[Any]] | None = None) -> bool:
        """Count the prediction and, when the decision and level allow, log it with ``fields`` added.

        ``sampled`` is the sampling decision of the prediction's trace (None: it has no span), ``ids`` its
        trace and span ids when sampled; ``attributions`` its largest attributions ([feature, value], written as
        ``top_attributions`` with the output, under ``include_output``). Returns whether a record was written
        (the monitor then uses its request id as the exemplar).
        """
        config = self._config
        if error_type is not None:
            level, event, decision = logging.ERROR, "prediction_error", "error"
        elif latency is not None and latency >= config.slow_seconds:
            level, event, decision = logging.WARNING, "prediction_slow", "slow"
        elif (sampled and config.follow_traces) or in_sample(request_id, config.sample_rate):
            level, event, decision = logging.INFO, "prediction", "sampled"
        else:
            level, event, decision = logging.DEBUG, "prediction", "debug"
        if level < config.levels.level(self.model, self.model_version):
            self._counts["counted"].inc()
            return False
        self._counts[decision].inc()
        extra: dict[str, Any] = {k: v for k, v in fields.items() if k not in RESERVED} if fields else {}
        extra.update({
            "event": event, "model": self.model, "model_version": self.model_version,
            "request_id": request_id, "latency_seconds": latency,
            "outcome": "error" if error_type is not None else "ok"})
        if ids is not None:
            extra["trace_id"], extra["span_id"] = ids
        if data_batch_id is not None:
            extra["data_batch_id"] = data_batch_id
        if error_type is not None:
            extra["error_type"] = error_type
        elif config.include_output:
            extra["prediction"] = output
            if score is not None:
                extra["score"] = score
            if attributions:
                extra["top_attributions"] = attributions
        config.logger.log(level, event, extra=extra)
        return True
