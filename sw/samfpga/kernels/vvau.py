"""Depthwise convolution as FINN's VVAU computes it (no activation): one kernel window per channel.

Shapes: ``x`` holds, per output pixel, the Kh*Kw window of every channel; ``w`` is (C, Kh*Kw). Results are exact
int64. FINN's VVAU takes its window in one of two element orders (``window_order``):
    "kc"   (..., Kh*Kw, C): kernel position outer, channel inner (the output of an Im2Col)
    "pe"   (..., C // pe, Kh*Kw, pe): FINN's folded stream order with ``pe`` channels interleaved (a standalone VVAU,
           or one behind a specialised sliding-window generator, which streams in this order)
"""

from __future__ import annotations

import numpy as np


def window_to_kc(x: np.ndarray, channels: int, kernel: int, pe: int) -> np.ndarray:
    """(..., C*K) in the "pe" order (C // pe, K, pe) -> (..., K, C). ``pe`` = C gives the "kc" order itself."""
    if channels % pe:
        raise ValueError(f"PE={pe} does not divide Channels={channels}")
    x = np.asarray(x)
    if x.shape[-1] != channels * kernel:
        raise ValueError(f"window of {x.shape[-1]} elements, expected Channels*Kh*Kw = {channels * kernel}")
    lead = x.shape[:-1]
    x = x.reshape(*lead, channels // pe, kernel, pe)
    x = np.moveaxis(x, -2, -3)  # (..., K, C//pe, pe)
    return x.reshape(*lead, kernel, channels)


def depthwise(x_kc: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[..., c] = sum_k x_kc[..., k, c] * w[c, k], exact (int64). x_kc: (..., K, C); w: (C, K)."""
    x = np.asarray(x_kc)
    w = np.asarray(w)
    if w.ndim != 2 or x.shape[-2:] != (w.shape[1], w.shape[0]):
        raise ValueError(f"depthwise: window shape {x.shape[-2:]} does not match weights {w.shape} (C, K)")
    xi, wi = np.rint(x).astype(np.int64), np.rint(w).astype(np.int64)
    if not (np.array_equal(xi, x) and np.array_equal(wi, w)):
        raise ValueError("depthwise: inputs and weights must be integer-valued")
    return np.einsum("...kc,ck->...c", xi, wi)
