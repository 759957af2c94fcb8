"""The join: store predictions, join outcomes with them, count every pair and every rejection.

The request id is normalised here, once, for every path (the monitor's single
predictions and batches, ``POST /predictions``, outcomes from the monitor,
``POST /outcomes`` and a file import) with :func:`mlscope.ids.request_id_key`,
so an id means the same key whichever way it came. Unusable ids are counted
as ``invalid_request_id``.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

from ..catalog import quality as cat
from ..ids import request_id_key
from ..labels import LabelGuard
from . import scoring
from .accounting import Accounting
from .held import HeldOutcomes
from .items import Outcome, PredictionItem
from .store import Counts, Store, StoredPrediction, StoreError, VersionInfo, add_counts
from .versions import Versions

UNKNOWN = "__unknown__"
INVALID_REQUEST_ID = "invalid_request_id"
Summary = dict[str, int]


class Joiner:
    """Stores predictions and joins outcomes in store transactions; ``store_size`` follows the store."""

    def __init__(self, store: Store, versions: Versions, guard: LabelGuard, held: HeldOutcomes,
                 accounting: Accounting, max_calibration_error: float) -> None:
        self.store = store
        self.max_calibration_error = max_calibration_error
        self.versions = versions
        self.guard = guard
        self.held = held
        self.accounting = accounting
        self.store_size = 0

    # -- predictions ------------------------------------------------------------------------------

    def store_predictions(self, items: Iterable[PredictionItem]) -> int:
        """Store predictions in one transaction; returns how many were stored (the others are counted)."""
        rows: dict[str, StoredPrediction] = {}
        for item in items:
            row = self._row(*item)
            if row is None:
                continue
            if row.request_id in rows:
                self.accounting.drop("prediction", "duplicate_request_id")
                continue
            rows[row.request_id] = row
        if not rows:
            return 0
        with self.store.transaction() as tx:
            for request_id in tx.existing(list(rows)):
                del rows[request_id]
                self.accounting.drop("prediction", "duplicate_request_id")
            counts: Counts = {}
            calibrated = scoring.calibrated_probabilities(rows.values(), self.versions.get, self.max_calibration_error)
            for row in rows.values():
                scoring.prediction_counts(row, self.versions.get(row.model, row.model_version), counts,
                                          self.max_calibration_error, calibrated.get(row.request_id))
            tx.insert(list(rows.values()))
            tx.add(counts)
        self.store_size += len(rows)
        if self.held:
            self.retry_held(set(rows))
        return len(rows)

    def _row(self, key: tuple[str, str], request_id: object, at: float, output: object, proba: object,
             segment: object) -> StoredPrediction | None:
        drop = self.accounting.drop
        info = self.versions.get(*key)
        if info is None:
            drop("prediction", "unknown_version")
            return None
        rid = request_id_key(request_id)
        if rid is None:
            drop("prediction", INVALID_REQUEST_ID)
            return None
        segment_label = "" if segment is None else self.guard.admit("segment", segment)
        if info.task == "regression":
            value = scoring.number(output)
            if value is None:
                drop("prediction", "invalid_output")
                return None
            return StoredPrediction(rid, key[0], key[1], segment_label, at, None, value, None)
        predicted = scoring.class_label(output)
        if predicted is None:
            drop("prediction", "invalid_output")
            return None
        predicted = self.guard.admit("class", predicted)
        probs = None
        if proba is not None:
            probs = scoring.probabilities(proba, len(info.classes)) if info.classes else None
            if probs is None:
                drop("prediction", "invalid_proba")
        return StoredPrediction(rid, key[0], key[1], segment_label, at, predicted, None, probs)

    # -- outcomes ---------------------------------------------------------------------------------

    def record_outcomes(self, outcomes: Iterable[Outcome], *, hold: bool = True,
                        now: float | None = None) -> Summary:
        """Join outcomes now; returns counts by result (joined, pending, or the rejection reason).

        Outcomes whose prediction is not stored yet are held (``hold``);
        without ``hold`` they count as unknown at once. Raises StoreError when
        the store fails (nothing is counted then).
        """
        now = time.time() if now is None else now
        summary: Summary = {}
        rejected: Counts = {}
        batch: dict[str, Outcome] = {}
        for outcome in outcomes:
            rid = request_id_key(outcome.request_id)
            if rid is None:
                _reject(rejected, summary, None, INVALID_REQUEST_ID)
            elif rid in batch:
                _reject(rejected, summary, None, "duplicate")
            else:
                batch[rid] = outcome if rid == outcome.request_id else replace(outcome, request_id=rid)
        missing = self._join(batch, now, summary, rejected)
        for rid, outcome in missing.items():
            reason = self.held.hold(rid, outcome) if hold else "unknown_request"
            if reason is None:
                summary["pending"] = summary.get("pending", 0) + 1
            else:
                _reject(rejected, summary, None, reason)
        if rejected:
            self.store.add(rejected)
        return summary

    def _join(self, batch: dict[str, Outcome], now: float, summary: Summary,
              rejected: Counts) -> dict[str, Outcome]:
        """Join what the store has, in one transaction; return the outcomes whose prediction is missing."""
        if not batch:
            return {}
        missing: dict[str, Outcome] = {}
        with self.store.transaction() as tx:
            rows = tx.fetch(list(batch))
            counts: Counts = {}
            labelled = []
            for rid, outcome in batch.items():
                row = rows.get(rid)
                if row is None:
                    missing[rid] = outcome
                    continue
                if row.labelled_at is not None:
                    _reject(rejected, summary, row, "duplicate")
                    continue
                info = self.versions.get(row.model, row.model_version) or VersionInfo(
                    row.model, row.model_version, "regression" if row.predicted is None else "classification")
                at = now if outcome.time is None else scoring.timestamp(outcome.time)
                if at is None:
                    _reject(rejected, summary, row, "invalid_time")
                    continue
                pair: Counts = {}
                reason = scoring.pair_counts(row, info, outcome.y_true, at - row.predicted_at, pair,
                                             self.guard.admit)
                if reason is not None:
                    _reject(rejected, summary, row, reason)
                    continue
                add_counts(counts, pair)
                labelled.append((rid, at))
                summary["joined"] = summary.get("joined", 0) + 1
            for rid in tx.expired(list(missing)):
                del missing[rid]
                _reject(rejected, summary, None, "expired_request")
            tx.mark_labelled(labelled)
            tx.add(counts)
        return missing

    def retry_held(self, ids: set[str] | None = None) -> None:
        """Join held outcomes whose prediction has arrived; count those held too long as unknown."""
        chosen, deadline = self.held.take(ids)
        if not chosen:
            return
        summary: Summary = {}
        rejected: Counts = {}
        try:
            missing = self._join({rid: o for rid, (o, _) in chosen.items()}, time.time(), summary, rejected)
        except StoreError:
            self.held.restore(chosen)
            raise
        for rid in missing:
            if chosen[rid][1] < deadline:
                _reject(rejected, summary, None, "unknown_request")
            else:
                self.held.restore({rid: chosen[rid]})
        if rejected:
            self.store.add(rejected)


def _reject(into: Counts, summary: Summary, row: StoredPrediction | None, reason: str) -> None:
    labels = (row.model, row.model_version) if row is not None else (UNKNOWN, UNKNOWN)
    key = (cat.OUTCOMES_REJECTED.name, labels + (reason,))
    into[key] = into.get(key, 0.0) + 1.0
    summary[reason] = summary.get(reason, 0) + 1
