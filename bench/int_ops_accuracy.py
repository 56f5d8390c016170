"""Accuracy cost of the integer LayerNorm / softmax layers (IntLayerNorm, IntSoftmax) inside the quantized
bundled default, against the float-LayerNorm/softmax W8A8 model and the float model.

    .venv/bin/python bench/int_ops_accuracy.py [--images 100] [--out bench/results/int_ops_accuracy.json]

The W8A8 PTQ encoder (as bench/quant_accuracy.py builds it: default QuantConfig, 8 calibration images of the
synthetic training split, seed 0) is copied and its TinyViT blocks' LayerNorms and attention softmaxes are
replaced by torch modules that call the numpy kernels of ``samfpga.kernels.layernorm`` / ``.softmax`` on the
integers the FINN graph carries (LayerNorm input: residual-quantizer integers; softmax input: q_int k_int^T, with
the 1/sqrt(d) scale, the q/k scales, the relative-position bias and the softmax output quantizer folded in, as
``samfpga.hw.build.int_ops`` folds them). The neck's two LayerNorms stay float (their input is a conv output with
per-channel scales, not one integer grid; the graph transformation skips them too). Reported per setting:
mIoU (center point, box, 3 clicks; held-out synthetic split, seed 1) and embedding cosine / relative L2 on
8 held-out images against the float encoder and against the W8A8 encoder.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from quant_accuracy import agreement, write_atomic  # noqa: E402

from samfpga.hw.build.int_ops import IntOpsConfig  # noqa: E402
from samfpga.kernels.layernorm import IntLayerNormParams, eps_int_for, int_layernorm, out_bits_for  # noqa: E402
from samfpga.kernels.softmax import int_softmax, make_params  # noqa: E402
from samfpga.models.evaluate import TorchPredictor, evaluate  # noqa: E402
from samfpga.models.image_encoder.tiny_vit import BasicLayer  # noqa: E402
from samfpga.models.quant import QuantConfig, calibrate, quantize_encoder  # noqa: E402
from samfpga.models.quant.source import load_model, synthetic_images  # noqa: E402


def _scale(quantizer) -> float:
    return float(quantizer.act_quant.scale().detach())


def _integers(x: torch.Tensor, s: float, what: str) -> np.ndarray:
    v = x.detach().double().numpy() / s
    r = np.round(v)
    if np.abs(v - r).max(initial=0) > 1e-3:
        raise ValueError(f"{what}: input is not on the quantizer's grid (scale {s})")
    return r


class IntLayerNormTorch(torch.nn.Module):
    """``ln`` (nn.LayerNorm over C) computed by the integer kernel on ``x / s``; s = ``quantizer``'s scale."""

    def __init__(self, ln: torch.nn.LayerNorm, quantizer, cfg: IntOpsConfig) -> None:
        super().__init__()
        self.ln, self.quantizer, self.cfg = ln, quantizer, cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = _scale(self.quantizer)
        c, f = x.shape[-1], self.cfg.ln_frac_bits
        p = IntLayerNormParams(c, eps_int_for(c, self.ln.eps / s**2), frac_bits=f, out_bits=out_bits_for(c, f),
                               lut_bits=self.cfg.ln_lut_bits, r_bits=self.cfg.ln_r_bits)
        z = torch.from_numpy(int_layernorm(_integers(x, s, "LayerNorm"), p).astype(np.float32))
        return z * (2.0**-f) * self.ln.weight.detach() + self.ln.bias.detach()


def _int_attention_forward(self, x: torch.Tensor, cfg: IntOpsConfig) -> torch.Tensor:
    """TinyViT ``Attention.forward`` with the softmax (and its scale, bias, output quantizer) as IntSoftmax."""
    b, n, _ = x.shape
    x = self.norm(x)
    qkv = self.qkv(x)
    s_qkv = _scale(self.qkv[1])
    q, k, v = qkv.view(b, n, self.num_heads, -1).split([self.key_dim, self.key_dim, self.d], dim=3)
    q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
    qi, ki = _integers(q, s_qkv, "q"), _integers(k, s_qkv, "k")
    a = qi @ np.swapaxes(ki, -1, -2)  # exact in float64
    s_o = _scale(self.softmax[1])
    bias = self.bias().detach().double().numpy().reshape(-1, n)
    p = make_params(n, s_qkv * s_qkv * self.scale, s_o, bias, out_bits=8, exp_frac_bits=cfg.sm_exp_frac_bits,
                    exp_bits=cfg.sm_exp_bits, mult_bits=cfg.sm_mult_bits, recip_extra_bits=cfg.sm_recip_extra_bits)
    attn = torch.from_numpy((int_softmax(a, p) * s_o).astype(np.float32))
    x = self.matmul_av(attn, v).transpose(1, 2).reshape(b, n, self.dh)
    return self.proj(x)


