"""The real `mlscope resource-exporter` process, scraped by a real Prometheus; its --once mode."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from mlscope.stack.servers import free_port
from support.helpers import MLSCOPE, promtool_check_metrics, require_binary, wait_until
from support.prometheus import PrometheusHarness


@pytest.fixture
def resource_exporter(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "exporter.log").open("w")
    process = subprocess.Popen(MLSCOPE + ["resource-exporter", "--port", str(port), "--interval", "0.5",
                                          "--simulate-gpus", "2", "--children"],
                               stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"http://{target}/metrics", timeout=2).status_code == 200
        except requests.RequestException:
            return process.poll() is not None
    wait_until(ready)
    assert process.poll() is None, (tmp_path / "exporter.log").read_text()
    yield target
    process.terminate()
    process.wait(10)
    log.close()


def scalar(prometheus: PrometheusHarness, expr: str) -> float | None:
    result = prometheus.api.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_host_metrics_of_this_machine_read_back_through_prometheus(
        prometheus: PrometheusHarness, resource_exporter: str) -> None:
    prometheus.scrape("resource-exporter", resource_exporter)
    sel = f'{{instance="{resource_exporter}"}}'
    wait_until(lambda: scalar(prometheus, f"mlscope_host_memory_total_bytes{sel}"))
    assert scalar(prometheus, f"mlscope_host_memory_total_bytes{sel}") == psutil.virtual_memory().total
    assert scalar(prometheus, f"mlscope_host_cpus{sel}") == psutil.cpu_count()
    assert scalar(prometheus, f"count(mlscope_host_cpu_core_utilization_ratio{sel})") == psutil.cpu_count()
    utilization = scalar(prometheus, f"mlscope_host_cpu_utilization_ratio{sel}")
    assert utilization is not None and 0 <= utilization <= 1
    total_disk = psutil.disk_usage("/").total
    assert scalar(prometheus, f'mlscope_host_filesystem_size_bytes{{mountpoint="/",instance="{resource_exporter}"}}') \
        == total_disk
    # Loopback traffic grows: at least Prometheus's own scrapes of the exporter go through it.
    wait_until(lambda: (scalar(prometheus, f'increase(mlscope_host_network_bytes_total{{interface="lo",'
                                           f'direction="receive",instance="{resource_exporter}"}}[10s])') or 0) > 0)
    assert scalar(prometheus, f"mlscope_gpus{sel}") == 2
    simulated = f'{{simulated="true",instance="{resource_exporter}"}}'
    assert scalar(prometheus, f"count(mlscope_gpu_utilization_ratio{simulated})") == 2
    ups = prometheus.api.query(f"mlscope_resource_collector_up{sel}")
    assert {s["metric"]["collector"]: s["value"][1] for s in ups} == {"host": "1", "process": "1", "gpu": "1"}
    threads = scalar(prometheus, f"sum(mlscope_process_threads{sel})")
    assert threads is not None and threads >= 1


def test_once_prints_a_valid_exposition_and_what_it_found() -> None:
    result = subprocess.run(MLSCOPE + ["resource-exporter", "--once", "--simulate-gpus", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'mlscope_gpus{simulated="true"} 1.0' in result.stdout
    assert "host: up" in result.stderr and "NVML driver 550.54.15: 1 GPU(s)" in result.stderr
    require_binary("promtool")
    check = promtool_check_metrics(result.stdout)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
