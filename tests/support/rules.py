"""The committed rule files."""
from __future__ import annotations

from . import ROOT

RULES = ROOT / "alerting" / "rules"


RULE_FILES = sorted(RULES.glob("*.yml")) + sorted(RULES.glob("*/*.yml"))
