"""Sliding-window generator (FINN ``ConvolutionInputGenerator``, QONNX ``Im2Col`` without padding).

(1, H, W, C) NHWC -> (1, OH, OW, kh*kw*C): each output pixel's patch in (kernel row, kernel column, channel)
order, the order FINN's MVAU/VVAU weights use.
"""

from __future__ import annotations

import numpy as np


def sliding_window(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                   dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"sliding window {kh}x{kw} (dilation {dh}x{dw}) does not fit a {h}x{w} input")
    out = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = x[:, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw, :]
    return out.reshape(n, oh, ow, kh * kw * c)
