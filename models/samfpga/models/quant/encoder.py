"""Quantize a float TinyViT encoder in place of its own modules (no second copy of the architecture).

``quantize_encoder`` deep-copies the float encoder and swaps modules, so the float ``forward`` methods of
``models/samfpga/models/image_encoder/tiny_vit.py`` run unchanged on quantized submodules:

- ``Conv2d_BN`` -> ``QuantConv2d`` with the BatchNorm folded in first (per-output-channel weight scales);
  ``nn.Linear`` -> ``QuantLinear``; biases stay float (absorbed into FINN thresholds), or (``QuantConfig.
  bias_on_grid``) are rounded to the accumulator grid at calibration (``.bias_grid``: FINN Requant instead).
- ReLU -> ``QuantReLU`` (unsigned output; becomes a MultiThreshold). GELU (not a threshold function FINN
  implements on Zynq) stays float with a quantizer after it.
- Attention: one quantizer on the qkv Linear output (before TinyViT's per-head view + split), so q, k and v
  are slices of one quantized stream; ``matmul_qk`` / ``matmul_av`` -> ``QuantMatMul`` whose operands are
  those slices and the softmax output, quantized unsigned. The 1/sqrt(d) scale and the relative-position
  bias stay a scalar Mul and a constant Add between QK^T and the softmax.
- LayerNorm stays float with a quantizer on its output; SAM's LayerNorm2d in the neck becomes
  permute + LayerNormalization + permute.
- ``QuantConfig.int_norm``: LayerNorms and softmaxes become the accelerator's integer layers (``.int_norm``):
  ``IntLayerNorm`` on the integers of the quantizer in front (block LayerNorms: the residual quantizer; neck
  LayerNorms: a quantizer ``neck.<i>.norm_in`` added before each), ``IntSoftmax`` on the raw q k^T with the
  scale, relative-position bias and softmax output quantizer folded in.
- Residual adds: both branches are quantized by ONE shared quantizer (same scale, so the add is an integer
  add of two streams in FINN). The quantizer wraps the block input (``Sequential(R, block)``) and is appended
  to the last layer of the residual branch, so ``x + f(x)`` in the float forward adds R(x) + R(f(R(x))).

Quantization sites are named after the float module paths (``quant_site_names``) and take their bit widths
from ``QuantConfig``.
"""

from __future__ import annotations

import copy

from torch import nn

from samfpga.kernels.int_params import IntOpsConfig

from ..common import LayerNorm2d
from ..image_encoder.tiny_vit import (
    Attention,
    BasicLayer,
    Conv2d_BN,
    ConvLayer,
    MBConv,
    Mlp,
    PatchMerging,
    TinyViT,
    TinyViTBlock,
)
from .config import QuantConfig
from .int_norm import IntLayerNorm, IntSoftmax, use_int_softmax
from .layers import ChannelLayerNorm, QuantMatMul, act_quant, quant_conv, quant_linear, quant_relu


class _Builder:
    """Creates quantizers by site name, recording every name so overrides can be validated."""

    def __init__(self, config: QuantConfig, relu: bool) -> None:
        self.cfg = config
        self.relu = relu
        self.int_ops = IntOpsConfig()
        self.weight_sites: dict[str, nn.Module] = {}
        self.act_sites: dict[str, nn.Module] = {}
        self.bias_inputs: dict[str, nn.Module] = {}  # weight site -> the quantizer whose output it consumes

    def act(self, name: str, signed: bool = True, default_bits: int | None = None) -> nn.Module:
        stats = self.cfg.residual_stats if name.rsplit(".", 1)[-1].startswith("residual") else "percentile"
        q = act_quant(self.cfg.act_bits_for(name, default_bits), signed, self.cfg.scale, stats)
        self.act_sites[name] = q
        return q

    def activation(self, name: str) -> nn.Module:
        """The block activation followed by its output quantizer."""
        if self.relu:
            q = quant_relu(self.cfg.act_bits_for(name), self.cfg.scale)
            self.act_sites[name] = q
            return q
        return nn.Sequential(nn.GELU(), self.act(name, signed=True))

    def norm(self, ln: nn.LayerNorm, in_quant: nn.Module) -> nn.Module:
        """``ln`` as it is, or (int_norm) as IntLayerNorm on the integers of ``in_quant``'s output."""
        return IntLayerNorm(ln, in_quant, self.int_ops) if self.cfg.int_norm else ln

    def float_activation(self) -> nn.Module:
        return nn.ReLU() if self.relu else nn.GELU()

    def conv(self, name: str, m: nn.Module, in_quant: nn.Module) -> nn.Module:
        """``m`` quantized; ``in_quant``: the activation quantizer (or quantized activation) feeding it, whose
        scale sets the accumulator grid of ``QuantConfig.bias_on_grid``."""
        if isinstance(m, Conv2d_BN):
            q = quant_conv(m.c, m.bn, self.cfg.weight_bits_for(name), self.cfg.scale)
        elif isinstance(m, nn.Conv2d):
            q = quant_conv(m, None, self.cfg.weight_bits_for(name), self.cfg.scale)
        else:
            raise TypeError(f"{name}: expected Conv2d_BN or nn.Conv2d, got {type(m).__name__}")
        self.weight_sites[name] = q
        self.bias_inputs[name] = _out_quant(in_quant)
        return q

    def linear(self, name: str, m: nn.Linear, in_quant: nn.Module) -> nn.Module:
        q = quant_linear(m, self.cfg.weight_bits_for(name), self.cfg.scale)
        self.weight_sites[name] = q
        self.bias_inputs[name] = _out_quant(in_quant)
        return q


