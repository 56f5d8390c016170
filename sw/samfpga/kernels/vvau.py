"""Vector-vector activation unit (FINN ``VVAU``): depthwise convolution on sliding-window patches.

Input: (1, H, W, K*C) patches from the sliding-window generator, element order (kernel position, channel);
weights (C, 1, kh, kw) (depthwise conv layout). ``y[h, w, c] = sum_k x[h, w, k, c] * W[c, 0, k]`` exactly.
"""

from __future__ import annotations

import numpy as np

from .thresholding import multithreshold


def vvau(x: np.ndarray, w: np.ndarray, thresholds: np.ndarray | None = None, act_val: float = 0.0,
         pe_interleave: int | None = None) -> np.ndarray:
    """x (1, H, W, K*C), w (C, 1, kh, kw) -> (1, H, W, C) float64.

    ``pe_interleave``: when the patches do not come from a sliding-window generator FINN's model assumes
    the channel groups of ``pe`` are interleaved with the kernel positions ((C/pe, K, pe) order); pass PE then.
    """
    c, _, kh, kw = w.shape
    k = kh * kw
    n, h, wd, _ = x.shape
    if x.shape[-1] != k * c:
        raise ValueError(f"VVAU: input width {x.shape[-1]} != kernel {kh}x{kw} * channels {c}")
    patches = x.astype(np.float64)
    if pe_interleave and pe_interleave != c:
        pe = pe_interleave
        patches = patches.reshape(n, h, wd, c // pe, k, pe).transpose(0, 1, 2, 4, 3, 5)
    patches = patches.reshape(n, h, wd, k, c)
    wk = w.reshape(c, k).T.astype(np.float64)  # (K, C)
    acc = np.einsum("nhwkc,kc->nhwc", patches, wk)
    if thresholds is not None:
        acc = multithreshold(acc, thresholds, out_bias=act_val)
    return acc
