"""``python -m samfpga.models.training.cli CONFIG.yaml [key=value ...]``: run (or resume) a training run.

Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel, gloo on CPU).
"""

from __future__ import annotations

import argparse
import sys

from .config import load_config
from .trainer import train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="samfpga-train", description=__doc__.splitlines()[0])
    ap.add_argument("config", help="YAML training config (see models/samfpga/models/training/configs/)")
    ap.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. steps=100 data.train_images=64")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except (OSError, ValueError) as err:
        print(f"samfpga-train: {err}", file=sys.stderr)
        return 2
    path = train(cfg)
    print(f"final checkpoint: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
