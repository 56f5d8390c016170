"""Multi-thresholding (FINN ``Thresholding`` / QONNX ``MultiThreshold``): value -> number of thresholds it reaches.

``y[..., c] = out_scale * #{t in T[c] : x[..., c] >= t} + out_bias``; channels last, thresholds (C, steps) or
(1, steps) (shared). The comparison runs in the input's own precision: float32 streams (behind a float layer)
are compared in float32 against float32 thresholds, as FINN's Python model and the RTL comparator do; integer
streams are exact in float64.
"""

from __future__ import annotations

import numpy as np


def multithreshold(x: np.ndarray, thresholds: np.ndarray, out_bias: float = 0.0, out_scale: float = 1.0) -> np.ndarray:
    """Threshold ``x`` (..., C) against ``thresholds`` (C or 1, steps), channels last.

    Returns float64 array of x's shape holding ``out_scale * count + out_bias``. Uses a binary search per
    channel (thresholds sorted ascending, as FINN requires) so no (..., C, steps) comparison tensor is built.
    """
    x = np.asarray(x)
    t = np.asarray(thresholds, dtype=x.dtype if x.dtype == np.float32 else np.float64)
    if t.ndim != 2:
        raise ValueError(f"thresholds must be (C, steps), got shape {t.shape}")
    c = x.shape[-1]
    if t.shape[0] not in (1, c):
        raise ValueError(f"thresholds have {t.shape[0]} channels, input has {c} (last axis of {x.shape})")
    if np.any(np.diff(t, axis=1) < 0):
        raise ValueError("thresholds must be sorted ascending along the steps axis")
    flat = x.reshape(-1, c)
    count = np.empty(flat.shape, dtype=np.int64)
    if t.shape[0] == 1:
        count[:] = np.searchsorted(t[0], flat, side="right")
    else:
        for ch in range(c):
            # side="right": x equal to a threshold counts that threshold (x >= t)
            count[:, ch] = np.searchsorted(t[ch], flat[:, ch], side="right")
    return (out_scale * count.astype(np.float64) + out_bias).reshape(x.shape)
