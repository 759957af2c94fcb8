"""One source of truth: every metric name used in code, rules and exposition is in the catalog."""
from __future__ import annotations

from support.catalog import populated_registry
from support.helpers import exposition, promtool_check_metrics, require_binary


def test_promtool_check_metrics_reports_no_problem() -> None:
    require_binary("promtool")
    result = promtool_check_metrics(exposition(populated_registry()))
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
