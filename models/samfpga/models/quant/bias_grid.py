"""Biases on the accumulator grid (``QuantConfig.bias_on_grid``): integer biases for exact requantization.

A quantized Linear/Conv computes ``y = acc * s_acc + b`` with the integer accumulator ``acc`` and
``s_acc = s_in * s_w`` (input scale times the per-output-channel weight scale, all powers of two). With a float
bias the float32 sum rounds, so the integer breakpoints of the requantizer after the layer are not an arithmetic
progression and FINN keeps a threshold table (bench/results/thresholds_exact.md). Rounding ``b`` to a multiple
``b_int * s_acc`` makes ``y = (acc + b_int) * s_acc`` exact in float32 (while ``|acc + b_int| < 2**24``), so the
requantizer is uniform and the build maps it onto an arithmetic Requant.

This is a parameter transform applied once the scales are known (after calibration, after QAT), not a Brevitas
bias quantizer: Brevitas' ``Int32Bias`` needs the input scale as a QuantTensor through every reshape of the
float forward. The exported QONNX graph carries the rounded float bias, which is ``b_int * s_acc`` exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import compat  # noqa: F401  (Tensor.rename shim, needed when brevitas layers run)
from .int_norm import act_scale

# float32 represents every integer below 2**24 exactly, so b_int * s_acc (a power of two) is exact
MAX_BIAS_BITS = 25  # signed: |b_int| < 2**24


def weight_scale(layer: nn.Module) -> torch.Tensor:
    """(C_out,) float32 per-output-channel weight scale of a Brevitas QuantLinear / QuantConv2d."""
    return layer.quant_weight().scale.detach().reshape(-1).float()


def accumulator_scale(layer: nn.Module, in_quant: nn.Module) -> torch.Tensor:
    """(C_out,) float32 ``s_in * s_w``; raises if a scale is not a power of two (the grid would not be exact)."""
    s = act_scale(in_quant) * weight_scale(layer).double()
    log = torch.log2(s)
    if not torch.equal(log, torch.round(log)):
        raise ValueError(f"accumulator scale is not a power of two (s_in={act_scale(in_quant)}): bias_on_grid needs "
                         "QuantConfig.scale='po2'")
    return s.float()


@torch.no_grad()
def snap_bias(layer: nn.Module, in_quant: nn.Module, name: str = "") -> int:
    """Round ``layer.bias`` (in place) half up to a multiple of its accumulator scale. Returns the signed bit
    width of the integer bias (1 for an all-zero bias); raises if it exceeds ``MAX_BIAS_BITS``."""
    s = accumulator_scale(layer, in_quant).double()
    b_int = torch.floor(layer.bias.detach().double() / s + 0.5)
    peak = int(b_int.abs().max().item()) if b_int.numel() else 0
    bits = 1 + math.ceil(math.log2(peak + 1))
    if bits > MAX_BIAS_BITS:
        raise ValueError(f"{name or type(layer).__name__}: integer bias needs {bits} bits (|b_int| up to {peak}), "
                         f"more than the {MAX_BIAS_BITS} that float32 carries exactly")
    layer.bias.copy_((b_int * s).to(layer.bias.dtype))
    return bits


def snap_biases(qmodel: nn.Module) -> dict[str, int]:
    """Snap every biased weight layer of a ``quantize_encoder`` model built with ``bias_on_grid`` (its
    ``bias_inputs``: ``{weight site: input quantizer}``). Returns ``{site: integer bias bits}``."""
    inputs = getattr(qmodel, "bias_inputs", None)
    if inputs is None:
        raise ValueError("model was not built by quantize_encoder with QuantConfig(bias_on_grid=True)")
    layers = qmodel.quant_sites["weight"]
    return {name: snap_bias(layers[name], q, name) for name, q in inputs.items() if layers[name].bias is not None}


def maybe_snap_biases(qmodel: nn.Module) -> dict[str, int]:
    """``snap_biases`` when the model's QuantConfig asks for it, else nothing (``{}``)."""
    cfg = getattr(qmodel, "quant_config", None)
    if cfg is None or not cfg.bias_on_grid:
        return {}
    bits = snap_biases(qmodel)
    qmodel.bias_bits = bits  # type: ignore[assignment]
    return bits
