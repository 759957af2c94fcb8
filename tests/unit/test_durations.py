"""One Prometheus duration parser (``mlscope.rules.promql.duration_seconds``), against known values."""
from __future__ import annotations

import pytest

from mlscope.rules.promql import duration_seconds

KNOWN = [
    ("0", 0.0), ("0s", 0.0), ("1s", 1.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0),
    ("1d", 86400.0), ("7d", 604800.0), ("1w", 604800.0), ("1y", 31536000.0), ("100ms", 0.1), ("1ms", 0.001),
    ("1m30s", 90.0), ("2h45m10s", 9910.0), ("1d12h", 129600.0), ("1y2w3d4h5m6s7ms", 33019506.007),
    ("15s", 15.0), ("60m", 3600.0),
]


@pytest.mark.parametrize(("text", "seconds"), KNOWN)
def test_known_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("text", ["", "s", "5", "1.5h", "-5m", "+5m", "5 m", " 5m", "5M", "1s1m", "5m5m", "1ms1s",
                                  "5sec", "1h 30m", "P1D", "5mm"])
def test_not_durations_raise_a_clear_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_seconds(text)


def test_every_caller_uses_the_same_parser() -> None:
    from mlscope.rules import config
    from mlscope.stack import scaling

    assert config.duration_seconds is duration_seconds and scaling.duration_seconds is duration_seconds
    fast = config.config_for("fast").profile  # scrape every 1s
    assert scaling.budget(3, profile="fast").samples_per_second == scaling.budget(3, profile="fast").scraped / 1.0
    assert duration_seconds(fast.scrape_interval) == 1.0


def test_prometheus_config_timeout_follows_the_parsed_interval() -> None:
    pytest.importorskip("yaml")
    from mlscope.rules.config import PROFILES
    from mlscope.stack.promconfig import prometheus_config

    timeouts = {name: prometheus_config(profile, [])["global"]["scrape_timeout"] for name, profile in PROFILES.items()}
    assert timeouts == {"default": "10s", "fast": "1s"}  # 15s scrapes time out at 10s, 1s scrapes at 1s
