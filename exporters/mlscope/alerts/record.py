"""The alert receiver's record: one row per alert (Alertmanager's fingerprint) and one per state change.

Alertmanager re-sends every alert of a group on each group notification and on every repeat, and an
Alertmanager pair (or a restart) may send the same notification twice. The record keeps what a person and
later actions need from that stream:

* ``observe(alert)`` files a webhook alert and answers whether it is a **state change**: the first time a
  ``(fingerprint, status, startsAt)`` is seen. Re-sends answer False; so does a late ``firing`` for an
  episode (``startsAt``) already resolved (``stale``: it must not reopen it).
* ``get(fingerprint)`` and ``records()`` return :class:`AlertRecord` rows: first and last seen, last status,
  starts/ends, labels, annotations (description with its number, links), Prometheus's generator URL;
  ``changes(fingerprint)`` the state changes in order.

Standard library only (sqlite3), safe across threads; ``path=":memory:"`` keeps nothing after exit.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, alertname TEXT NOT NULL, status TEXT NOT NULL,
    starts_at TEXT NOT NULL, ends_at TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    last_change REAL NOT NULL, notifications INTEGER NOT NULL, labels TEXT NOT NULL, annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, starts_at TEXT NOT NULL, alertname TEXT NOT NULL,
    result TEXT NOT NULL, exit_status INTEGER, duration_s REAL NOT NULL, output TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, starts_at TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (fingerprint, status, starts_at));
CREATE TABLE IF NOT EXISTS false_positives (
    fingerprint TEXT NOT NULL, starts_at TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (fingerprint, starts_at));
"""


def instant(timestamp: str) -> tuple[str, str]:
    """An RFC 3339 UTC time (Alertmanager's, up to nanoseconds) as a key that sorts in time order."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    return whole, fraction.ljust(9, "0")


class Seen(Enum):
    """What one received alert was to the record."""

    CHANGE = "change"        # a new state: write a line, run commands
    REPEAT = "repeat"        # the same state again (group re-notification, repeat, duplicate sender)
    STALE = "stale"          # a firing for an episode already resolved, arriving late


@dataclass(frozen=True)
class AlertRecord:
    """The receiver's one record of an alert (times in Unix seconds; starts/ends as Alertmanager sent them)."""

    fingerprint: str
    alertname: str
    status: str
    starts_at: str
    ends_at: str
    first_seen: float
    last_seen: float
    last_change: float
    notifications: int
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Change:
    status: str
    starts_at: str
    at: float


@dataclass(frozen=True)
class CommandRun:
    """One run of an alert's command: for which state change, its result, exit status (None: killed), output."""

    status: str
    starts_at: str
    alertname: str
    result: str
    exit_status: int | None
    duration_s: float
    output: str
    at: float


