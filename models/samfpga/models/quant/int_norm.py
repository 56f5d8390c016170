"""Integer LayerNorm and softmax in the quantized model (``QuantConfig(int_norm=True)``): the accelerator's
arithmetic (``samfpga.kernels.layernorm`` / ``.softmax``, the IntLayerNorm / IntSoftmax RTL) in PyTorch, so the
chain Brevitas -> QONNX -> FINN -> RTL is bit-exact with those layers.

- ``IntLayerNorm`` replaces an ``nn.LayerNorm`` whose input is one activation quantizer's output (the residual
  stream, or the quantizer placed before a neck LayerNorm): integers = input / scale, then the kernel, then
  ``layernorm_affine`` (gamma, beta). Parameters from ``samfpga.kernels.int_params.layernorm_params``.
- ``IntSoftmax`` replaces TinyViT's ``softmax(q k^T * scale + bias)`` and the softmax output quantizer: the raw
  ``q k^T`` (on the grid of the qkv quantizer's scale squared) goes into the kernel with the logit scale, the
  relative-position bias and the output quantizer folded in (``int_params.softmax_params``), as
  ``samfpga.hw.build.int_ops`` folds them.

How it runs: the numpy kernels compute the output (no torch copy of the arithmetic); under ``torch.onnx.export``
(dynamo, as Brevitas' QONNX export runs it) the module emits the QONNX node of ``.qonnx_ops`` with the parameters
of its last eval forward, behind ``Mul(1/input scale)`` (and, for the softmax, in front of ``Mul(output scale)``). While the quantizers are
disabled (Brevitas' calibration mode) the float layer runs instead, so calibration sees the float statistics.
In training (QAT) the output is the integer result with the float layer's gradient (straight-through:
``float + (int - float).detach()``). Input scales must be powers of two (``QuantConfig.scale == "po2"``): the
division to integers is then exact. Tensors: float32, any leading shape, the normalised axis last.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from samfpga.kernels.int_params import IntOpsConfig, layernorm_affine, layernorm_params, softmax_params
from samfpga.kernels.layernorm import IntLayerNormParams, int_layernorm
from samfpga.kernels.softmax import IntSoftmaxParams, int_softmax

from ..image_encoder.tiny_vit import Attention
from .qonnx_ops import DOMAIN


def act_scale(quantizer: nn.Module) -> float:
    """The per-tensor scale of a Brevitas activation quantizer (QuantIdentity / QuantReLU)."""
    return float(quantizer.act_quant.scale().detach())


def act_bits(quantizer: nn.Module) -> int:
    return int(quantizer.act_quant.bit_width().detach())


def quant_enabled(quantizer: nn.Module) -> bool:
    """False while Brevitas' calibration mode has the quantizer disabled or observing only (it passes floats
    through)."""
    proxy = quantizer.act_quant
    return bool(proxy.is_quant_enabled) and not any(getattr(m, "observer_only", False) for m in proxy.modules())


def _integers(x: torch.Tensor, scale: float, what: str) -> np.ndarray:
    xi = (x.detach() * (1.0 / scale)).double().numpy()
    if not np.array_equal(xi, np.round(xi)):
        raise ValueError(f"{what}: input is not on its quantizer's grid (scale {scale}); int_norm needs "
                         "power-of-two scales")
    return xi


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export()


def _int_layernorm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, scale: float,
                   p: IntLayerNormParams) -> torch.Tensor:
    z = int_layernorm(_integers(x, scale, "IntLayerNorm"), p)
    return torch.from_numpy(layernorm_affine(z, gamma.detach().numpy(), beta.detach().numpy(), p.frac_bits))


def _int_softmax(a: torch.Tensor, in_scale: float, out_scale: float, p: IntSoftmaxParams) -> torch.Tensor:
    return torch.from_numpy(int_softmax(_integers(a, in_scale, "IntSoftmax"), p).astype(np.float32)) * out_scale


class IntLayerNorm(nn.Module):
    """``ln`` (an ``nn.LayerNorm`` over the last axis, its weight/bias kept here) computed by the integer kernel on
    the integers of ``in_quant``'s output. (..., C) float32 in (values on ``in_quant``'s grid) and out."""

    def __init__(self, ln: nn.LayerNorm, in_quant: nn.Module, cfg: IntOpsConfig) -> None:
        super().__init__()
        if tuple(ln.normalized_shape) != (ln.weight.shape[0],) or ln.bias is None:
            raise ValueError(f"IntLayerNorm needs an affine LayerNorm over one axis, got {ln}")
        self.ln = ln
        self._in_quant = (in_quant,)  # a tuple: the quantizer is registered where it is applied, not here too
        self.cfg = cfg

    def params(self) -> IntLayerNormParams:
        return layernorm_params(self.ln.weight.shape[0], self.ln.eps, act_scale(self._in_quant[0]),
                                self.ln.weight.detach().numpy(), self.cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting():
            # torch.export traces with fake tensors: the scale and parameters come from the last eval forward
            # (Brevitas' export runs one before tracing)
            scale, p = _cached(self)
            return torch.onnx.ops.symbolic(
                f"{DOMAIN}::QIntLayerNorm", (x * (1.0 / scale), self.ln.weight, self.ln.bias),
                {"eps_int": p.eps_int, "frac_bits": p.frac_bits, "out_bits": p.out_bits, "lut_bits": p.lut_bits,
                 "r_bits": p.r_bits}, dtype=x.dtype, shape=x.shape, version=1)
        q = self._in_quant[0]
        if not quant_enabled(q):
            return self.ln(x)
        scale, p = act_scale(q), self.params()
        self._export_cache = (scale, p)
        y = _int_layernorm(x, self.ln.weight, self.ln.bias, scale, p)
        if torch.is_grad_enabled() and self.training:
            f = self.ln(x)
            y = f + (y - f).detach()
        return y


def _cached(m: nn.Module) -> tuple:
    cache = getattr(m, "_export_cache", None)
    if cache is None:
        raise RuntimeError(f"{type(m).__name__}: export needs one eval forward with quantization enabled first "
                           "(calibrate the model)")
    return cache


class IntSoftmax(nn.Module):
    """TinyViT attention weights ``out_quant(softmax(a * attn_scale + bias))`` computed by the integer kernel from
    the integer logits ``a / s_qk`` (``s_qk`` = the qkv quantizer's scale squared). ``a``: (B*, heads, N, N) float32
    (q k^T of quantized q, k); ``bias``: (heads, N, N) float32; output the same shape as ``a``, values on
    ``out_quant``'s grid."""

    def __init__(self, attn_scale: float, qk_quant: nn.Module, out_quant: nn.Module, cfg: IntOpsConfig) -> None:
        super().__init__()
        self.attn_scale = float(attn_scale)
        self.out_quant = out_quant
        self._qk_quant = (qk_quant,)
        self.cfg = cfg

    def params(self, bias: torch.Tensor) -> IntSoftmaxParams:
        n = bias.shape[-1]
        # the logit scale as the exported graph multiplies it: float32 attention scale (q, k scales are po2)
        logit_scale = act_scale(self._qk_quant[0]) ** 2 * float(np.float32(self.attn_scale))
        return softmax_params(n, logit_scale, act_scale(self.out_quant),
                              bias.detach().double().numpy().reshape(-1, n), act_bits(self.out_quant), self.cfg)

    def forward(self, a: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if _exporting():
            (s_in, s_o), p = _cached(self)
            y = torch.onnx.ops.symbolic(
                f"{DOMAIN}::QIntSoftmax", (a * (1.0 / s_in), torch.from_numpy(p.bias)),
                {"mult": p.mult, "pre_shift": p.pre_shift, "out_num": p.out_num, "recip_bits": p.recip_bits,
                 "out_bits": p.out_bits, "exp_frac_bits": p.exp_frac_bits, "exp_bits": p.exp_bits},
                dtype=a.dtype, shape=a.shape, version=1)
            return y * s_o
        if not (quant_enabled(self._qk_quant[0]) and quant_enabled(self.out_quant)):
            return self.out_quant(torch.softmax(a * self.attn_scale + bias, dim=-1))
        p = self.params(bias)
        s_in, s_o = act_scale(self._qk_quant[0]) ** 2, act_scale(self.out_quant)
        self._export_cache = ((s_in, s_o), p)
        y = _int_softmax(a, s_in, s_o, p)
        if torch.is_grad_enabled() and self.training:
            f = self.out_quant(torch.softmax(a * self.attn_scale + bias, dim=-1))
            y = f + (y - f).detach()
        return y


class IntSoftmaxAttention(Attention):
    """TinyViT ``Attention`` whose ``attention_weights`` is an ``IntSoftmax`` (in ``self.softmax``) on the raw
    ``q k^T``; everything else is the float class's. ``use_int_softmax`` turns a (quantized) Attention into one."""

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.matmul_qk(q, k.transpose(-2, -1)), self.bias())


def use_int_softmax(at: Attention, int_softmax_module: IntSoftmax) -> None:
    """Make ``at`` an ``IntSoftmaxAttention`` in place (same parameters and submodules, softmax replaced)."""
    if type(at) is not Attention:
        raise TypeError(f"use_int_softmax expects a TinyViT Attention, got {type(at).__name__}")
    at.softmax = int_softmax_module
    at.__class__ = IntSoftmaxAttention
