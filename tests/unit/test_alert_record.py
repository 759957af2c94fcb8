"""The receiver's record: one row per fingerprint, one line per state change (fingerprint, status, startsAt)."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

from prometheus_client import CollectorRegistry

from mlscope.alerts import AlertStore, Seen
from mlscope.alerts.record import instant
from mlscope.stack.alertreceiver import AlertReceiver
from support.alerting_helpers import body, webhook_payload

T0, T1 = "2026-11-24T10:00:00Z", "2026-11-24T11:30:00.25Z"


def alert(status: str = "firing", starts_at: str = T0, **labels: str) -> dict:
    return webhook_payload(status=status, starts_at=starts_at, model="churn", model_version="3", **labels)["alerts"][0]


def test_repeats_are_filed_but_only_state_changes_count() -> None:
    store = AlertStore()
    sequence = [alert()] * 5 + [alert("resolved")] * 3 + [alert(starts_at=T1)] * 2
    seen = [store.observe(a, at=float(i)) for i, a in enumerate(sequence)]
    assert seen == [Seen.CHANGE, *[Seen.REPEAT] * 4, Seen.CHANGE, Seen.REPEAT, Seen.REPEAT, Seen.CHANGE, Seen.REPEAT]
    record = store.get(sequence[0]["fingerprint"])
    assert record is not None
    assert (record.status, record.starts_at, record.notifications) == ("firing", T1, 10)
    assert (record.first_seen, record.last_change, record.last_seen) == (0.0, 8.0, 9.0)
    assert record.labels["model"] == "churn" and record.annotations["summary"] == "s"
    assert [(c.status, c.starts_at) for c in store.changes(record.fingerprint)] == [
        ("firing", T0), ("resolved", T0), ("firing", T1)]


def test_late_news_never_reopens_or_rewinds_an_alert() -> None:
    store = AlertStore()
    store.observe(alert())
    store.observe(alert("resolved"))
    assert store.observe(alert()) is Seen.STALE  # a late firing of the resolved episode
    fingerprint = alert()["fingerprint"]
    assert store.get(fingerprint).status == "resolved"  # type: ignore[union-attr]
    store.observe(alert(starts_at=T1))
    assert store.observe(alert("resolved")) is Seen.REPEAT  # the old episode's resolution again
    assert store.get(fingerprint).starts_at == T1  # type: ignore[union-attr]


def test_the_record_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "alerts.sqlite"
    first = AlertStore(path)
    assert first.observe(alert()) is Seen.CHANGE
    first.close()
    again = AlertStore(path)
    assert again.observe(alert()) is Seen.REPEAT  # Alertmanager re-sending after the receiver restarted
    assert [r.alertname for r in again.records(status="firing")] == ["ModelErrorRateHigh"]
    assert again.records(status="resolved") == []


def test_instants_sort_in_time_order() -> None:
    stamps = ["2026-11-24T10:00:00Z", "2026-11-24T10:00:00.5Z", "2026-11-24T10:00:00.123456789Z",
              "2026-11-24T10:00:01Z", "2026-11-24T09:59:59.999Z"]
    assert sorted(stamps, key=instant) == [stamps[4], stamps[0], stamps[2], stamps[1], stamps[3]]


def test_lines_match_the_first_occurrences_of_a_resent_stream() -> None:
    """Reference: the set of first-seen (fingerprint, status, startsAt), computed independently of the store."""
    rng = random.Random(7)  # how many times each notification is sent
    alerts = [alert(status, starts, feature=f"f{i}") for i in range(6) for starts in (T0, T1)
              for status in ("firing", "resolved")]
    # Alertmanager re-sends the whole group: each notification carries every alert fired so far, in order.
    notifications = [alerts[: n + 1] for n in range(len(alerts)) for _ in range(rng.randint(1, 3))]
    out = io.StringIO()
    receiver = AlertReceiver(registry=CollectorRegistry(), output=out)
    for group in notifications:
        payload = webhook_payload()
        payload["alerts"] = group
        assert receiver.handle(body(payload))[0] == 200
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    expected = list(dict.fromkeys((a["fingerprint"], a["status"], a["startsAt"]) for g in notifications for a in g))
    assert [(line["fingerprint"], line["status"], line["starts_at"]) for line in lines] == expected
    sent = sum(len(g) for g in notifications)
    get = receiver.registry.get_sample_value
    changes = sum(get("mlscope_alert_state_changes_total", {"alertname": "ModelErrorRateHigh", "status": s}) or 0
                  for s in ("firing", "resolved"))
    assert changes == len(expected) == 24 and sent > 3 * len(expected)
