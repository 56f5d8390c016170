"""Integer model of the arithmetic requantizer (FINN+'s ``Requant``, finn-rtllib requant/hdl/requant.sv).

Specification (FINN+'s Python execution): ``y = clip(floor(x * scale + bias + 0.5), lo, hi)`` per channel
(channels on the last axis), ``x`` integer, ``scale``/``bias`` float32. The RTL evaluates it in fixed point:
``scale`` and ``bias`` are decomposed at elaboration time into an integer mantissa ``S``, an aligned integer bias
``B`` (with the half-LSB rounding constant folded in) and a right shift ``T`` per channel, and the datapath computes
``clip((x * S + B) >> T)`` (arithmetic shift, saturating). ``fixed_point_params`` is that decomposition,
``requant_fixed`` the datapath, ``requant_spec`` the float specification; for power-of-two scales they agree
bit for bit (tests/test_requant.py; the RTL bench compares the simulated hardware with ``requant_fixed``).

numpy only (board runtime).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MUL_PORTS = {1: (25, 18), 2: (27, 18), 3: (27, 24)}  # DSP48E1 / DSP48E2 / DSP58: (A port, B port) widths


@dataclass(frozen=True)
class RequantParams:
    """Fixed-point parameters of one requant layer: ``scale``, ``bias``, ``shift`` int64 arrays of shape (C,);
    ``s_width``/``x_width``: multiplier operand widths; ``x_drop``: input LSBs the RTL drops (input wider than
    its multiplier port)."""

    scale: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    s_width: int
    x_width: int
    x_drop: int


def mul_widths(in_bits: int, dsp_version: int = 2) -> tuple[int, int]:
    """(scale width, data width) of the multiplier for ``in_bits``-bit inputs on DSP ``dsp_version``."""
    if dsp_version not in _MUL_PORTS:
        raise ValueError(f"requant: unsupported DSP version {dsp_version} (1, 2 or 3)")
    aw, bw = _MUL_PORTS[dsp_version]
    if in_bits <= bw:
        return 25, in_bits
    return bw, min(aw, in_bits)


def _f32_fields(v: float) -> tuple[int, int, int]:
    bits = int(np.array(v, dtype=np.float32).view(np.uint32))
    return bits >> 31, ((bits >> 23) & 0xFF) - 127, bits & 0x7FFFFF


def fixed_point_params(scale: np.ndarray, bias: np.ndarray, in_bits: int, out_bits: int,
                       dsp_version: int = 2) -> RequantParams:
    """Decompose float32 per-channel ``scale``/``bias`` ((C,) each) as the RTL does at elaboration.

    Raises ValueError (naming the channel and value) where the RTL would stop: a scale too large or too small for
    the output precision, a bias beyond the output range."""
    scale = np.asarray(scale, dtype=np.float32).ravel()
    bias = np.asarray(bias, dtype=np.float32).ravel()
    if scale.shape != bias.shape:
        raise ValueError(f"requant: scale {scale.shape} and bias {bias.shape} differ in shape")
    s_width, x_width = mul_widths(in_bits, dsp_version)
    out_s, out_b, out_t = [], [], []
    for c, (sv, bv) in enumerate(zip(scale.tolist(), bias.tolist(), strict=True)):
        s_sign, se, s_man = _f32_fields(sv)
        b_sign, be, b_man = _f32_fields(bv)
        sm = (1 << 24) | (s_man << 1)  # 25 bits, value * 2**-24
        bm = (1 << 23) | b_man  # 24 bits, value * 2**-23
        shift = (s_width - 2) - se
        if shift < 0:
            raise ValueError(f"requant: channel {c}: scale {sv} too large for {out_bits} output bits")
        if s_width + x_width + 1 < shift + out_bits:
            raise ValueError(f"requant: channel {c}: scale {sv} too small for {out_bits} output bits")
        sm >>= 25 - s_width
        s_int = ((sm >> 1) & ((1 << 24) - 1)) + (sm & 1)
        if be > x_width - out_bits:
            raise ValueError(f"requant: channel {c}: bias {bv} overflows the {out_bits}-bit output range")
        bias_shift = be - (23 - shift)
        b_int = 0 if bias_shift < -24 else (bm >> -bias_shift if bias_shift < 0 else bm << bias_shift)
        if b_sign:
            b_int = -b_int
        if shift > 0:
            b_int += 1 << (shift - 1)  # round half up: + half an output LSB before the shift
        elif bias_shift < 0:
            b_int += (bm >> (-bias_shift - 1)) & 1
        out_s.append(-s_int if s_sign else s_int)
        out_b.append(b_int)
        out_t.append(shift)
    return RequantParams(np.array(out_s, dtype=object), np.array(out_b, dtype=object),
                         np.array(out_t, dtype=object), s_width, x_width, max(0, in_bits - x_width))


def out_range(out_bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """(lo, hi) of the output integers."""
    if signed:
        return -(2 ** (out_bits - 1)) + int(narrow), 2 ** (out_bits - 1) - 1
    return 0, 2**out_bits - 1 - int(narrow)


def requant_fixed(x: np.ndarray, p: RequantParams, out_bits: int, signed: bool, narrow: bool = False) -> np.ndarray:
    """The RTL datapath: ``clip((x >> x_drop) * S + B) >> T``. ``x``: integers (any int/float dtype holding
    integers), channels on the last axis (size C). Returns int64, same shape."""
    xi = np.asarray(x)
    if not np.all(xi == np.round(xi)):
        raise ValueError("requant_fixed: input must hold integers")
    xi = xi.astype(np.int64).astype(object) >> p.x_drop  # Python ints: no overflow in the product
    lo, hi = out_range(out_bits, signed, narrow)
    y = (xi * p.scale + p.bias) >> p.shift
    return np.clip(y, lo, hi).astype(np.int64)


def requant_spec(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, out_bits: int, signed: bool,
                 narrow: bool = False) -> np.ndarray:
    """FINN+'s float32 specification ``clip(floor(x*scale + bias + 0.5))``, channels on the last axis. float32."""
    lo, hi = out_range(out_bits, signed, narrow)
    v = np.asarray(x, dtype=np.float32) * np.asarray(scale, dtype=np.float32) + np.asarray(bias, dtype=np.float32)
    return np.clip(np.floor(v + np.float32(0.5)), lo, hi).astype(np.float32)
