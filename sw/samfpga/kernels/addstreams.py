"""AddStreams (FINN ``AddStreams`` / the project's AddStreams_rtl): exact integer sum of two equal-shape streams."""

from __future__ import annotations

import numpy as np


def addstreams(a: np.ndarray, b: np.ndarray, out_min: float | None = None, out_max: float | None = None) -> np.ndarray:
    """a + b (same shape) in float64 (exact on integers); with a range, a sum outside it is an error (the
    hardware's output width would wrap)."""
    if a.shape != b.shape:
        raise ValueError(f"AddStreams: input shapes differ {a.shape} vs {b.shape}")
    out = a.astype(np.float64) + b.astype(np.float64)
    if out_min is not None and out.size and (out.min() < out_min or out.max() > out_max):
        raise ValueError(f"AddStreams: sum range [{out.min()}, {out.max()}] exceeds [{out_min}, {out_max}]")
    return out
