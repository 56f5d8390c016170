"""DuplicateStreams (FINN): one stream copied to ``n`` outputs (the residual fork)."""

from __future__ import annotations

import numpy as np


def duplicate(x: np.ndarray, n: int) -> list[np.ndarray]:
    return [x.copy() for _ in range(n)]
