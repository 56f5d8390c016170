"""Accuracy cost of the integer LayerNorm / softmax layers (IntLayerNorm, IntSoftmax) in the quantized bundled
default: the W8A8 model with ``QuantConfig(int_norm=True)`` against the float-LayerNorm/softmax W8A8 model and
the float model; with ``--miou ... int_norm_int_bias`` also ``QuantConfig(int_norm=True, bias_on_grid=True)``
(biases on the accumulator grid, what ``samfpga build-hw`` quantizes since bench/results/int_bias.md).

    .venv/bin/python bench/int_ops_accuracy.py [--images 100] [--out bench/results/int_ops_accuracy.json]

The W8A8 PTQ encoders (as bench/quant_accuracy.py builds them: 8 calibration images of the synthetic training
split, seed 0) are ``QuantConfig()`` and ``QuantConfig(int_norm=True)``: the latter is the model the FINN build
maps onto the integer RTL layers bit-exactly (samfpga.models.quant.int_norm: every LayerNorm, including the neck's
behind their own input quantizers, and every attention softmax, computed by the numpy kernels of
``samfpga.kernels.layernorm`` / ``.softmax`` with the 1/sqrt(d) scale, the q/k scales, the relative-position bias
and the softmax output quantizer folded in). The other int settings are the same model with other table sizes
(``IntOpsConfig``). Reported per setting: mIoU (center point, box, 3 clicks; held-out synthetic split, seed 1)
and embedding cosine / relative L2 on 8 held-out images against the float encoder and against the W8A8 encoder.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from quant_accuracy import agreement, write_atomic  # noqa: E402

from samfpga.bundle import load_bundle  # noqa: E402
from samfpga.kernels.int_params import IntOpsConfig  # noqa: E402
from samfpga.models.evaluate import encoder_predictor, evaluate  # noqa: E402
from samfpga.models.export import export_bundle  # noqa: E402
from samfpga.models.quant import QuantConfig, calibrate, quantize_encoder  # noqa: E402
from samfpga.models.quant.int_norm import IntLayerNorm, IntSoftmax  # noqa: E402
from samfpga.models.quant.source import load_model, synthetic_images  # noqa: E402


def with_tables(qenc: torch.nn.Module, cfg: IntOpsConfig) -> torch.nn.Module:
    """A copy of an int_norm encoder whose integer layers use the tables / widths of ``cfg``."""
    enc = copy.deepcopy(qenc)
    layers = [m for m in enc.modules() if isinstance(m, (IntLayerNorm, IntSoftmax))]
    if not layers:
        raise ValueError("no integer LayerNorm / softmax layer found (not an int_norm model)")
    for m in layers:
        m.cfg = cfg
    return enc


SETTINGS: dict[str, dict[str, int]] = {
    "int_norm": {},  # QuantConfig(int_norm=True) as built: IntOpsConfig defaults, LN F=8, T=10, R=16; softmax G=6
    "int_softmax_g8": {"sm_exp_frac_bits": 8},
    "int_small_tables": {"ln_lut_bits": 6, "sm_exp_frac_bits": 4},
    "int_ln_f6": {"ln_frac_bits": 6},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="sw/samfpga/assets/default/checkpoint.pt")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--miou", nargs="*", default=["float", "w8a8_ptq", "int_norm"],
                    help="settings whose mIoU is evaluated (the others get embedding figures only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/int_ops_accuracy.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sam = load_model(args.checkpoint)
    float_enc = sam.image_encoder
    held = synthetic_images(sam, 8, seed=1)
    calib = synthetic_images(sam, 8, seed=0)
    q = calibrate(quantize_encoder(float_enc, QuantConfig()), calib)
    qi = calibrate(quantize_encoder(float_enc, QuantConfig(int_norm=True)), calib)
    encoders = {"float": float_enc, "w8a8_ptq": q}
    if "int_norm_int_bias" in args.miou:  # the model samfpga build-hw builds: integer biases too (bias_on_grid)
        encoders["int_norm_int_bias"] = calibrate(
            quantize_encoder(float_enc, QuantConfig(int_norm=True, bias_on_grid=True)), calib)
    tmp = Path(tempfile.mkdtemp(prefix="int_ops_accuracy."))
    atexit.register(shutil.rmtree, tmp, True)
    bundle = load_bundle(export_bundle(sam, tmp / "bundle", source=f"checkpoint {args.checkpoint}"))
    configs = {}
    for name, over in SETTINGS.items():
        configs[name] = IntOpsConfig(**over)
        encoders[name] = with_tables(qi, configs[name]) if over else qi
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
            t0 = time.time()
            r = evaluate(encoder_predictor(bundle, enc, args.threads), seed=1, images=args.images,
                         image_size=sam.img_size, everything_images=0, progress=False)
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
