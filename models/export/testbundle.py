"""Write the tiny seeded-random bundle the board-environment tests use (tests/runtime/data/tiny_bundle).

The board environment has no torch and cannot export, so its tests read a committed bundle. This script
regenerates it deterministically: ``python -m samfpga.models.export.testbundle [--out DIR]``.
The model is random (seed 0) and tiny (64x64 input, 16-channel embedding); it exercises the pipeline, not
segmentation quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..build import build_sam
from ..sam import Sam
from .bundle import export_bundle

SEED = 0
TINY = dict(
    image_size=64, embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
    window_sizes=[2, 2, 2, 2], out_chans=16, prompt_embed_dim=16, mask_in_chans=4, decoder_mlp_dim=32,
    decoder_heads=2, iou_head_hidden_dim=16,
)
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "tests" / "runtime" / "data" / "tiny_bundle"


def tiny_model(seed: int = SEED) -> Sam:
    """The tiny random model (fixed seed) of the test bundle."""
    torch.manual_seed(seed)
    return build_sam("vit_t", **TINY)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    export_bundle(tiny_model(), args.out, source=f"tiny random test model, seed {SEED}", overwrite=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
