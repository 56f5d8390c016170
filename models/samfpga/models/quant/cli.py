"""``python -m samfpga.models.quant export ...``: quantize (PTQ) the encoder and write its QONNX graph."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from .config import QuantConfig


def _export(args: argparse.Namespace) -> int:
    from .encoder import quantize_encoder
    from .export import compare_with_qonnx, export_qonnx, op_census
    from .ptq import calibrate
    from .source import load_model, synthetic_images

    sam = load_model(None if args.random else args.checkpoint, seed=args.seed)
    cfg = QuantConfig(weight_bits=args.bits, act_bits=args.act_bits or args.bits, scale=args.scale,
                      int_norm=args.int_norm)
    if args.config:
        with open(args.config) as f:
            cfg = QuantConfig.from_dict(json.load(f))
    q = quantize_encoder(sam.image_encoder, cfg)
    t0 = time.time()
    calibrate(q, synthetic_images(sam, args.calib_images, seed=0), bias_correction=args.bias_correction)
    t1 = time.time()
    size = sam.img_size
    path = export_qonnx(q, args.out, (1, 3, size, size))
    print(f"calibrated on {args.calib_images} images in {t1 - t0:.1f}s; wrote {path} in {time.time() - t1:.1f}s")
    report: dict = {"onnx": str(path), "config": cfg.to_dict(), "input_shape": [1, 3, size, size],
                    "op_census": op_census(path)}
    print("op census:", json.dumps(report["op_census"]))
    if args.verify:
        held = synthetic_images(sam, args.verify, seed=1)
        report["qonnx_vs_brevitas"] = [compare_with_qonnx(q, path, x[None]) for x in held]
        print("qonnx vs brevitas:", json.dumps(report["qonnx_vs_brevitas"]))
    if args.report:
        write_json(args.report, report)
    return 0


def write_json(path: str, obj: dict) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samfpga.models.quant", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="PTQ-quantize the image encoder and export QONNX")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="samfpga checkpoint (carries its config)")
    src.add_argument("--random", action="store_true", help="seeded random model of the default student family")
    ex.add_argument("--seed", type=int, default=0, help="seed of --random")
    ex.add_argument("--out", required=True, help="output .onnx")
    ex.add_argument("--bits", type=int, default=8, help="weight bits (and activation bits unless --act-bits)")
    ex.add_argument("--act-bits", type=int, default=None)
    ex.add_argument("--scale", choices=["po2", "float"], default="po2")
    ex.add_argument("--int-norm", action="store_true",
                    help="integer LayerNorm/softmax (QuantConfig.int_norm): the model samfpga build-hw maps onto the "
                         "integer RTL layers bit-exactly")
    ex.add_argument("--config", help="QuantConfig as JSON (overrides --bits/--act-bits/--scale)")
    ex.add_argument("--calib-images", type=int, default=8)
    ex.add_argument("--bias-correction", action="store_true")
    ex.add_argument("--verify", type=int, default=0, metavar="N",
                    help="run the graph under qonnx execution on N held-out images and compare with Brevitas")
    ex.add_argument("--report", help="write op census (+ verification) as JSON here")
    ex.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        return _export(args)
    except (OSError, ValueError) as err:
        print(f"samfpga quant: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
