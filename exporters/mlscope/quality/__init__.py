"""Model quality with late ground truth: prediction store, outcome join, windowed metrics, estimates.

    quality = Quality("quality.db")                        # SQLite (WAL); Quality() keeps it in memory
    monitor = ModelMonitor("churn", "3.2.0", quality=quality, classes=model.classes_)
    with monitor.track(request_id) as p:
        p.output, p.proba = label, probabilities           # stored by a background writer
    monitor.record_outcome(request_id, y_true)             # later, when the ground truth arrives
"""
from .baseline import baseline_metrics
from .core import Quality
from .estimate import Estimate, estimate
from .items import Outcome, OutcomeItem, PredictionItem
from .store import MemoryStore, SQLiteStore, Store, StoreError, open_store
from .writer import Sink

__all__ = ["Outcome", "OutcomeItem", "PredictionItem", "Quality", "Sink", "Estimate", "estimate", "baseline_metrics",
           "MemoryStore", "SQLiteStore", "Store", "StoreError", "open_store"]
