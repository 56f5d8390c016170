"""Brevitas building blocks for the quantized encoder: quantizer choice, quantized matmul, BN folding.

Every quantized module is created here so the scale type and bit width come from one place.
"""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from brevitas.core.stats import StatsOp
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
    Uint8ActPerTensorFloat,
)
from torch import nn

from . import compat  # noqa: F401  (Tensor.rename shim, needed when brevitas layers run)
from .rounding import RoundHalfUpSte

# Per-output-channel power-of-two weight scales (Brevitas ships this only per tensor).
Int8WeightPerChannelFixedPoint = Int8WeightPerTensorFixedPoint.let(scaling_per_output_channel=True)

_WEIGHT_QUANT = {"po2": Int8WeightPerChannelFixedPoint, "float": Int8WeightPerChannelFloat}
# activation quantizers round half up (floor(x + 0.5)), the project's one rule: see .rounding
_ACT_QUANT = {
    (scale, signed): q.let(float_to_int_impl=RoundHalfUpSte)
    for (scale, signed), q in {
        ("po2", True): Int8ActPerTensorFixedPoint,
        ("po2", False): Uint8ActPerTensorFixedPoint,
        ("float", True): Int8ActPerTensorFloat,
        ("float", False): Uint8ActPerTensorFloat,
    }.items()
}


def act_quant(bits: int, signed: bool, scale: str, stats: str = "percentile") -> qnn.QuantIdentity:
    """A per-tensor activation quantizer: float tensor in, float tensor of quantized values out (same shape).

    ``stats``: calibration statistic for the range, ``"percentile"`` (99.999th, Brevitas' default: clips
    rare outliers) or ``"max"`` (no clipping).
    """
    quant = _ACT_QUANT[(scale, signed)]
    if stats == "max":
        quant = quant.let(scaling_stats_op=StatsOp.MAX)
    elif stats != "percentile":
        raise ValueError(f"unknown activation statistic {stats!r}")
    return qnn.QuantIdentity(act_quant=quant, bit_width=bits, return_quant_tensor=False)


def quant_relu(bits: int, scale: str) -> qnn.QuantReLU:
    """ReLU with an unsigned output quantizer (FINN turns it into one MultiThreshold)."""
    return qnn.QuantReLU(act_quant=_ACT_QUANT[(scale, False)], bit_width=bits, return_quant_tensor=False)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (eval-mode BN statistics)."""
    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if bn is None:
        return w.clone(), b.clone()
    s = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    return w * s[:, None, None, None], (b - bn.running_mean) * s + bn.bias.detach()


def quant_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, bits: int, scale: str) -> qnn.QuantConv2d:
    """``conv`` (+ folded ``bn``) with per-output-channel quantized weights and a float bias.

    The bias stays float here (``QuantConfig.bias_on_grid`` rounds it to the accumulator grid after calibration,
    ``.bias_grid``): FINN absorbs it into the next thresholds, and an int32 bias would need the input
    scale as a QuantTensor through every reshape.
    """
    w, b = fold_conv_bn(conv, bn)
    has_bias = bn is not None or conv.bias is not None
    q = qnn.QuantConv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, bias=has_bias, weight_quant=_WEIGHT_QUANT[scale], weight_bit_width=bits,
        return_quant_tensor=False,
    )
    with torch.no_grad():
        q.weight.copy_(w)
        if has_bias:
            q.bias.copy_(b)
    return q


def quant_linear(lin: nn.Linear, bits: int, scale: str) -> qnn.QuantLinear:
    """``lin`` with per-output-channel quantized weights and a float bias."""
    q = qnn.QuantLinear(
        lin.in_features, lin.out_features, bias=lin.bias is not None, weight_quant=_WEIGHT_QUANT[scale],
        weight_bit_width=bits, return_quant_tensor=False,
    )
    with torch.no_grad():
        q.weight.copy_(lin.weight.detach())
        if lin.bias is not None:
            q.bias.copy_(lin.bias.detach())
    return q


class QuantMatMul(nn.Module):
    """``a @ b`` of two quantized operands (FINN: a dynamic MVAU with streamed weights). ``a_quant`` / ``b_quant``
    quantize an operand here; ``nn.Identity`` where it arrives quantized (attention: slices of the quantized qkv
    output, the quantized softmax)."""

    def __init__(self, a_quant: nn.Module, b_quant: nn.Module) -> None:
        super().__init__()
        self.a_quant = a_quant
        self.b_quant = b_quant

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.a_quant(a) @ self.b_quant(b)


class ChannelLayerNorm(nn.Module):
    """SAM's LayerNorm2d as permute -> ``F.layer_norm`` -> permute, so it exports as ONNX LayerNormalization
    (which FINN's ExtractNormScaleBias splits) instead of a chain of reduce/arithmetic ops. (B,C,H,W) in/out.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(weight.shape[0], eps=eps)
        with torch.no_grad():
            self.ln.weight.copy_(weight)
            self.ln.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
