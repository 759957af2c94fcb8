"""The committed dashboards and the known-bad dashboard fixtures."""
from __future__ import annotations

import json

from . import HERE, ROOT

OUTPUT = ROOT / "provisioning" / "grafana" / "dashboards"


FIXTURES = HERE / "fixtures" / "dashboards"


def committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(OUTPUT.glob("mlscope-*.json"))}
