"""Quantization cost on the held-out benchmark: float vs Brevitas PTQ / QAT at several bit widths.

    .venv/bin/python bench/quant_accuracy.py [--checkpoint sw/samfpga/assets/default/checkpoint.pt] [--images 100]
        [--qat-steps 100] [--out bench/results/quant_accuracy.json]

For each setting the float model's image encoder is replaced by its quantized copy (decoder and prompt
encoder stay float: the float model's exported decoder.onnx on the runtime ``Predictor``, with the torch encoder
as its encoder backend) and ``samfpga.models.evaluate.evaluate`` runs on the held-out synthetic split (seed 1):
mIoU per prompt type. Also the embedding agreement with the float encoder on 8 held-out images (cosine,
relative L2). PTQ calibrates on 8 training-split (seed 0) images; QAT distils the float encoder on 64.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from samfpga.bundle import load_bundle
from samfpga.models.evaluate import encoder_predictor, evaluate
from samfpga.models.export import export_bundle
from samfpga.models.quant import QuantConfig, calibrate, quantize_encoder
from samfpga.models.quant.qat import QATConfig, qat_distill
from samfpga.models.quant.source import load_model, synthetic_images

SETTINGS: dict[str, dict[str, Any]] = {
    "w8a8_ptq": {"config": {}},
    "w8a8_ptq_float_scales": {"config": {"scale": "float"}},
    "w6a6_ptq": {"config": {"weight_bits": 6, "act_bits": 6}},
    "w4a8_ptq": {"config": {"weight_bits": 4}},
    "w8a8_qat": {"config": {}, "qat": True},
    "w4a8_qat": {"config": {"weight_bits": 4}, "qat": True},
}


def agreement(ref: torch.nn.Module, enc: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        yf, yq = ref(x), enc(x)
    return {
        "cosine": float(torch.nn.functional.cosine_similarity(yf.flatten(), yq.flatten(), dim=0)),
        "rel_l2": float((yf - yq).norm() / yf.norm()),
    }


def render_table(report: dict[str, Any]) -> str:
    """Markdown table of a report: mIoU (center point, box, 3 clicks), drop vs float in points, embedding cosine."""
    rows = ["| setting | mIoU 1 point | mIoU box | mIoU 3 clicks | drop = float − quant, mIoU points (1 point / box / 3 clicks) "
            "| embedding cosine | embedding rel. L2 |", "|---|---|---|---|---|---|---|"]
    for name, r in report["results"].items():
        m, d, e = r["miou"], r["miou_drop_points"], r["embedding_vs_float"]
        rows.append(f"| {name} | {m['center_point']:.4f} | {m['box']:.4f} | {m['clicks_3']:.4f} | "
                    f"{d['center_point']:+.2f} / {d['box']:+.2f} / {d['clicks_3']:+.2f} | {e['cosine']:.4f} | "
                    f"{e['rel_l2']:.4f} |")
    return "\n".join(rows) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="sw/samfpga/assets/default/checkpoint.pt")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--qat-steps", type=int, default=100)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/quant_accuracy.json")
    ap.add_argument("--render-only", action="store_true", help="only write the .md table of an existing --out")
    args = ap.parse_args(argv)
    if args.render_only:
        path = Path(args.out)
        write_atomic(path.with_suffix(".md"), render_table(json.loads(path.read_text())))
        return 0
    torch.set_num_threads(args.threads)
    sam = load_model(args.checkpoint)
    float_enc = sam.image_encoder
    calib = synthetic_images(sam, 8, seed=0)
    held = synthetic_images(sam, 8, seed=1)
    report: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "checkpoint_sha256": hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest(),
        "benchmark": f"samfpga.models.evaluate, synthetic seed 1, {args.images} images",
        "calibration": "8 images, synthetic seed 0", "qat": {"steps": args.qat_steps, "images": 64, "loss": "embedding MSE"},
        "results": {},
    }

    tmp = Path(tempfile.mkdtemp(prefix="quant_accuracy."))
    atexit.register(shutil.rmtree, tmp, True)
    bundle = load_bundle(export_bundle(sam, tmp / "bundle", source=f"checkpoint {args.checkpoint}"))

    def run(name: str, enc: torch.nn.Module, extra: dict[str, Any]) -> None:
        t0 = time.time()
        r = evaluate(encoder_predictor(bundle, enc, args.threads), seed=1, images=args.images, image_size=sam.img_size, everything_images=0,
                     progress=False)
        entry = {"miou": r["miou"], "embedding_vs_float": agreement(float_enc, enc, held), **extra,
                 "eval_seconds": round(time.time() - t0, 1)}
        report["results"][name] = entry
        print(name, json.dumps(entry), flush=True)

    run("float", float_enc, {})
    for name in args.settings:
        spec = SETTINGS[name]
        cfg = QuantConfig.from_dict(spec["config"])
        q = quantize_encoder(float_enc, cfg)
        calibrate(q, calib)
        extra: dict[str, Any] = {"config": cfg.to_dict()}
        if spec.get("qat"):
            t0 = time.time()
            losses = qat_distill(q, float_enc, synthetic_images(sam, 64, seed=0), QATConfig(steps=args.qat_steps))
            extra["qat_loss_first_last"] = [losses[0], losses[-1]]
            extra["qat_seconds"] = round(time.time() - t0, 1)
        run(name, q, extra)
    base = report["results"]["float"]["miou"]
    for r in report["results"].values():
        r["miou_drop_points"] = {k: round(100 * (base[k] - v), 2) for k, v in r["miou"].items()}
    path = Path(args.out)
    write_atomic(path, json.dumps(report, indent=2) + "\n")
    write_atomic(path.with_suffix(".md"), render_table(report))
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
