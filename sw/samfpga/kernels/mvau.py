"""Matrix-vector activation unit (FINN ``MVAU``): ``y = x @ W`` over the last axis, optionally thresholded.

Integer operands are multiplied in float64, which is exact while every partial sum stays below 2**53 (W8A8
dot products of any length the encoder has are below 2**40), i.e. the accelerator's integer accumulator.
``mem_mode="dynamic"`` (both operands streamed: QK^T and AV in attention) broadcasts like ``np.matmul``.
"""

from __future__ import annotations

import numpy as np

from .thresholding import multithreshold


def mvau(x: np.ndarray, w: np.ndarray, thresholds: np.ndarray | None = None, act_val: float = 0.0,
         float_math: bool = False) -> np.ndarray:
    """x (..., MW) times w (MW, MH) or a broadcastable stack (..., MW, MH) -> (..., MH) float64.

    With ``thresholds`` (MH or 1, steps) the accumulator is thresholded (FINN's embedded activation).
    ``float_math``: one operand is a float stream; the product is then computed in float32 as FINN does.
    """
    if x.shape[-1] != w.shape[-2]:
        raise ValueError(f"MVAU: input width {x.shape[-1]} does not match weight rows {w.shape[-2]}")
    if float_math:
        acc = np.matmul(x.astype(np.float32), w.astype(np.float32))
    else:
        acc = np.matmul(x.astype(np.float64), w.astype(np.float64))
    if thresholds is not None:
        acc = multithreshold(acc, thresholds, out_bias=act_val)
    return acc
