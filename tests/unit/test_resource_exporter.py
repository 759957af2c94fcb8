"""The real `mlscope resource-exporter` process, scraped by a real Prometheus; its --once mode."""
from __future__ import annotations

import subprocess

from support.helpers import MLSCOPE


def test_collectors_can_be_switched_off() -> None:
    result = subprocess.run(MLSCOPE + ["resource-exporter", "--once", "--no-gpu", "--no-process"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mlscope_host_memory_total_bytes" in result.stdout
    assert "mlscope_gpus" not in result.stdout and "mlscope_process_" not in result.stdout
    assert "GPU metrics" not in result.stderr
