"""Bilinear resampling of (..., H, W) float arrays with torch's ``F.interpolate`` semantics (align_corners=False,
with or without antialias), as separable matrices; numpy only."""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=32)
def _matrix(n_in: int, n_out: int, antialias: bool) -> np.ndarray:
    """(n_out, n_in) float32 weights."""
    scale = n_in / n_out
    m = np.zeros((n_out, n_in), dtype=np.float64)
    if antialias:
        # torch's _upsample_bilinear2d_aa: triangle filter widened by the downscale factor, renormalised
        support = max(scale, 1.0)
        inv = 1.0 / scale if scale >= 1.0 else 1.0
        for i in range(n_out):
            center = scale * (i + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), n_in)
            j = np.arange(lo, hi)
            w = np.maximum(0.0, 1.0 - np.abs((j - center + 0.5) * inv))
            total = w.sum()
            if total > 0:
                m[i, lo:hi] = w / total
        return m.astype(np.float32)
    for i in range(n_out):
        src = max(scale * (i + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[i, i0] += 1.0 - lam
        m[i, i1] += lam
    return m.astype(np.float32)


def resize_bilinear(x: np.ndarray, size: tuple[int, int], antialias: bool = False) -> np.ndarray:
    """Resize the last two axes of ``x`` (..., H, W) float32 to ``size`` (h, w)."""
    h, w = size
    if x.shape[-2:] == (h, w):
        return x.astype(np.float32, copy=False)
    my = _matrix(x.shape[-2], h, antialias)
    mx = _matrix(x.shape[-1], w, antialias)
    return np.matmul(np.matmul(my, x.astype(np.float32, copy=False)), mx.T)


def to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (torch's ``.to(torch.bfloat16)``)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)


def from_bf16(b: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32."""
    return (b.astype(np.uint32) << 16).view(np.float32)
