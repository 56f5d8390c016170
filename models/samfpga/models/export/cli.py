"""``python -m samfpga.models.export`` / ``samfpga export``: write an ONNX bundle from a checkpoint or variant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..build import build_sam
from ..checkpoint import CheckpointError
from .bundle import ONNX_OPSET, export_bundle


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="samfpga export",
        description="Export a model as an ONNX bundle (bundle.json, encoder.onnx, decoder.onnx) for the host runtime.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="official-layout state dict or samfpga checkpoint")
    src.add_argument("--random", action="store_true", help="seeded random weights (pipeline tests only)")
    p.add_argument("--variant", default="vit_t", help="model variant for official-layout checkpoints (default vit_t)")
    p.add_argument("--image-size", type=int, default=None, help="encoder input side (default: the variant's)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random weights")
    p.add_argument("--allow-pickle", action="store_true", help="accept pickled whole-module checkpoints (runs code)")
    p.add_argument("--opset", type=int, default=ONNX_OPSET)
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle directory")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.checkpoint is not None:
            sam = build_sam(args.variant, checkpoint=args.checkpoint, image_size=args.image_size,
                            allow_pickle=args.allow_pickle)
            source = f"checkpoint {args.checkpoint.name}"
        else:
            torch.manual_seed(args.seed)
            sam = build_sam(args.variant, image_size=args.image_size)
            source = f"random weights, variant {args.variant}, seed {args.seed}"
        out = export_bundle(sam, args.out, source=source, opset=args.opset, overwrite=args.overwrite)
    except (CheckpointError, ValueError, FileExistsError) as err:
        print(f"samfpga export: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote bundle {out} ({source})")
    return 0