def _out_quant(m: nn.Module) -> nn.Module:
    """The quantizer at the output of ``m`` (a quantizer, QuantReLU, or ``Sequential(..., quantizer)``)."""
    return m[-1] if isinstance(m, nn.Sequential) else m


def _quantize_mbconv(b: _Builder, p: str, mb: MBConv) -> nn.Module:
    res = b.act(f"{p}.residual")
    mb.conv1 = b.conv(f"{p}.conv1", mb.conv1, res)
    mb.act1 = b.activation(f"{p}.act1")
    mb.conv2 = b.conv(f"{p}.conv2", mb.conv2, mb.act1)
    mb.act2 = b.activation(f"{p}.act2")
    mb.conv3 = nn.Sequential(b.conv(f"{p}.conv3", mb.conv3, mb.act2), res)
    mb.act3 = b.activation(f"{p}.act3")
    return nn.Sequential(res, mb)


def _quantize_merging(b: _Builder, p: str, pm: PatchMerging, in_quant: nn.Module | None) -> None:
    """``in_quant``: the quantizer ending the previous stage (its last MBConv's QuantReLU), or None (the input is
    not quantized yet: a quantizer ``<p>.in`` is added)."""
    # ``pm.act`` is applied twice in the float forward; quantizing at the consumers gives each use its own scale.
    if in_quant is None:
        in_quant = b.act(f"{p}.in")
        pm.conv1 = nn.Sequential(in_quant, b.conv(f"{p}.conv1", pm.conv1, in_quant))
    else:
        pm.conv1 = b.conv(f"{p}.conv1", pm.conv1, in_quant)
    pm.act = b.float_activation()
    a1 = b.act(f"{p}.act1", signed=not b.relu)
    pm.conv2 = nn.Sequential(a1, b.conv(f"{p}.conv2", pm.conv2, a1))
    a2 = b.act(f"{p}.act2", signed=not b.relu)
    pm.conv3 = nn.Sequential(a2, b.conv(f"{p}.conv3", pm.conv3, a2))


def _quantize_attention(b: _Builder, p: str, at: Attention, residual: nn.Module) -> None:
    norm_out = b.act(f"{p}.norm_out")
    at.norm = nn.Sequential(b.norm(at.norm, residual), norm_out)
    # ONE quantizer on the qkv output, before the per-head split: q, k and v are slices of one integer stream with
    # one scale (the split is a FINN StreamingSplit of integers), not requantizations of a float split
    qkv_out = b.act(f"{p}.qkv_out")
    at.qkv = nn.Sequential(b.linear(f"{p}.qkv", at.qkv, norm_out), qkv_out)
    at.matmul_qk = QuantMatMul(nn.Identity(), nn.Identity())
    sm_quant = b.act(f"{p}.softmax", signed=False, default_bits=b.cfg.softmax_bits)
    if b.cfg.int_norm:
        use_int_softmax(at, IntSoftmax(at.scale, qkv_out, sm_quant, b.int_ops))
    else:
        at.softmax = nn.Sequential(at.softmax, sm_quant)
    at.matmul_av = QuantMatMul(nn.Identity(), nn.Identity())
    proj_in = b.act(f"{p}.proj_in")
    at.proj = nn.Sequential(proj_in, b.linear(f"{p}.proj", at.proj, proj_in), residual)


def _quantize_mlp(b: _Builder, p: str, mlp: Mlp, residual: nn.Module) -> None:
    norm_out = b.act(f"{p}.norm_out")
    mlp.norm = nn.Sequential(b.norm(mlp.norm, residual), norm_out)
    mlp.fc1 = b.linear(f"{p}.fc1", mlp.fc1, norm_out)
    mlp.act = b.activation(f"{p}.act")
    mlp.fc2 = nn.Sequential(b.linear(f"{p}.fc2", mlp.fc2, mlp.act), residual)


