"""Outcome times in the formats the README names, and the import command's required store."""
from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mlscope import ModelMonitor
from mlscope.cli import main
from mlscope.quality import Quality
from mlscope.quality.outcomes import Outcome
from mlscope.quality.scoring import timestamp


@pytest.mark.parametrize("value, expected", [
    (1764064800, 1764064800.0), ("1764064800.5", 1764064800.5), ("2025-11-25T10:00:00Z", 1764064800.0),
    ("2025-11-25T11:00:00+01:00", 1764064800.0), ("2025-11-25T10:00:00", 1764064800.0),
    ("yesterday", None), (float("nan"), None), (True, None), (-5, None), ([1], None),
])
def test_timestamp_formats(value: object, expected: float | None) -> None:
    assert timestamp(value) == expected


def test_an_unreadable_time_is_rejected_by_reason() -> None:
    registry = CollectorRegistry()
    quality = Quality(registry=registry)
    monitor = ModelMonitor("m", "1", registry=registry, quality=quality, classes=[0, 1])
    for i in range(3):
        monitor.record_prediction(0.01, output=1, request_id=f"r{i}")
    quality.flush()
    summary = quality.record_outcomes([Outcome("r0", 1, "yesterday"), Outcome("r1", 1, "2026-11-25T10:00:00Z"),
                                       Outcome("r2", 0)])
    assert summary == {"invalid_time": 1, "joined": 2}
    quality.close()


def test_quality_import_needs_a_store_or_a_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "outcomes.csv"
    data.write_text("request_id,y_true\nr1,1\n")
    assert main(["quality-import", str(data)]) == 2
    assert "--store" in capsys.readouterr().err
    assert not (tmp_path / "mlscope-quality.db").exists()
