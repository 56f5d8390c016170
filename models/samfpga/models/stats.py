"""Parameters and multiply-accumulates per stage: ``python -m samfpga.models.stats vit_t [--image-size N]``.

MACs are counted by torch's ``FlopCounterMode`` (matrix products and convolutions; FLOPs / 2) on meta
tensors, so no real computation runs. Elementwise work (norms, softmax, activations) is not counted,
as in the published GMAC figures.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .build import build_from_config, variant_config
from .sam import Sam


@dataclass
class StageStats:
    name: str
    params: int
    macs: int


@dataclass
class ModelStats:
    variant: str
    image_size: int
    encoder_stages: list[StageStats]
    encoder_params: int  # excluding the unused classifier head
    encoder_head_params: int  # the unused classifier head official checkpoints carry
    encoder_macs: int  # as executed, window padding included
    window_padding_macs: int  # qkv/proj work spent on the zero tokens that pad windows
    attention_matmul_macs: int  # QK^T and AV of the encoder's window attention
    prompt_encoder_params: int
    mask_decoder_params: int
    decoder_macs_per_prompt: int
    total_params: int

    def table(self) -> str:
        g = 1e9
        rows = [f"{self.variant} @ {self.image_size}x{self.image_size}", f"{'stage':<28}{'params':>12}{'GMAC':>10}"]
        for s in self.encoder_stages:
            rows.append(f"  encoder.{s.name:<19}{s.params:>12,}{s.macs / g:>10.3f}")
        rows += [
            f"{'encoder (no head)':<28}{self.encoder_params:>12,}{self.encoder_macs / g:>10.3f}",
            f"{'  of which QK^T + AV':<28}{'':>12}{self.attention_matmul_macs / g:>10.3f}",
            f"{'  of which window padding':<28}{'':>12}{self.window_padding_macs / g:>10.3f}",
            f"{'encoder without padding':<28}{'':>12}{(self.encoder_macs - self.window_padding_macs) / g:>10.3f}",
            f"{'encoder classifier head':<28}{self.encoder_head_params:>12,}{'(unused)':>10}",
            f"{'prompt encoder':<28}{self.prompt_encoder_params:>12,}{'':>10}",
            f"{'mask decoder (per prompt)':<28}{self.mask_decoder_params:>12,}{self.decoder_macs_per_prompt / g:>10.3f}",
            f"{'total':<28}{self.total_params:>12,}",
        ]
        return "\n".join(rows)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _module_macs(counter: FlopCounterMode) -> dict[str, int]:
    return {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}


def window_padding_macs(encoder: nn.Module) -> int:
    """MACs of the attention's qkv and proj layers on the zero tokens that pad each stage to whole windows.

    Published TinyViT-5M figures (37.4 GMAC at 1024) count these layers on real tokens only.
    """
    from .image_encoder.tiny_vit import TinyViTBlock

    total = 0
    for blk in encoder.modules():
        if isinstance(blk, TinyViTBlock):
            h, w = blk.input_resolution
            ws = blk.window_size
            padded = (-(-h // ws) * ws) * (-(-w // ws) * ws)
            per_token = blk.attn.qkv.in_features * blk.attn.qkv.out_features
            per_token += blk.attn.proj.in_features * blk.attn.proj.out_features
            total += (padded - h * w) * per_token
    return total


def model_stats(model: Sam, variant: str = "custom") -> ModelStats:
    """Count parameters and MACs of ``model`` (moved to the meta device; the input is never materialised)."""
    model = model.to("meta").eval()
    enc = model.image_encoder
    s = model.img_size
    with FlopCounterMode(display=False, depth=None) as counter:
        enc(torch.empty(1, 3, s, s, device="meta"))
    macs = _module_macs(counter)
    counts = counter.get_flop_counts()
    enc_key = "TinyViT" if "TinyViT" in macs else next(iter(macs))
    stage_names = [n for n, _ in enc.named_children() if n not in ("norm_head", "head")]
    stages = []
    for n in stage_names:
        child = getattr(enc, n)
        if isinstance(child, nn.ModuleList):
            for i, sub in enumerate(child):
                stages.append(StageStats(f"{n}.{i}", _params(sub), macs.get(f"{enc_key}.{n}.{i}", 0)))
        else:
            stages.append(StageStats(n, _params(child), macs.get(f"{enc_key}.{n}", 0)))
    attn_macs = sum(
        sum(ops.values()) // 2 for name, ops in counts.items() if name.endswith((".matmul_qk", ".matmul_av"))
    )
    head = [m for n, m in enc.named_children() if n in ("norm_head", "head")]
    head_params = sum(_params(m) for m in head)
    emb = model.prompt_encoder.image_embedding_size
    c = model.prompt_encoder.embed_dim
    with FlopCounterMode(display=False, depth=None) as dcounter:
        # one point plus the padding point, as the predictor sends for a single click
        sparse = torch.empty(1, 2, c, device="meta")
        dense = torch.empty(1, c, *emb, device="meta")
        model.mask_decoder(
            torch.empty(1, c, *emb, device="meta"), torch.empty(1, c, *emb, device="meta"), sparse, dense, True
        )
    dec_macs = _module_macs(dcounter).get("Global", 0)
    return ModelStats(
        variant=variant,
        image_size=s,
        encoder_stages=stages,
        encoder_params=_params(enc) - head_params,
        encoder_head_params=head_params,
        encoder_macs=macs.get("Global", 0),
        window_padding_macs=window_padding_macs(enc),
        attention_matmul_macs=attn_macs,
        prompt_encoder_params=_params(model.prompt_encoder),
        mask_decoder_params=_params(model.mask_decoder),
        decoder_macs_per_prompt=dec_macs,
        total_params=_params(model),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samfpga.models.stats", description=__doc__.splitlines()[0])
    ap.add_argument("variant", nargs="?", default="vit_t")
    ap.add_argument("--image-size", type=int, default=None, help="encoder input side (default: the variant's)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    with torch.device("meta"):
        model = build_from_config(variant_config(args.variant, args.image_size))
    st = model_stats(model, args.variant)
    print(json.dumps(asdict(st), indent=2) if args.json else st.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
