"""Integer LayerNorm (``IntLayerNorm``): integer statistics and a reciprocal-square-root table, bit for bit.

For one token ``x`` of ``C`` integers (the quantized residual stream, any power-of-two scale already absorbed
into ``eps``), with every intermediate an exact integer except the table:

    S1 = sum(x)                    S2 = sum(x * x)
    D  = C * S2 - S1 * S1          (= C^2 * var, exact)
    E  = max(D + eps_int, 1)       eps_int = round(C^2 * eps)
    d  = C * x - S1                (= C * (x - mean), exact)
    k  = ceil((bitlen(E) - T) / 2);  m = E >> 2k  (E << -2k when k < 0),  so 2^(T-2) <= m < 2^T
    R  = RSQRT[m - 2^(T-2)]        = round(2^S / sqrt(m + 1/2)),  S = R_BITS + (T - 2) / 2
    z  = clip((d * R + 2^(sh-1)) >> sh, out range),   sh = S + k - F      (round half up)

(negated on the channels flagged in ``negate``), so ``z ~= 2^F * (x - mean) / sqrt(var + eps)``: the LayerNorm output as a signed fixed-point integer with ``F``
fractional bits. The per-channel gamma/beta and the output quantizer stay in the following threshold layer
(their thresholds are multiplied by 2^F). The only approximation is the table (relative error < 2^-(T-1)
from the index truncation, plus 2^-R_BITS from rounding its entries) and the final rounding.

Shapes: ``x`` is ``(..., C)`` (the last axis is normalised), values integers in any float or int dtype; the
result is ``(..., C)`` int64. Everything here is numpy only (runs on the board).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class IntLayerNormParams:
    """Fixed-point configuration of one IntLayerNorm layer.

    channels: C, length of the normalised axis.
    eps_int: round(C^2 * eps) with eps in units of the input integers squared (>= 0).
    frac_bits: F, fractional bits of the output.
    out_bits: signed output width (values saturate).
    lut_bits: T, table index width (even); the table has 3 * 2^(T-2) entries.
    r_bits: width of a table entry (unsigned).
    negate: per-channel 0/1 flags; flagged channels output -z (before saturation), or None.
    """

    channels: int
    eps_int: int
    frac_bits: int = 8
    out_bits: int = 14
    lut_bits: int = 10
    r_bits: int = 16
    negate: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels < 2:
            raise ValueError(f"IntLayerNorm needs at least 2 channels, got {self.channels}")
        if self.negate is not None and len(self.negate) != self.channels:
            raise ValueError(f"negate has {len(self.negate)} flags for {self.channels} channels")
        if self.eps_int < 0:
            raise ValueError(f"eps_int must be >= 0, got {self.eps_int}")
        if self.lut_bits < 4 or self.lut_bits % 2:
            raise ValueError(f"lut_bits must be even and >= 4, got {self.lut_bits}")
        if not 2 <= self.out_bits <= 32:
            raise ValueError(f"out_bits must be in [2, 32], got {self.out_bits}")
        # the smallest shift (E = 1, k = -(T-2)/2) must still round
        if self.shift_bias - (self.lut_bits - 2) // 2 < 1:
            raise ValueError(f"frac_bits={self.frac_bits} too large for r_bits={self.r_bits}, "
                             f"lut_bits={self.lut_bits}: the output shift would be < 1")

    @property
    def table_scale_bits(self) -> int:
        """S: table entries are round(2^S / sqrt(m + 1/2))."""
        return self.r_bits + (self.lut_bits - 2) // 2

    @property
    def shift_bias(self) -> int:
        """S - F: the output shift is this plus k."""
        return self.table_scale_bits - self.frac_bits

    @cached_property
    def table(self) -> np.ndarray:
        """RSQRT table, int64 of shape (3 * 2^(T-2),), indexed by m - 2^(T-2)."""
        lo, hi = 1 << (self.lut_bits - 2), 1 << self.lut_bits
        m = np.arange(lo, hi, dtype=np.float64)
        r = np.floor(2.0 ** self.table_scale_bits / np.sqrt(m + 0.5) + 0.5).astype(np.int64)
        if r.max() >= 1 << self.r_bits:
            raise AssertionError("rsqrt table entry exceeds r_bits")  # excluded by the choice of S
        return r


#: Node attributes of an ``IntLayerNorm`` layer that configure the kernel (FINN custom op and graph.json alike).
ATTRS = ("NumChannels", "eps_int", "frac_bits", "lut_bits", "r_bits", "negate")


def params_from_attrs(attrs: Mapping, out_bits: int) -> IntLayerNormParams:
    """Parameters of an ``IntLayerNorm`` node from its attributes (``ATTRS``; absent optional ones take the
    defaults above) and the bit width of its signed output datatype. Used by the FINN custom op and by
    ``samfpga.intexec``, so both read a node the same way."""
    optional = {k: int(attrs[k]) for k in ("frac_bits", "lut_bits", "r_bits") if k in attrs}
    return IntLayerNormParams(channels=int(attrs["NumChannels"]), eps_int=int(attrs["eps_int"]),
                              out_bits=int(out_bits), negate=tuple(int(b) for b in attrs.get("negate", ())) or None,
                              **optional)


def out_bits_for(channels: int, frac_bits: int) -> int:
    """Signed width holding every output: |x - mean| / std <= sqrt(C - 1) for C values."""
    return int(math.ceil(math.sqrt(channels - 1) * 2 ** frac_bits)).bit_length() + 1


def max_abs_output(p: IntLayerNormParams) -> int:
    """An upper bound on |z| before the output clip, for every input: |x - mean| / sqrt(var) <= sqrt(C - 1), eps
    only shrinks it, and the table over-estimates 1 / sqrt(E) by at most max over its entries of
    R[m] sqrt(m + 1) / 2^S (E / 4^k lies in [m, m + 1): the index truncates), plus the final rounding's 1/2. A layer
    whose bound fits a narrower signed width than ``out_bits`` never saturates, so it computes the same at any
    width at least that (the engine runs LayerNorms of several widths at its widest)."""
    lo = 1 << (p.lut_bits - 2)
    m = np.arange(lo, 1 << p.lut_bits, dtype=np.float64)
    ratio = float((p.table * np.sqrt(m + 1.0)).max()) / 2.0 ** p.table_scale_bits
    # float error of the product is far below the unit the floor keeps; +1 covers it anyway
    return int(math.floor(math.sqrt(p.channels - 1) * 2.0 ** p.frac_bits * ratio + 0.5)) + 1


def eps_int_for(channels: int, eps: float) -> int:
    """``round(C^2 * eps)`` (``eps`` in units of the input integers squared)."""
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    return int(round(channels * channels * float(eps)))


def _bitlen(e: np.ndarray) -> np.ndarray:
    """Bit length of positive int64 values (exact, no float rounding)."""
    n = np.zeros(e.shape, dtype=np.int64)
    v = e.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = v >= (1 << step)
        n += np.where(big, step, 0)
        v = np.where(big, v >> step, v)
    return n + (v > 0)


def max_abs_input(p: IntLayerNormParams) -> int:
    """Largest input magnitude whose statistics stay exact in int64: C^2 * max|x|^2 + eps_int < 2^62 (C * S2,
    S1^2 and E) and |d * R| <= 2 C max|x| 2^r_bits < 2^62. The neck's LayerNorm2d sees a conv accumulator
    (INT21..INT24 in the builds measured), far above the 8-bit residual stream of the blocks."""
    c = p.channels
    lim = math.isqrt(max((1 << 62) - 1 - p.eps_int, 0) // (c * c))
    return min(lim, ((1 << 62) - 1) // (2 * c << p.r_bits))


def int_layernorm(x: np.ndarray, p: IntLayerNormParams) -> np.ndarray:
    """IntLayerNorm of ``x`` (..., C) integers -> (..., C) int64 in [-2^(out_bits-1), 2^(out_bits-1) - 1]."""
    xi = np.asarray(x)
    if xi.shape[-1] != p.channels:
        raise ValueError(f"IntLayerNorm: last axis {xi.shape[-1]} != channels {p.channels}")
    if not np.array_equal(xi, np.round(xi)):
        raise ValueError("IntLayerNorm: input holds non-integer values")
    xi = xi.astype(np.int64)
    xmax = int(np.abs(xi).max(initial=0))
    if xmax > max_abs_input(p):
        raise ValueError(f"IntLayerNorm: input magnitude {xmax} above {max_abs_input(p)} would overflow the int64 "
                         f"statistics (C = {p.channels})")
    c = p.channels
    s1 = xi.sum(axis=-1, keepdims=True)
    s2 = (xi * xi).sum(axis=-1, keepdims=True)
    e = np.maximum(c * s2 - s1 * s1 + p.eps_int, 1)
    t = p.lut_bits
    k = (_bitlen(e) - t + 1) // 2  # ceil((bitlen - T) / 2), may be negative
    m = np.where(k >= 0, e >> np.maximum(2 * k, 0), e << np.maximum(-2 * k, 0))
    r = p.table[m - (1 << (t - 2))]
    d = c * xi - s1
    sh = p.shift_bias + k
    z = (d * r + (np.int64(1) << (sh - 1))) >> sh
    if p.negate is not None:
        z = np.where(np.asarray(p.negate, dtype=bool), -z, z)
    lo, hi = -(1 << (p.out_bits - 1)), (1 << (p.out_bits - 1)) - 1
    return np.clip(z, lo, hi)
