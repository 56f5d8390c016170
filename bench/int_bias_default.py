"""The bundled default with biases on the accumulator grid (``QuantConfig.bias_on_grid``), tolerance 0.

The default checkpoint quantized as ``samfpga build-hw`` does (W8A8 PTQ, ``QuantConfig(int_norm=True,
bias_on_grid=True)``, 8 calibration images): the integer bias widths; Brevitas vs QONNX execution of the whole
encoder on held-out images; then the first stage-2 TinyViT block (the cut of bench/int_norm_default_block.py)
through the FINN chain (python execution after every step to convert_to_hw, seeded normal input), with its
layer census (Requant vs Thresholding).

    python bench/int_bias_default.py [--no-bias-on-grid] [--out bench/results/int_bias_default.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="sw/samfpga/assets/default/checkpoint.pt")
    ap.add_argument("--bias-on-grid", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--images", type=int, default=2, help="held-out images for Brevitas vs QONNX")
    ap.add_argument("--out", default="bench/results/int_bias_default.json")
    args = ap.parse_args(argv)
    import torch

    from samfpga.hw.build.verify import DEFAULT_BLOCK_CUT, run_cut_chain
    from samfpga.models.quant import QuantConfig, calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.export import compare_with_qonnx
    from samfpga.models.quant.source import load_model, synthetic_images

    torch.set_num_threads(1)
    t0 = time.time()
    sam = load_model(args.checkpoint)
    q = quantize_encoder(sam.image_encoder, QuantConfig(int_norm=True, bias_on_grid=args.bias_on_grid))
    calibrate(q, synthetic_images(sam, 8))  # as build_cli.quantize_checkpoint
    bits = getattr(q, "bias_bits", {})
    held = synthetic_images(sam, args.images, seed=1)
    with tempfile.TemporaryDirectory(prefix="int_bias_default.") as td:
        td = Path(td)
        full = export_qonnx(q, td / "enc.onnx", (1, 3, sam.img_size, sam.img_size))
        compares = [compare_with_qonnx(q, full, held[i:i + 1]) for i in range(args.images)]
        stages = run_cut_chain(full, DEFAULT_BLOCK_CUT, td)
    ref = stages[0].output
    report = {
        "command": "python bench/int_bias_default.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkpoint": args.checkpoint, "bias_on_grid": args.bias_on_grid, "tolerance": 0,
        "integer_bias_bits": {"max": max(bits.values()) if bits else None, "per_layer": bits},
        "brevitas_vs_qonnx_full_encoder": compares,
        "block_cut": DEFAULT_BLOCK_CUT, "block_input": "normal(0, 1), numpy seed 7", "block_elements": int(ref.size),
        "block_output_unique_values": int(np.unique(ref).size),
        "block_stages": [{"step": s.step, "mismatches_vs_previous": int((s.output.reshape(ref.shape) !=
                                                                         p.output.reshape(ref.shape)).sum()),
                          "op_types": s.op_types} for p, s in zip([stages[0], *stages], stages, strict=False)],
        "seconds": round(time.time() - t0, 1),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "integer_bias_bits"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
