"""The float layers FINN+ runs today on Zynq (LayerNorm, HWSoftmax, float element-wise ops), as its Python models
compute them, in float32.

``softmax`` is scipy.special.softmax's arithmetic (max-shifted exp, divided by the sum) in numpy. ``layer_norm``
follows torch.nn.functional.layer_norm (no affine; FINN extracts scale and bias): float32 output of
(x - mean) * rsqrt(var + eps) with the moments taken in float64. torch's own float32 reduction order is not
reproduced, so results can differ from FINN's Python model in the last ulp; a quantized output changes only
where such a value lies within an ulp of a threshold (the tests measure how often).
"""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32 in and out."""
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - np.amax(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layer_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """Normalise over the last axis (no scale/bias), float32 out."""
    x = np.asarray(x, dtype=np.float32)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(np.float32)
    return ((x - mean.astype(np.float32)) * rstd).astype(np.float32)


ELEMENTWISE = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
    "Max": np.maximum, "Min": np.minimum,
}


def elementwise(op: str, a: np.ndarray, b: np.ndarray, a_int: bool, b_int: bool) -> np.ndarray:
    """FINN's Elementwise<op>: integer operands in int64, float operands float32, numpy broadcasting and type
    promotion, result rounded to float32 (FINN's container type)."""
    if op not in ELEMENTWISE:
        raise ValueError(f"unsupported element-wise op {op!r}; known: {sorted(ELEMENTWISE)}")
    a = a.astype(np.int64) if a_int else a.astype(np.float32)
    b = b.astype(np.int64) if b_int else b.astype(np.float32)
    return ELEMENTWISE[op](a, b).astype(np.float32)
