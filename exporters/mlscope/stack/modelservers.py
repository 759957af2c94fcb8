"""Scraping vLLM and SGLang model servers: their ``model_name`` mapped onto mlscope's ``model``/``model_version``.

A target says it is a model server with the target label ``server`` (``vllm`` or ``sglang``: ``mlscope targets add
--kind``, ``mlscope up --scrape-server``, a file_sd group's labels, a Kubernetes Service's ``mlscope.io/model-server``
label). Its own ``model``/``model_version`` target labels, when given, are the mapping (they land on every series
of the target, which carry none); otherwise the job's metric relabelling copies ``model_name`` into ``model`` and
sets ``model_version`` to :data:`UNVERSIONED`. Series of targets without ``server`` are never touched.
"""
from __future__ import annotations

from typing import Any

from ..catalog.modelservers import KINDS
from ..targets import SERVER_LABEL

UNVERSIONED = "unversioned"
_KIND = "(" + "|".join(KINDS) + ")"


def model_server_relabelling() -> list[dict[str, Any]]:
    """``metric_relabel_configs`` of the job that scrapes model servers (Prometheus's snake_case keys)."""
    return [
        {"source_labels": [SERVER_LABEL, "model", "model_name"], "regex": f"{_KIND};;(.+)",
         "target_label": "model", "replacement": "$2"},
        {"source_labels": [SERVER_LABEL, "model_version", "model_name"], "regex": f"{_KIND};;.+",
         "target_label": "model_version", "replacement": UNVERSIONED},
    ]


def operator_relabelling(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rules in the Prometheus Operator's camelCase (a ServiceMonitor's ``metricRelabelings``)."""
    keys = {"source_labels": "sourceLabels", "target_label": "targetLabel"}
    return [{keys.get(k, k): v for k, v in c.items()} for c in configs]
