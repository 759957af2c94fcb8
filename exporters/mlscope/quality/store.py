"""The prediction store: what is needed to score a prediction later, plus the quality counters.

Two implementations with one interface:

- :class:`SQLiteStore` (default): one file, standard-library ``sqlite3`` in WAL
  mode. Survives restarts; several processes on one host may share the file
  (each join is one ``BEGIN IMMEDIATE`` transaction, so a pair is counted once).
- :class:`MemoryStore`: a process-local dictionary, lost at exit.

Both are bounded by count (``max_predictions``) and age (``max_age_s``); ids of
purged predictions are remembered (bounded too) so a late outcome is counted as
``expired_request`` rather than ``unknown_request``. The counters that quality
metrics expose live in the store and change in the same transaction as the
rows that cause them: they stay monotonic across restarts.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..drift.score_calibration import Calibration

# (series name, label values [+ le]) -> value
CounterKey = tuple[str, tuple[str, ...]]
Counts = dict[CounterKey, float]

DEFAULT_MAX_PREDICTIONS = 1_000_000
DEFAULT_MAX_AGE_S = 30 * 86400.0


class StoredPrediction(NamedTuple):
    request_id: str
    model: str
    model_version: str
    segment: str
    predicted_at: float
    predicted: str | None          # class label (classification)
    value: float | None            # predicted value (regression)
    proba: tuple[float, ...] | None  # probabilities aligned with the version's classes
    labelled_at: float | None = None


@dataclass
class VersionInfo:
    """What the joiner needs to know about a model version."""

    model: str
    model_version: str
    task: str
    classes: tuple[str, ...] | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    calibration: Calibration | None = None  # from the version's reference profile: what estimates apply


class StoreError(RuntimeError):
    """A store operation failed; ``kind`` is locked, full, corrupt or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Tx(Protocol):
    """Operations available inside one store transaction."""

    def existing(self, ids: list[str]) -> set[str]: ...
    def insert(self, rows: list[StoredPrediction]) -> None: ...
    def fetch(self, ids: list[str]) -> dict[str, StoredPrediction]: ...
    def expired(self, ids: list[str]) -> set[str]: ...
    def mark_labelled(self, items: list[tuple[str, float]]) -> None: ...
    def add(self, counts: Mapping[CounterKey, float]) -> None: ...


def add_counts(into: Counts, counts: Mapping[CounterKey, float]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0.0) + value


class Store:
    """Interface shared by the SQLite and memory stores."""

    max_predictions: int
    max_age_s: float

    def transaction(self) -> Any:  # a context manager yielding a Tx
        raise NotImplementedError

    def counters(self) -> Counts:
        raise NotImplementedError

    def versions(self) -> dict[tuple[str, str], VersionInfo]:
        raise NotImplementedError

    def put_version(self, info: VersionInfo) -> None:
        raise NotImplementedError

    def purge(self, now: float | None = None) -> int:
        """Drop predictions beyond the count and age bounds; return how many."""
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def add(self, counts: Mapping[CounterKey, float]) -> None:
        with self.transaction() as tx:
            tx.add(counts)


# -- memory ---------------------------------------------------------------------------------------

class _MemoryTx:
    def __init__(self, store: MemoryStore) -> None:
        self.s = store
        self.counts: Counts = {}
        self.rows: list[StoredPrediction] = []
        self.labelled: list[tuple[str, float]] = []

    def existing(self, ids: list[str]) -> set[str]:
        return {i for i in ids if i in self.s._rows}

    def insert(self, rows: list[StoredPrediction]) -> None:
        self.rows.extend(rows)

    def fetch(self, ids: list[str]) -> dict[str, StoredPrediction]:
        return {i: self.s._rows[i] for i in ids if i in self.s._rows}

    def expired(self, ids: list[str]) -> set[str]:
        return {i for i in ids if i in self.s._expired}

    def mark_labelled(self, items: list[tuple[str, float]]) -> None:
        self.labelled.extend(items)

    def add(self, counts: Mapping[CounterKey, float]) -> None:
        add_counts(self.counts, counts)

    def commit(self) -> None:
        rows = self.s._rows
        for row in self.rows:
            rows[row.request_id] = row
        for request_id, at in self.labelled:
            rows[request_id] = rows[request_id]._replace(labelled_at=at)
        add_counts(self.s._counts, self.counts)
        if len(rows) > self.s.max_predictions:
            self.s._purge_locked(time.time())


