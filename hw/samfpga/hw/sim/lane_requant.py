"""The engine's integer requantiser, ``clip((x * S + B) >> T)`` per channel, from a FINN graph's Requant or
Thresholding node, exactly.

The layer-sequential engine (``samfpga.hw.plan.engine``) has no threshold memories: every requantisation runs on a
requantiser lane (token_batch_mvu.sv's, on the GEMM unit's output; one per lane on the LayerNorm's output and
after the residual adder), with S, B and T of ``scale_bits`` / ``bias_bits`` / ``shift_bits`` (the unit's RS_BITS /
RB_BITS / RT_BITS). A Requant node maps through FINN+'s own fixed-point decomposition
(``samfpga.kernels.requant.fixed_point_params``); a Thresholding node that the build kept (its thresholds are not
a float32 Requant's, ``samfpga.hw.build.requant``) is searched for an integer (S, B, T) that reproduces it on every
integer input of its range: ``g(x) = clip(floor((x S + B) / 2^T))`` and the thresholds' step function are both
monotone in x, so they are equal on the range iff they are equal at its ends and at each threshold and its
predecessor (the breakpoints), which is what the search solves for and ``from_thresholds`` checks. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samfpga.kernels.requant import out_range


def signed_bits(v: np.ndarray) -> int:
    """Bits of the two's complement range holding every value of ``v`` (at least 2): a lane's S / B width."""
    lo, hi = int(np.min(v)), int(np.max(v))
    return max(2, max((-lo - 1).bit_length(), hi.bit_length()) + 1)


@dataclass(frozen=True)
class LaneRequant:
    """Per channel ``clip((x * scale + bias) >> shift, lo, hi)``; arrays (C,) of integers."""

    scale: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    out_bits: int
    out_signed: bool

    @property
    def channels(self) -> int:
        return len(self.scale)

    def take(self, channels: np.ndarray) -> LaneRequant:
        """The parameters of ``channels`` (an index array), in that order."""
        return LaneRequant(self.scale[channels], self.bias[channels], self.shift[channels], self.out_bits,
                           self.out_signed)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """x (..., C) integers -> (..., C) int64 (python integers inside: x * S + B may pass 63 bits)."""
        x = np.asarray(x)
        if x.shape[-1] != self.channels:
            raise ValueError(f"requantiser of {self.channels} channels applied to {x.shape[-1]}")
        v = (x.astype(object) * self.scale.astype(object) + self.bias.astype(object)) >> self.shift.astype(object)
        return np.clip(v, *out_range(self.out_bits, self.out_signed)).astype(np.int64)


def int_dtype(dtype: str) -> tuple[int, bool]:
    """(bits, signed) of a QONNX integer datatype name (INTk, UINTk)."""
    from samfpga.intexec.executor import dtype_bits

    return dtype_bits(dtype), dtype.startswith("INT")


def dtype_limits(dtype: str) -> tuple[int, int]:
    """(lowest, highest) integer of a QONNX integer datatype name."""
    return out_range(*int_dtype(dtype))


def from_requant(scale: np.ndarray, bias: np.ndarray, channels: int, in_bits: int, out_dtype: str,
                 narrow: bool = False) -> LaneRequant:
    """FINN+'s Requant (float32 ``scale`` / ``bias``, one value or one per channel) on ``in_bits``-bit inputs as
    requant.sv decomposes it. ValueError where that decomposition drops input bits (the lanes do not)."""
    from samfpga.kernels.requant import fixed_point_params

    if narrow:
        raise ValueError("narrow-range Requant: the engine's requantiser clips to the full range")
    out_bits, signed = int_dtype(out_dtype)
    sb = [np.broadcast_to(np.asarray(v, np.float32).ravel(), (channels,)) if np.size(v) == 1
          else np.asarray(v, np.float32).ravel() for v in (scale, bias)]
    p = fixed_point_params(sb[0], sb[1], in_bits, out_bits)
    if p.x_drop:
        raise ValueError(f"Requant on {in_bits}-bit inputs drops {p.x_drop} LSBs in requant.sv's decomposition")
    return LaneRequant(np.asarray(p.scale, np.int64), np.asarray(p.bias, np.int64), np.asarray(p.shift, np.int64),
                       out_bits, signed)


def _targets(t: np.ndarray, out_bias: int, lo: int, hi: int, olo: int, ohi: int) -> tuple[np.ndarray, np.ndarray]:
    """One channel's breakpoints on [lo, hi] (both ends, each threshold and its predecessor: where a monotone step
    function can change) and the thresholds' outputs there."""
    x = np.unique(np.clip(np.concatenate([t, t - 1, [lo, hi]]), lo, hi)).astype(np.int64)
    return x, np.clip(out_bias + np.searchsorted(t, x, side="right"), olo, ohi)


