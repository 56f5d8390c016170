"""Generalisation of a model: prompt mIoU on the held-out synthetic split, on held-out domain-randomised scenes
and on the shift split (shape and texture families that no training split draws; see ``samfpga.models.data``).

    .venv/bin/python bench/eval_shift.py [--bundle sw/samfpga/assets/default | --checkpoint CKPT]
        [--splits heldout dr_heldout shift] [--images 40] [--out bench/results/eval_shift_default]

Runs ``samfpga.models.evaluate.evaluate`` (the runtime ``Predictor`` on the model's ONNX bundle) on each split:
1 centre point (best of the multimask outputs by predicted IoU), 1 random point, the tight box, and 3 clicks
of SAM's iterative protocol. Writes ``<out>.json`` (the reports, with per-shape-family mIoU) and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from samfpga.models.data.splits import SPLITS
from samfpga.models.evaluate import evaluate, load_predictor

PROTOCOLS = (("center_point", "1 point"), ("box", "box"), ("clicks_3", "3 clicks"), ("random_point", "random point"))


def markdown(reports: dict[str, dict], model: str, command: str) -> str:
    lines = [f"# Generalisation of {model}", "", f"Measured with `{command}`.", "",
             "| split | images | instances | " + " | ".join(f"mIoU {name}" for _, name in PROTOCOLS) + " |",
             "|---|---|---|" + "---|" * len(PROTOCOLS)]
    for name, r in reports.items():
        lines.append(f"| {name} | {r['split']['images']} | {r['split']['instances']} | "
                     + " | ".join(f"{r['miou'][k]:.3f}" for k, _ in PROTOCOLS) + " |")
    for name, r in reports.items():
        lines += ["", f"## {name}: mIoU per shape family", "",
                  "| family | instances | " + " | ".join(n for _, n in PROTOCOLS) + " |",
                  "|---|---|" + "---|" * len(PROTOCOLS)]
        for kind, v in r["miou_by_kind"].items():
            lines.append(f"| {kind} | {v['instances']} | " + " | ".join(f"{v[k]:.3f}" for k, _ in PROTOCOLS) + " |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--bundle", default=None)
    src.add_argument("--checkpoint", default=None)
    ap.add_argument("--splits", nargs="+", default=["heldout", "dr_heldout", "shift"], choices=sorted(SPLITS))
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/eval_shift_default"))
    args = ap.parse_args(argv)
    if args.bundle is None and args.checkpoint is None:
        args.bundle = "sw/samfpga/assets/default"
    torch.set_num_threads(args.threads)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="samfpga-eval-shift.") as work:
        pred = load_predictor(args.checkpoint, args.bundle, workdir=work, threads=args.threads)
        for name in args.splits:
            reports[name] = evaluate(pred, None, args.images, args.image_size, everything_images=0, split=name)
            print(name, json.dumps(reports[name]["miou"]), flush=True)
    model = args.bundle or args.checkpoint
    command = "python bench/eval_shift.py " + " ".join(sys.argv[1:] if argv is None else argv)
    _write(args.out.with_suffix(".json"), json.dumps({"model": model, "command": command, "splits": reports},
                                                     indent=1) + "\n")
    _write(args.out.with_suffix(".md"), markdown(reports, model, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