class MemoryStore(Store):
    """Process-local store: fast, bounded, lost at exit (counters restart from 0)."""

    def __init__(self, max_predictions: int = DEFAULT_MAX_PREDICTIONS,
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.max_predictions = max_predictions
        self.max_age_s = max_age_s
        self._rows: OrderedDict[str, StoredPrediction] = OrderedDict()
        self._expired: OrderedDict[str, float] = OrderedDict()
        self._counts: Counts = {}
        self._versions: dict[tuple[str, str], VersionInfo] = {}
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
        with self._lock:
            tx = _MemoryTx(self)
            yield tx
            tx.commit()

    def counters(self) -> Counts:
        with self._lock:
            return dict(self._counts)

    def versions(self) -> dict[tuple[str, str], VersionInfo]:
        with self._lock:
            return dict(self._versions)

    def put_version(self, info: VersionInfo) -> None:
        with self._lock:
            self._versions[(info.model, info.model_version)] = info

    def purge(self, now: float | None = None) -> int:
        with self._lock:
            return self._purge_locked(time.time() if now is None else now)

    def _purge_locked(self, now: float) -> int:
        rows, cutoff, purged = self._rows, now - self.max_age_s, 0
        while rows:
            request_id, row = next(iter(rows.items()))
            if len(rows) <= self.max_predictions and row.predicted_at >= cutoff:
                break
            rows.popitem(last=False)
            self._expired[request_id] = now
            purged += 1
        while len(self._expired) > self.max_predictions:
            self._expired.popitem(last=False)
        return purged

    def size(self) -> int:
        return len(self._rows)


# -- SQLite ---------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, model TEXT NOT NULL, model_version TEXT NOT NULL,
    segment TEXT NOT NULL, predicted_at REAL NOT NULL, predicted TEXT, value REAL, proba BLOB, labelled_at REAL);
CREATE INDEX IF NOT EXISTS predictions_at ON predictions(predicted_at);
CREATE TABLE IF NOT EXISTS expired (request_id TEXT PRIMARY KEY, expired_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expired_at ON expired(expired_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (name, labels)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (model TEXT NOT NULL, model_version TEXT NOT NULL, task TEXT NOT NULL,
    classes TEXT, baseline TEXT NOT NULL, calibration TEXT, PRIMARY KEY (model, model_version)) WITHOUT ROWID;
"""
_VERSION_COLUMNS = "model, model_version, task, classes, baseline, calibration"


@lru_cache(maxsize=256)
def _calibration(text: str | None) -> Calibration | None:
    return None if text is None else Calibration.from_dict(json.loads(text))


def _add_calibration_column(conn: sqlite3.Connection) -> None:
    """Stores written before calibrations existed get the column (another process may add it first)."""
    if all(row[1] != "calibration" for row in conn.execute("PRAGMA table_info(versions)")):
        try:
            conn.execute("ALTER TABLE versions ADD COLUMN calibration TEXT")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise
_CHUNK = 500  # ids per IN (...) query, below SQLite's variable limit


def classify(exc: BaseException) -> str:
    """locked, full, corrupt or error for an sqlite3 exception."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "locked"
    if name.startswith("SQLITE_FULL") or "full" in text:
        return "full"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return "corrupt"
    return "error"


def _store_error(path: Path, exc: BaseException, doing: str) -> StoreError:
    kind = classify(exc)
    hints = {"locked": "another process holds a write lock for longer than the busy timeout",
             "full": "the disk (or max_page_count) is full: free space; stored rows are kept",
             "corrupt": f"the file is damaged: move {path} aside (it is never modified by mlscope) and restart",
             "error": "unexpected SQLite error"}
    return StoreError(kind, f"prediction store {path}: {doing} failed ({kind}: {exc}); {hints[kind]}")


def _pack(proba: tuple[float, ...] | None) -> bytes | None:
    return None if proba is None else np.asarray(proba, dtype=np.float64).tobytes()


def _unpack(blob: bytes | None) -> tuple[float, ...] | None:
    return None if blob is None else tuple(np.frombuffer(blob, dtype=np.float64).tolist())


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection, keys: dict[CounterKey, str]) -> None:
        self.c = conn
        self._keys = keys

    def _select(self, sql: str, ids: list[str]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            out += self.c.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    def existing(self, ids: list[str]) -> set[str]:
        return {r[0] for r in self._select("SELECT request_id FROM predictions WHERE request_id IN ({})", ids)}

    def insert(self, rows: list[StoredPrediction]) -> None:
        self.c.executemany(
            "INSERT INTO predictions (request_id, model, model_version, segment, predicted_at, predicted, value, "
            "proba, labelled_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(r.request_id, r.model, r.model_version, r.segment, r.predicted_at, r.predicted, r.value,
              _pack(r.proba), r.labelled_at) for r in rows])

    def fetch(self, ids: list[str]) -> dict[str, StoredPrediction]:
        rows = self._select("SELECT request_id, model, model_version, segment, predicted_at, predicted, value, "
                            "proba, labelled_at FROM predictions WHERE request_id IN ({})", ids)
        return {r[0]: StoredPrediction(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _unpack(r[7]), r[8]) for r in rows}

    def expired(self, ids: list[str]) -> set[str]:
        return {r[0] for r in self._select("SELECT request_id FROM expired WHERE request_id IN ({})", ids)}

    def mark_labelled(self, items: list[tuple[str, float]]) -> None:
        self.c.executemany("UPDATE predictions SET labelled_at = ? WHERE request_id = ?",
                           [(at, request_id) for request_id, at in items])

    def add(self, counts: Mapping[CounterKey, float]) -> None:
        keys = self._keys
        params = []
        for key, value in counts.items():
            text = keys.get(key)
            if text is None:
                text = keys[key] = json.dumps(key[1])
            params.append((key[0], text, value))
        self.c.executemany("INSERT INTO counters (name, labels, value) VALUES (?,?,?) "
                           "ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value", params)


