"""mlscope: observability for machine-learning models in production."""
from __future__ import annotations

from .monitor import ModelMonitor, PredictionTracker

__version__ = "0.2.0.dev0"
__all__ = ["ModelMonitor", "PredictionTracker", "__version__"]
