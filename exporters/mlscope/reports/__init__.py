"""Incident snapshots and model health reports: self-contained HTML pages that outlive Prometheus and Loki.

``signals`` names what a page draws (the catalog's recorded series, the rule configuration's thresholds),
``fetch`` reads them from Prometheus (and says what it could not read), ``charts`` draws inline SVG
(matplotlib, Agg), ``logs`` reads the affected requests' lines from Loki through the prediction log's privacy
rules, ``page`` assembles a page from the Jinja2 template within its size budget, ``snapshot`` and ``period``
build the two kinds of page, ``store`` keeps them (retention, sha256 manifest), ``worker`` builds snapshots off
the alert receiver's notification path. Needs the ``mlscope[reports]`` extra (jinja2, matplotlib).
"""
from __future__ import annotations

EXTRA = "reports"
MODULES = ("jinja2", "matplotlib")