def _quantize_block(b: _Builder, p: str, blk: TinyViTBlock) -> nn.Module:
    res_attn = b.act(f"{p}.residual_attn")
    _quantize_attention(b, f"{p}.attn", blk.attn, res_attn)
    res_mlp = b.act(f"{p}.residual_mlp")
    lc_in = b.act(f"{p}.local_conv_in")
    blk.local_conv = nn.Sequential(lc_in, b.conv(f"{p}.local_conv", blk.local_conv, lc_in), res_mlp)
    _quantize_mlp(b, f"{p}.mlp", blk.mlp, res_mlp)
    return nn.Sequential(res_attn, blk)


def _quantize_neck(b: _Builder, neck: nn.Sequential) -> nn.Sequential:
    layers: list[nn.Module] = [b.act("neck.in")]
    for i, m in enumerate(neck):
        if isinstance(m, nn.Conv2d):
            if i > 0:
                layers.append(b.act(f"neck.{i}.in"))
            layers.append(b.conv(f"neck.{i}", m, layers[-1]))
        elif isinstance(m, LayerNorm2d):
            ln = ChannelLayerNorm(m.weight.detach(), m.bias.detach(), m.eps)
            if b.cfg.int_norm:  # the conv output has per-channel scales: one integer grid first
                q = b.act(f"neck.{i}.norm_in")
                ln.ln = b.norm(ln.ln, q)
                layers.append(q)
            layers.append(ln)
        else:
            raise TypeError(f"neck.{i}: unexpected {type(m).__name__}")
    layers.append(b.act("output"))
    return nn.Sequential(*layers)


def quantize_encoder(encoder: TinyViT, config: QuantConfig | None = None) -> TinyViT:
    """A quantized copy of ``encoder`` (eval mode; the float model is not modified).

    The copy's ``forward`` is TinyViT's: (B,3,S,S) float normalised image -> (B,256,S/16,S/16) float
    holding quantized values. Its activation quantizers still need calibration (``ptq.calibrate``).
    Attribute ``quant_sites`` maps ``{"weight"|"act": {site name: module}}``.
    """
    if not isinstance(encoder, TinyViT):
        raise TypeError(f"quantize_encoder expects a TinyViT, got {type(encoder).__name__}")
    cfg = config or QuantConfig()
    q = copy.deepcopy(encoder).eval()
    b = _Builder(cfg, relu=q.config.activation == "relu")

    stem = q.patch_embed.seq
    in_q = b.act("input")
    conv0 = b.conv("patch_embed.seq.0", stem[0], in_q)
    stem_act = b.activation("patch_embed.act")
    q.patch_embed.seq = nn.Sequential(conv0, stem_act, b.conv("patch_embed.seq.2", stem[2], stem_act))
    q.patch_embed = nn.Sequential(in_q, q.patch_embed)
    for i, layer in enumerate(q.layers):
        p = f"layers.{i}"
        if isinstance(layer, ConvLayer):
            for j, mb in enumerate(layer.blocks):
                layer.blocks[j] = _quantize_mbconv(b, f"{p}.blocks.{j}", mb)
            # the last MBConv ends in a QuantReLU (already quantized input for the downsample)
            end_quant = layer.blocks[-1][1].act3 if b.relu and len(layer.blocks) > 0 else None
        elif isinstance(layer, BasicLayer):
            for j, blk in enumerate(layer.blocks):
                layer.blocks[j] = _quantize_block(b, f"{p}.blocks.{j}", blk)
            end_quant = None  # a residual sum
        else:
            raise TypeError(f"{p}: unexpected stage type {type(layer).__name__}")
        if layer.downsample is not None:
            _quantize_merging(b, f"{p}.downsample", layer.downsample, end_quant)
    q.neck = _quantize_neck(b, q.neck)
    # the unused classifier head is dropped: it is not part of the encoder's forward
    q.norm_head = nn.Identity()
    q.head = nn.Identity()

    cfg.check_patterns(list(b.weight_sites), list(b.act_sites))
    q.quant_sites = {"weight": b.weight_sites, "act": b.act_sites}  # type: ignore[assignment]
    q.quant_config = cfg  # type: ignore[assignment]
    q.bias_inputs = b.bias_inputs  # type: ignore[assignment]
    return q


def quant_site_names(qmodel: TinyViT) -> dict[str, list[str]]:
    """``{"weight": [...], "act": [...]}``: the names ``QuantConfig`` overrides match against."""
    sites = getattr(qmodel, "quant_sites", None)
    if sites is None:
        raise ValueError("model was not built by quantize_encoder (no quant_sites)")
    return {k: list(v) for k, v in sites.items()}