def _channel(t: np.ndarray, out_bias: int, lo: int, hi: int, olo: int, ohi: int, scale_bits: int,
             bias_bits: int, shift_bits: int) -> tuple[int, int, int] | None:
    """(S, B, T) reproducing one channel's thresholds ``t`` (sorted integers) on [lo, hi], or None."""
    x, want = _targets(t, out_bias, lo, hi, olo, ohi)
    inner = t[(t > lo) & (t <= hi)]
    if len(inner) >= 2:
        d = float(np.polyfit(np.arange(len(inner)), inner, 1)[0])
    else:  # at most one step inside the range: any slope does; a large one keeps B small
        d = float(max(hi - lo, 1))
    if not d > 0:
        return None
    s_max, b_max = 1 << (scale_bits - 1), 1 << (bias_bits - 1)
    up, down = want > olo, want < ohi  # the rows that bound B from below / above
    for shift in range((1 << shift_bits) - 1, -1, -1):
        if (abs(olo) + abs(ohi) + 2) << shift >= 1 << 62 or (max(abs(lo), abs(hi)) + 1) * s_max >= 1 << 62:
            continue
        s0 = (1 << shift) / d
        if s0 >= s_max or s0 < 0.5:
            continue
        cand = np.arange(max(1, int(s0) - 64), min(s_max - 1, int(s0) + 65), dtype=np.int64)
        xs = cand[:, None] * x[None, :]  # (S, P)
        b_lo = np.where(up[None, :], (want[None, :] << shift) - xs, np.iinfo(np.int64).min).max(axis=1)
        b_hi = np.where(down[None, :], ((want[None, :] + 1) << shift) - xs - 1, np.iinfo(np.int64).max).min(axis=1)
        ok = (b_lo <= b_hi) & (b_hi >= -b_max) & (b_lo < b_max)
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(np.abs(cand[ok] - s0))])
            lo_b, hi_b = max(int(b_lo[i]), -b_max), min(int(b_hi[i]), b_max - 1)
            return int(cand[i]), (lo_b + hi_b) // 2, shift
    return None


def from_thresholds(thresholds: np.ndarray, out_bias: int, in_lo: int, in_hi: int, out_dtype: str,
                    scale_bits: int = 18, bias_bits: int = 40, shift_bits: int = 6) -> LaneRequant:
    """A MultiThreshold (``thresholds`` (C, N) or (1, N), ``out_bias``: FINN's ActVal) on integer inputs in
    [in_lo, in_hi] as the requantiser: equal on every input of the range (checked at the breakpoints).
    ValueError naming the channel when no (S, B, T) of these widths reproduces it."""
    t = np.sort(np.asarray(thresholds, dtype=np.float64), axis=1)
    if not np.array_equal(t, np.round(t)):
        raise ValueError("thresholds are not integers")
    out_bits, signed = int_dtype(out_dtype)
    olo, ohi = out_range(out_bits, signed)
    params = []
    for c, row in enumerate(t.astype(np.int64)):
        p = _channel(row, int(out_bias), in_lo, in_hi, olo, ohi, scale_bits, bias_bits, shift_bits)
        if p is None:
            raise ValueError(f"thresholds of channel {c}: no requantiser with {scale_bits}-bit scale, {bias_bits}-bit "
                             f"bias and shift < {1 << shift_bits} reproduces them on [{in_lo}, {in_hi}]")
        params.append(p)
    s, b, sh = (np.array(v, dtype=np.int64) for v in zip(*params, strict=True))
    rq = LaneRequant(s, b, sh, out_bits, signed)
    for c, row in enumerate(t.astype(np.int64)):
        x, want = _targets(row, int(out_bias), in_lo, in_hi, olo, ohi)
        one = LaneRequant(s[c:c + 1], b[c:c + 1], sh[c:c + 1], out_bits, signed)
        if not np.array_equal(one.apply(x[:, None])[:, 0], want):
            raise ValueError(f"thresholds of channel {c}: the requantiser found differs at a breakpoint")
    return rq


def min_scale_bits(thresholds: np.ndarray, out_bias: int, in_lo: int, in_hi: int, out_dtype: str,
                   start: int = 2, stop: int = 32, bias_bits: int = 40, shift_bits: int = 6) -> int | None:
    """The fewest scale bits in [start, stop] with which ``from_thresholds`` reproduces the thresholds, or None."""
    for bits in range(start, stop + 1):
        try:
            from_thresholds(thresholds, out_bias, in_lo, in_hi, out_dtype, bits, bias_bits, shift_bits)
        except ValueError:
            continue
        return bits
    return None
