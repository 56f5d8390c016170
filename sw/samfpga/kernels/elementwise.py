"""Element-wise integer kernels of two streams: the residual add and the gating product.

Inputs are integer-valued arrays of one shape (any float or int dtype; FINN carries integers in float32);
results are exact int64 arrays of the same shape. A result that does not fit the layer's output datatype is an
error of the caller (the hardware would wrap), so ``check_range`` is provided for it.
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


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact a * b (int64; ``b`` may broadcast to ``a``'s shape, e.g. a per-channel constant)."""
    out = _as_int(a, "mul input 0") * _as_int(b, "mul input 1")
    if out.shape != np.shape(a):
        raise ValueError(f"mul: operand of shape {np.shape(b)} does not broadcast to {np.shape(a)}")
    return out


def check_range(out: np.ndarray, lo: float, hi: float, what: str) -> None:
    """Raise ValueError when ``out`` leaves [lo, hi] (e.g. a datatype's range)."""
    if out.size and (out.min() < lo or out.max() > hi):
        raise ValueError(f"{what}: result range [{out.min()}, {out.max()}] exceeds [{lo}, {hi}]")