class AlertStore:
    """One record per fingerprint and the state changes, in SQLite (a file in the state dir, or memory)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def observe(self, alert: Mapping[str, Any], at: float | None = None) -> Seen:
        """File one alert of a webhook payload (already validated); say whether it changed state."""
        now = time.time() if at is None else at
        fingerprint, status, starts_at = alert["fingerprint"], alert["status"], alert["startsAt"]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if status == "firing" and self._has_change(fingerprint, "resolved", starts_at):
                self._db.execute("UPDATE alerts SET last_seen = ?, notifications = notifications + 1 "
                                 "WHERE fingerprint = ?", (now, fingerprint))
                return Seen.STALE
            new = self._db.execute("INSERT OR IGNORE INTO changes VALUES (?, ?, ?, ?)",
                                   (fingerprint, status, starts_at, now)).rowcount == 1
            labels = json.dumps(alert["labels"], sort_keys=True)
            annotations = json.dumps(alert.get("annotations") or {}, sort_keys=True)
            generator = str(alert.get("generatorURL") or "")
            row = self._db.execute("SELECT starts_at FROM alerts WHERE fingerprint = ?", (fingerprint,)).fetchone()
            if row is None:
                self._db.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                                 (fingerprint, alert["labels"]["alertname"], status, starts_at, alert["endsAt"],
                                  now, now, now, labels, annotations, generator))
            elif instant(starts_at) >= instant(row[0]):  # this episode or a later one: its state is current
                self._db.execute(
                    "UPDATE alerts SET status = ?, starts_at = ?, ends_at = ?, last_seen = ?, "
                    "notifications = notifications + 1, labels = ?, annotations = ?, generator_url = ?"
                    + (", last_change = ?" if new else "") + " WHERE fingerprint = ?",
                    (status, starts_at, alert["endsAt"], now, labels, annotations, generator,
                     *((now,) if new else ()), fingerprint))
            else:  # news of an older episode: kept as a change, the record stays on the newer one
                self._db.execute("UPDATE alerts SET last_seen = ?, notifications = notifications + 1 "
                                 "WHERE fingerprint = ?", (now, fingerprint))
            return Seen.CHANGE if new else Seen.REPEAT

    def _has_change(self, fingerprint: str, status: str, starts_at: str) -> bool:
        return self._db.execute("SELECT 1 FROM changes WHERE fingerprint = ? AND status = ? AND starts_at = ?",
                                (fingerprint, status, starts_at)).fetchone() is not None

    def get(self, fingerprint: str) -> AlertRecord | None:
        rows = self._select("WHERE fingerprint = ?", (fingerprint,))
        return rows[0] if rows else None

    def records(self, *, status: str | None = None, alertname: str | None = None,
                limit: int | None = None) -> list[AlertRecord]:
        """Records, the latest state change first, optionally of one status and/or alert name."""
        where, args = [], []
        for column, value in (("status", status), ("alertname", alertname)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = ("WHERE " + " AND ".join(where) if where else "") + " ORDER BY last_change DESC, fingerprint"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._select(sql, tuple(args))

    def changes(self, fingerprint: str) -> list[Change]:
        """The state changes of one alert, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT status, starts_at, at FROM changes WHERE fingerprint = ? "
                                    "ORDER BY at, status", (fingerprint,)).fetchall()
        return [Change(*row) for row in rows]

    def mark_false_positive(self, fingerprint: str, starts_at: str, at: float | None = None) -> bool:
        """File a false-positive report on one firing episode; False when that episode was already reported."""
        with self._lock, self._db:
            return self._db.execute("INSERT OR IGNORE INTO false_positives VALUES (?, ?, ?)",
                                    (fingerprint, starts_at, time.time() if at is None else at)).rowcount == 1

    def alertnames(self) -> list[str]:
        """The alert names on record (each notified at least once), sorted."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT alertname FROM alerts ORDER BY alertname")]

    def record_command(self, alert: Mapping[str, Any], result: str, exit_status: int | None, duration_s: float,
                       output: str, at: float | None = None) -> None:
        """File the run of the command started for ``alert``'s state change."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (alert["fingerprint"], alert["status"], alert["startsAt"], alert["labels"]["alertname"],
                              result, exit_status, duration_s, output, time.time() if at is None else at))

    def commands(self, fingerprint: str) -> list[CommandRun]:
        """The command runs of one alert, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT status, starts_at, alertname, result, exit_status, duration_s, output, at "
                                    "FROM commands WHERE fingerprint = ? ORDER BY at", (fingerprint,)).fetchall()
        return [CommandRun(*row) for row in rows]

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[AlertRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM alerts " + sql, args).fetchall()
        return [AlertRecord(fingerprint=row[0], alertname=row[1], status=row[2], starts_at=row[3], ends_at=row[4],
                            first_seen=row[5], last_seen=row[6], last_change=row[7], notifications=row[8],
                            labels=json.loads(row[9]), annotations=json.loads(row[10]), generator_url=row[11])
                for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
