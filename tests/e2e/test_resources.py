"""Resource collectors against replayed readings: recorded psutil values and a fake NVML.

Every exported series is compared with the replayed value converted to base
units by hand here (W = mW / 1000, Hz = MHz * 1e6, ratio = percent / 100...).
"""
from __future__ import annotations

import requests
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.catalog import resources as cat
from mlscope.resources import ResourceMonitor, Sample, Sampler
from mlscope.resources.collector import ResourceCollector
from mlscope.resources.host import HostSource
from support import recorded_psutil as rec
from support.helpers import Exporter, exposition, promtool_check_metrics, require_binary
from support.recorded_psutil import RecordedPsutil
from support.resources import fake_gpus, value

# -- host -------------------------------------------------------------------------------------------


# -- processes --------------------------------------------------------------------------------------


# -- GPUs -------------------------------------------------------------------------------------------


# -- sampling and serving ---------------------------------------------------------------------------

class Exploding:
    name = "exploding"

    def sample(self) -> Sample:
        raise ZeroDivisionError("boom")


class Malformed:
    """Returns a sample whose values cannot become a metric family (wrong label count)."""

    name = "malformed"

    def sample(self) -> Sample:
        s = Sample()
        s.add(cat.HOST_CPUS, (), 2)
        s.values[cat.HOST_LOAD] = {("1m", "extra"): 1.0}
        return s


def test_failing_collectors_never_break_the_scrape(exporter: Exporter) -> None:
    sampler = Sampler([HostSource(RecordedPsutil(), file_handles=lambda: None), Exploding(), Malformed()])
    exporter.registry.register(ResourceCollector(sampler))
    sampler.sample_once()
    sampler.sample_once()
    response = requests.get(exporter.url, timeout=10)
    assert response.status_code == 200
    r = exporter.registry
    assert value(r, "mlscope_resource_collector_up", collector="host") == 1
    assert value(r, "mlscope_resource_collector_up", collector="exploding") == 0
    assert value(r, "mlscope_resource_collector_errors_total", collector="exploding", error="ZeroDivisionError") == 2
    assert value(r, "mlscope_resource_collector_errors_total", collector="exporter", error="ValueError") >= 1
    assert value(r, "mlscope_host_memory_total_bytes") == rec.MEMORY.total
    assert value(r, "mlscope_host_load_average", period="1m") is None  # the malformed part is left out
    require_binary("promtool")
    check = promtool_check_metrics(response.text)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_real_host_exposition_passes_promtool() -> None:
    require_binary("promtool")
    registry = CollectorRegistry()
    ModelMonitor("llm", "1", registry=registry)
    ResourceMonitor(registry, nvml=fake_gpus(), children=True).sample_once()
    result = promtool_check_metrics(exposition(registry))
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
