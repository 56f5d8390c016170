"""Fixed-point parameters of the integer LayerNorm / softmax layers, derived from the float model in ONE place.

Both producers of ``IntLayerNormParams`` / ``IntSoftmaxParams`` call these: the quantized PyTorch model
(``samfpga.models.quant.int_norm``, which computes the layers with the kernels) and the FINN graph transformation
(``samfpga.hw.build.int_ops``, which replaces a float LayerNormalization / Softmax of a streamlined graph). numpy
only (board-importable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samfpga.kernels.layernorm import IntLayerNormParams, eps_int_for, out_bits_for
from samfpga.kernels.softmax import IntSoftmaxParams, make_params


@dataclass(frozen=True)
class IntOpsConfig:
    """Table sizes and bit widths of the integer layers (see samfpga.kernels.layernorm / softmax).

    ln_frac_bits: F of IntLayerNorm's output; ln_lut_bits / ln_r_bits: rsqrt table index / entry bits.
    sm_exp_frac_bits: G (exp table 2^G entries); sm_exp_bits: E; sm_mult_bits: significant bits of the logit
    multiplier; sm_recip_extra_bits: extra reciprocal bits.
    """

    ln_frac_bits: int = 8
    ln_lut_bits: int = 10
    ln_r_bits: int = 16
    sm_exp_frac_bits: int = 6
    sm_exp_bits: int = 16
    sm_mult_bits: int = 16
    sm_recip_extra_bits: int = 12


def layernorm_params(channels: int, eps: float, in_scale: float, gamma: np.ndarray | None,
                     cfg: IntOpsConfig) -> IntLayerNormParams:
    """IntLayerNorm of a LayerNorm over ``channels`` whose input is integers times ``in_scale`` (> 0): epsilon in
    units of the integers squared (``eps / in_scale**2``), channels with ``gamma < 0`` negated inside the layer
    (the gamma left outside is then ``|gamma|``). ``gamma``: (channels,) float or None (all positive)."""
    if not in_scale > 0:
        raise ValueError(f"IntLayerNorm: input scale must be > 0, got {in_scale}")
    negate = None
    if gamma is not None:
        g = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (channels,))
        negate = tuple(int(v < 0) for v in g) if (g < 0).any() else None
    f = cfg.ln_frac_bits
    return IntLayerNormParams(channels, eps_int_for(channels, float(eps) / float(in_scale) ** 2), frac_bits=f,
                              out_bits=out_bits_for(channels, f), lut_bits=cfg.ln_lut_bits, r_bits=cfg.ln_r_bits,
                              negate=negate)


def softmax_params(n: int, logit_scale: float, out_scale: float, bias: np.ndarray | None, out_bits: int,
                   cfg: IntOpsConfig) -> IntSoftmaxParams:
    """IntSoftmax of ``clip(round(softmax(a * logit_scale + bias) / out_scale))`` over rows of ``n`` integer
    logits ``a``; ``bias`` (rows, n) float (the per-row table, row r of the input uses row r mod rows) or None."""
    return make_params(n, float(logit_scale), float(out_scale), bias, out_bits=out_bits,
                       exp_frac_bits=cfg.sm_exp_frac_bits, exp_bits=cfg.sm_exp_bits, mult_bits=cfg.sm_mult_bits,
                       recip_extra_bits=cfg.sm_recip_extra_bits)


def layernorm_affine(z: np.ndarray, gamma: np.ndarray, beta: np.ndarray, frac_bits: int) -> np.ndarray:
    """The LayerNorm output from IntLayerNorm's ``z`` (..., C) integers (negated where gamma < 0):
    ``z * float32(|gamma| * 2^-F) + beta``, each step one float32 operation (round to nearest), so every
    implementation that follows this order (the PyTorch model, the QONNX node, the thresholds the FINN
    transformation derives from it) gets the same bits. (..., C) float32."""
    g = (np.abs(np.asarray(gamma, dtype=np.float32)) * np.float32(2.0 ** -frac_bits)).astype(np.float32)
    return np.asarray(z, dtype=np.float32) * g + np.asarray(beta, dtype=np.float32)
