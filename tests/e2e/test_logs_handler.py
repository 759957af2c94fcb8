"""The Loki handler against a local receiver that follows Loki's push API."""
from __future__ import annotations

from mlscope import catalog
from support.helpers import exposition, promtool_check_metrics, wait_until
from support.loki_receiver import LokiReceiver


def test_own_metrics_are_in_the_catalog_and_valid(receiver: LokiReceiver, make_handler) -> None:
    receiver.script = [500, 400]
    handler, logger, registry = make_handler()
    logger.info("a")
    wait_until(lambda: len(receiver.requests) >= 2)
    logger.info("b")
    assert handler.drain(10)
    text = exposition(registry)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert names and all(catalog.is_known(n) for n in names), names
    for spec in (catalog.logs.LOG_LINES_SENT, catalog.logs.LOG_QUEUE_LINES, catalog.logs.LOG_SPOOL_BYTES):
        assert spec.name in text
    from support.helpers import require_binary

    require_binary("promtool")
    result = promtool_check_metrics(text)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
