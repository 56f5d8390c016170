"""Integer softmax (``IntSoftmax``) with the logit scale, the attention-logit bias and the output quantizer
folded in, bit for bit.

The float model computes, per row of ``n`` logits ``a`` (integers: the QK^T accumulator),
``y = clip(round(softmax(a * s + B[r]) / s_o), 0, qmax)`` with ``s`` the logit scale (dequantization scales of
q and k times 1/sqrt(d)), ``B[r]`` the relative-position bias row of this (head, query) and ``s_o`` the output
quantizer's scale. The integer version works in base 2 with ``G`` fractional bits (L2E = log2(e)):

    u  = (a * M + BQ[r] + 2^(P-1)) >> P      M  = round(s * L2E * 2^(G+P)),  BQ = round(B * L2E * 2^(G+P))
                                             (u ~= (a * s + B) * L2E * 2^G, rounded half up)
    v  = max(u) - u  >= 0
    e  = EXP[v mod 2^G] >> (v >> G)          EXP[f] = round(2^E * 2^(-f / 2^G)),  0 when v >> G > E
    S  = sum(e)                              (>= 2^E: the maximum contributes EXP[0] = 2^E)
    RC = K // S                              K = round(2^W / s_o)      (one division per row)
    y  = min((e * RC + 2^(W-1)) >> W, qmax)  (round half up)

``e / S`` is the softmax (to the table's precision); ``e * K / S / 2^W ~= e / S / s_o``.
Row ``r`` of the input uses bias row ``r mod rows`` (rows = heads * n for TinyViT's (heads, n, n) table,
broadcast over the windows). Shapes: ``a`` is ``(..., n)``; output ``(..., n)`` int64. numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

L2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class IntSoftmaxParams:
    """Fixed-point configuration of one IntSoftmax layer.

    n: row length (softmax axis). mult: M (> 0). pre_shift: P (>= 1). bias: int64 (rows, n) BQ table, or None.
    exp_frac_bits: G (EXP has 2^G entries). exp_bits: E. recip_bits: W. out_num: K. out_bits: unsigned width.
    """

    n: int
    mult: int
    pre_shift: int
    out_num: int
    recip_bits: int
    out_bits: int = 8
    exp_frac_bits: int = 6
    exp_bits: int = 16
    bias: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"IntSoftmax: row length must be >= 1, got {self.n}")
        if self.mult <= 0 or self.pre_shift < 1:
            raise ValueError(f"IntSoftmax: need mult > 0 and pre_shift >= 1, got {self.mult}, {self.pre_shift}")
        if self.out_num <= 0:
            raise ValueError(f"IntSoftmax: out_num must be > 0, got {self.out_num}")
        if self.bias is not None:
            b = np.asarray(self.bias)
            if b.ndim != 2 or b.shape[1] != self.n:
                raise ValueError(f"IntSoftmax: bias table must be (rows, {self.n}), got {b.shape}")

    @cached_property
    def table(self) -> np.ndarray:
        """EXP table, int64 (2^G,)."""
        f = np.arange(1 << self.exp_frac_bits, dtype=np.float64)
        return np.floor(2.0 ** self.exp_bits * 2.0 ** (-f / (1 << self.exp_frac_bits)) + 0.5).astype(np.int64)

    @property
    def out_max(self) -> int:
        return (1 << self.out_bits) - 1


#: Node attributes of an ``IntSoftmax`` layer that configure the kernel (FINN custom op and graph.json alike).
ATTRS = ("NumChannels", "mult", "pre_shift", "out_num", "recip_bits", "exp_frac_bits", "exp_bits")


def params_from_attrs(attrs: Mapping, out_bits: int, bias: np.ndarray | None = None) -> IntSoftmaxParams:
    """Parameters of an ``IntSoftmax`` node from its attributes (``ATTRS``; absent optional ones take the defaults
    above), the bit width of its unsigned output datatype and its bias table input (integers, (rows, n)) or None.
    Used by the FINN custom op and by ``samfpga.intexec``, so both read a node the same way."""
    if bias is not None:
        b = np.asarray(bias)
        if not np.array_equal(b, np.round(b)):
            raise ValueError("IntSoftmax: bias table holds non-integer values")
        bias = b.astype(np.int64)
    optional = {k: int(attrs[k]) for k in ("exp_frac_bits", "exp_bits") if k in attrs}
    return IntSoftmaxParams(n=int(attrs["NumChannels"]), mult=int(attrs["mult"]), pre_shift=int(attrs["pre_shift"]),
                            out_num=int(attrs["out_num"]), recip_bits=int(attrs["recip_bits"]),
                            out_bits=int(out_bits), bias=bias, **optional)


def make_params(n: int, scale: float, out_scale: float, bias: np.ndarray | None = None, out_bits: int = 8,
                exp_frac_bits: int = 6, exp_bits: int = 16, mult_bits: int = 16,
                recip_extra_bits: int = 12) -> IntSoftmaxParams:
    """Parameters from the float model: ``scale`` s (> 0), ``out_scale`` s_o (> 0), ``bias`` float (rows, n).

    ``mult_bits``: significant bits of M (P is chosen so that 2^(mult_bits-1) <= M < 2^mult_bits).
    ``recip_extra_bits``: bits of RC beyond what the output needs (W = E + bitlen(n) + out_bits + this).
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"IntSoftmax: logit scale must be positive and finite, got {scale}")
    if not (out_scale > 0 and math.isfinite(out_scale)):
        raise ValueError(f"IntSoftmax: output scale must be positive and finite, got {out_scale}")
    g = exp_frac_bits
    base = scale * L2E * 2.0 ** g
    # P such that M = round(base * 2^P) has mult_bits significant bits
    p = max(1, mult_bits - math.frexp(base)[1])
    mult = int(round(base * 2.0 ** p))
    bq = None
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != n or not np.isfinite(b).all():
            raise ValueError(f"IntSoftmax: bias must be finite with shape (rows, {n}), got {b.shape}")
        bq = np.round(b * L2E * 2.0 ** (g + p)).astype(np.int64)
    w = exp_bits + int(n).bit_length() + out_bits + recip_extra_bits
    out_num = int(round(2.0 ** w / out_scale))
    return IntSoftmaxParams(n=n, mult=mult, pre_shift=p, out_num=out_num, recip_bits=w, out_bits=out_bits,
                            exp_frac_bits=g, exp_bits=exp_bits, bias=bq)