def with_int_ops(qenc: torch.nn.Module, cfg: IntOpsConfig) -> torch.nn.Module:
    """A copy of the quantized encoder with every TinyViT block's LayerNorms and softmax made integer."""
    enc = copy.deepcopy(qenc)
    count = 0
    for layer in enc.layers:
        if not isinstance(layer, BasicLayer):
            continue
        for wrapped in layer.blocks:
            res_attn, blk = wrapped[0], wrapped[1]
            blk.attn.norm[0] = IntLayerNormTorch(blk.attn.norm[0], res_attn, cfg)
            blk.mlp.norm[0] = IntLayerNormTorch(blk.mlp.norm[0], blk.local_conv[-1], cfg)
            blk.attn.forward = types.MethodType(lambda self, x: _int_attention_forward(self, x, cfg), blk.attn)
            count += 1
    if count == 0:
        raise ValueError("no TinyViT block found")
    return enc


SETTINGS: dict[str, dict[str, int]] = {
    "int_default": {},  # IntOpsConfig defaults: LN F=8, T=10, R=16; softmax G=6, E=16
    "int_softmax_g8": {"sm_exp_frac_bits": 8},
    "int_small_tables": {"ln_lut_bits": 6, "sm_exp_frac_bits": 4},
    "int_ln_f6": {"ln_frac_bits": 6},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="sw/samfpga/assets/default/checkpoint.pt")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--miou", nargs="*", default=["float", "w8a8_ptq", "int_default"],
                    help="settings whose mIoU is evaluated (the others get embedding figures only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/int_ops_accuracy.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sam = load_model(args.checkpoint)
    float_enc = sam.image_encoder
    held = synthetic_images(sam, 8, seed=1)
    q = quantize_encoder(float_enc, QuantConfig())
    calibrate(q, synthetic_images(sam, 8, seed=0))
    encoders = {"float": float_enc, "w8a8_ptq": q}
    configs = {}
    for name, over in SETTINGS.items():
        configs[name] = IntOpsConfig(**over)
        encoders[name] = with_int_ops(q, configs[name])
    report: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "benchmark": f"samfpga.models.evaluate, synthetic seed 1, {args.images} images",
        "embeddings": "8 held-out images (synthetic seed 1)",
        "command": "python bench/int_ops_accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": {},
    }
    for name, enc in encoders.items():
        entry: dict[str, Any] = {"embedding_vs_float": agreement(float_enc, enc, held),
                                 "embedding_vs_w8a8": agreement(q, enc, held)}
        if name in configs:
            entry["config"] = configs[name].__dict__
        if name in args.miou:
            s = copy.copy(sam)
            s.image_encoder = enc
            t0 = time.time()
            r = evaluate(TorchPredictor(s), seed=1, images=args.images, image_size=sam.img_size,
                         everything_images=0, progress=False)
            entry["miou"] = r["miou"]
            entry["eval_seconds"] = round(time.time() - t0, 1)
        report["results"][name] = entry
        print(name, json.dumps(entry), flush=True)
    base = report["results"]["float"].get("miou")
    for r in report["results"].values():
        if base and "miou" in r:
            r["miou_drop_points"] = {k: round(100 * (base[k] - v), 2) for k, v in r["miou"].items()}
    path = Path(args.out)
    write_atomic(path, json.dumps(report, indent=2) + "\n")
    write_atomic(path.with_suffix(".md"), render(report))
    print(f"wrote {path}")
    return 0


def render(report: dict[str, Any]) -> str:
    rows = ["| setting | mIoU 1 point / box / 3 clicks | drop vs float, points | cosine vs float | rel. L2 vs float "
            "| cosine vs W8A8 | rel. L2 vs W8A8 |", "|---|---|---|---|---|---|---|"]
    for name, r in report["results"].items():
        m = r.get("miou")
        mi = f"{m['center_point']:.4f} / {m['box']:.4f} / {m['clicks_3']:.4f}" if m else "–"
        d = r.get("miou_drop_points")
        dr = f"{d['center_point']:+.2f} / {d['box']:+.2f} / {d['clicks_3']:+.2f}" if d else "–"
        ef, eq = r["embedding_vs_float"], r["embedding_vs_w8a8"]
        rows.append(f"| {name} | {mi} | {dr} | {ef['cosine']:.5f} | {ef['rel_l2']:.4f} | {eq['cosine']:.5f} | "
                    f"{eq['rel_l2']:.4f} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
