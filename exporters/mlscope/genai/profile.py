"""A reference profile of prompt and response lengths, so a change in what users ask is drift like any feature's."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..drift.build import build_profile
from ..drift.profile import ReferenceProfile
from .monitor import LENGTH_FEATURES


def length_profile(input_tokens: Any, output_tokens: Any, *, model: str, model_version: str,
                   **settings: Any) -> ReferenceProfile:
    """Profile the token counts of reference generations (e.g. a week of traffic, or an evaluation set), for
    ``GenerationMonitor(reference=...)``; ``settings`` as :func:`mlscope.drift.build_profile`'s."""
    data = {LENGTH_FEATURES[0]: np.asarray(input_tokens, dtype=np.float64),
            LENGTH_FEATURES[1]: np.asarray(output_tokens, dtype=np.float64)}
    return build_profile(data, model=model, model_version=model_version, **settings)
