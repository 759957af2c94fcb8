"""Lineage: from a model version (or a prediction's log line) back to its training run, data batches and the
pipeline runs that built them, and the alert that caused a retraining.

What is where (docs/pipelines.md, "Lineage"):

* **Prometheus** holds bounded info gauges, one series per model version: ``mlscope_model_info`` (version ->
  ``training_data_fingerprint``, from the serving process) and ``mlscope_training_info`` (version -> pipeline,
  ``dataset_version``, fingerprint, from the training job).
* **Log lines only** (Loki, or the JSON-lines files of :class:`mlscope.logs.JsonFormatter`): run ids, data
  batch ids, hyperparameters, transformations, request ids and the fingerprint of the alert that triggered a
  retraining, values without bound.

:func:`trace` and :func:`from_prediction` read whichever sources are given and say what is missing.
"""
from __future__ import annotations

from .chain import Lineage, from_prediction, trace
from .queries import LineQuery
from .sources import FileSource, LogSource, LokiSource, PrometheusSource, SourceError

__all__ = ["FileSource", "LineQuery", "Lineage", "LogSource", "LokiSource", "PrometheusSource", "SourceError",
           "from_prediction", "trace"]