def int_softmax(a: np.ndarray, p: IntSoftmaxParams) -> np.ndarray:
    """IntSoftmax of ``a`` (..., n) integer logits -> (..., n) int64 in [0, 2^out_bits - 1]."""
    ai = np.asarray(a)
    if ai.shape[-1] != p.n:
        raise ValueError(f"IntSoftmax: last axis {ai.shape[-1]} != n {p.n}")
    if not np.array_equal(ai, np.round(ai)):
        raise ValueError("IntSoftmax: input holds non-integer values")
    ai = ai.astype(np.int64)
    if np.abs(ai).max(initial=0) * p.mult >= 1 << 62:
        raise ValueError("IntSoftmax: logits * mult overflow int64")
    rows = ai.reshape(-1, p.n)
    t = rows * p.mult + (np.int64(1) << (p.pre_shift - 1))
    if p.bias is not None:
        nb = p.bias.shape[0]
        idx = np.arange(rows.shape[0]) % nb
        t = t + p.bias[idx]
    u = t >> p.pre_shift
    v = u.max(axis=1, keepdims=True) - u
    g = p.exp_frac_bits
    q = v >> g
    e = np.where(q > p.exp_bits, 0, p.table[v & ((1 << g) - 1)] >> np.minimum(q, p.exp_bits + 1))
    s = e.sum(axis=1, keepdims=True)
    rc = p.out_num // s
    y = (e * rc + (np.int64(1) << (p.recip_bits - 1))) >> p.recip_bits
    return np.minimum(y, p.out_max).reshape(ai.shape)
