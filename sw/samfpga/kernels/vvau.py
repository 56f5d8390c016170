"""Depthwise convolution as FINN's VVAU computes it: one kernel window per channel, optional thresholds.

Shapes: ``x`` holds, per output pixel, the Kh*Kw window of every channel; weights are (C, Kh*Kw) (or the
depthwise conv layout (C, 1, Kh, Kw)). FINN's VVAU takes its window in one of two element orders:
    "kc"   (..., Kh*Kw, C): kernel position outer, channel inner (an Im2Col / sliding-window generator's output)
    "pe"   (..., C // pe, Kh*Kw, pe): FINN's folded stream order with ``pe`` channels interleaved (a standalone VVAU,
           or one behind a specialised sliding-window generator, which streams in this order; FINN's python model
           takes "kc" only behind the abstract Im2Col / ConvolutionInputGenerator)
``depthwise`` is the exact integer product the RTL computes; ``vvau`` is the graph node as FINN executes it.
"""

from __future__ import annotations

import numpy as np

from .thresholding import multithreshold


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


def vvau(x: np.ndarray, w: np.ndarray, thresholds: np.ndarray | None = None, act_val: float = 0.0,
         pe_interleave: int | None = None) -> np.ndarray:
    """x (1, H, W, K*C), w (C, 1, kh, kw) -> (1, H, W, C) float64, as FINN's python execution of a VVAU node.

    ``pe_interleave``: when the patches do not come from a sliding-window generator FINN's model assumes the
    channel groups of ``pe`` are interleaved with the kernel positions ("pe" order); pass PE then. Accumulation
    is in float64, exact for the integer streams of a streamlined graph (|sum| < 2**53).
    """
    c = w.shape[0]
    wk = np.asarray(w, dtype=np.float64).reshape(c, -1)  # (C, K)
    k = wk.shape[1]
    if x.shape[-1] != k * c:
        raise ValueError(f"VVAU: input width {x.shape[-1]} != kernel {k} * channels {c}")
    patches = window_to_kc(np.asarray(x, dtype=np.float64), c, k, pe_interleave or c)
    acc = np.einsum("...kc,ck->...c", patches, wk)
    if thresholds is not None:
        acc = multithreshold(acc, thresholds, out_bias=act_val)
    return acc