class SQLiteStore(Store):
    """A store in one SQLite file (WAL mode): survives restarts, shareable by processes of one host.

    Raises :class:`StoreError` with a clear message when the file cannot be
    used (locked, disk full, corrupt); the file is never truncated or
    rewritten, so rows already stored are not lost.
    """

    def __init__(self, path: str | Path, *, max_predictions: int = DEFAULT_MAX_PREDICTIONS,
                 max_age_s: float = DEFAULT_MAX_AGE_S, busy_timeout_s: float = 5.0,
                 check: bool = True) -> None:
        self.path = Path(path)
        self.max_predictions = max_predictions
        self.max_age_s = max_age_s
        self._lock = threading.RLock()
        self._keys: dict[CounterKey, str] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise _store_error(self.path, exc, "open") from exc
        try:
            self._conn.execute("PRAGMA journal_mode=WAL").fetchall()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            if check:
                result = self._conn.execute("PRAGMA quick_check(1)").fetchone()
                if result is None or result[0] != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed: {result}")
            self._conn.executescript(_SCHEMA)
            _add_calibration_column(self._conn)
        except sqlite3.Error as exc:
            self._conn.close()
            raise _store_error(self.path, exc, "open") from exc

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc, "begin") from exc
            try:
                yield _SQLiteTx(self._conn, self._keys)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _store_error(self.path, exc, "write") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        with suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")

    def _read(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc, "read") from exc

    def counters(self) -> Counts:
        return {(name, tuple(json.loads(labels))): value
                for name, labels, value in self._read("SELECT name, labels, value FROM counters")}

    def versions(self) -> dict[tuple[str, str], VersionInfo]:
        out = {}
        for model, version, task, classes, baseline, calibration in self._read(
                f"SELECT {_VERSION_COLUMNS} FROM versions"):
            out[(model, version)] = VersionInfo(model, version, task,
                                                None if classes is None else tuple(json.loads(classes)),
                                                json.loads(baseline), _calibration(calibration))
        return out

    def put_version(self, info: VersionInfo) -> None:
        with self.transaction() as tx:
            tx.c.execute(f"INSERT OR REPLACE INTO versions ({_VERSION_COLUMNS}) VALUES (?,?,?,?,?,?)",
                         (info.model, info.model_version, info.task,
                          None if info.classes is None else json.dumps(list(info.classes)),
                          json.dumps(info.baseline),
                          None if info.calibration is None else json.dumps(info.calibration.to_dict())))

    def purge(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.transaction() as tx:
            c = tx.c
            (top,) = c.execute("SELECT coalesce(max(id), 0) FROM predictions").fetchone()
            where = "id <= ? OR predicted_at < ?"
            args = (top - self.max_predictions, now - self.max_age_s)
            c.execute(f"INSERT OR REPLACE INTO expired SELECT request_id, ? FROM predictions WHERE {where}",
                      (now, *args))
            purged = c.execute(f"DELETE FROM predictions WHERE {where}", args).rowcount
            c.execute("DELETE FROM expired WHERE expired_at < ?", (now - self.max_age_s,))
            (n_expired,) = c.execute("SELECT count(*) FROM expired").fetchone()
            if n_expired > self.max_predictions:
                c.execute("DELETE FROM expired WHERE request_id IN (SELECT request_id FROM expired "
                          "ORDER BY expired_at LIMIT ?)", (n_expired - self.max_predictions,))
        return int(purged)

    def size(self) -> int:
        return int(self._read("SELECT count(*) FROM predictions")[0][0])

    def close(self) -> None:
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()


def open_store(path: str | Path | None, *, fallback: bool = False, **kwargs: Any) -> Store:
    """A SQLite store at ``path``, or a memory store when ``path`` is None or ``":memory:"``.

    With ``fallback``, a file that cannot be opened (locked, full, corrupt) is
    logged and left untouched, and a memory store is returned so the service
    starts anyway (its quality counters then restart from 0).
    """
    memory_kwargs = {k: v for k, v in kwargs.items() if k in ("max_predictions", "max_age_s")}
    if path is None or str(path) == ":memory:":
        return MemoryStore(**memory_kwargs)
    try:
        return SQLiteStore(path, **kwargs)
    except StoreError as exc:
        if not fallback:
            raise
        logging.getLogger("mlscope.quality").error("%s; using a memory store instead", exc)
        return MemoryStore(**memory_kwargs)
