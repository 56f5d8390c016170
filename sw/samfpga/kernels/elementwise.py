"""Element-wise integer kernels of two streams (the residual add).

Inputs are integer-valued arrays of one shape (any float or int dtype; FINN carries integers in float32);
results are exact int64 arrays of the same shape. Whether a result fits the layer's output datatype (the hardware
would wrap) is checked by the caller.
"""

from __future__ import annotations

import numpy as np


def _as_int(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    xi = np.rint(x).astype(np.int64)
    if not np.array_equal(xi, x):
        raise ValueError(f"{name}: expected integer values, got non-integers (e.g. {x[xi != x].ravel()[:3]})")
    return xi


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact a + b (int64, same shape; shapes must match)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"add: input shapes differ {np.shape(a)} vs {np.shape(b)}")
    return _as_int(a, "add input 0") + _as_int(b, "add input 1")
