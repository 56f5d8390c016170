"""Publish a trained student as the bundled default: compact fp16 checkpoint + the configs that made it.

``python -m samfpga.models.training.publish --checkpoint out/train/default_student/model.pt \
    --configs models/samfpga/models/training/configs/default_teacher.yaml ... --out sw/samfpga/assets/default``

Writes ``checkpoint.pt`` (samfpga layout, float16 weights, embedded SamConfig so ``build_sam(checkpoint=...)``
rebuilds it) and ``train_config.yaml`` (every training stage's full config, in order).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..build import build_sam
from ..checkpoint import save_checkpoint
from .config import load_config


def publish(checkpoint: Path, configs: list[Path], out: Path) -> Path:
    model = build_sam(checkpoint=checkpoint)
    stages = [{"config_file": str(p), **load_config(p).to_dict()} for p in configs]
    out.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(model, out / "checkpoint.pt", half=True, config=model.config.to_dict())
    tmp = out / ".train_config.yaml.tmp"
    tmp.write_text("# Training stages of the bundled default model (reproduce: make train-default)\n"
                   + yaml.safe_dump({"stages": stages}, sort_keys=False))
    tmp.replace(out / "train_config.yaml")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="the trained student (fp32 model.pt)")
    ap.add_argument("--configs", type=Path, nargs="+", required=True, help="training configs, in stage order")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        path = publish(args.checkpoint, args.configs, args.out)
    except (OSError, ValueError) as err:
        print(f"publish: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {args.out / 'train_config.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
