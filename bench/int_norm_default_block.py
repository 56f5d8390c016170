"""The bundled default's first stage-2 TinyViT block with integer LayerNorm / softmax through the FINN chain,
tolerance 0: the default checkpoint quantized as ``samfpga build-hw`` does (W8A8 PTQ, ``QuantConfig(int_norm=True)``,
8 calibration images), sliced from the PatchMerging conv output ``Conv_10_out0`` to the next block's residual
quantizer ``Quant_73_out0``, executed on a seeded normal input before and after each step to convert_to_hw
(int_ops on, the default).

    .venv/bin/python bench/int_norm_default_block.py [--out bench/results/int_norm_default_block.json]
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
    ap.add_argument("--out", default="bench/results/int_norm_default_block.json")
    args = ap.parse_args(argv)

    from samfpga.hw.build.verify import DEFAULT_BLOCK_CUT, run_cut_chain
    from samfpga.hw.build_cli import quantize_checkpoint
    from samfpga.models.quant.export import op_census

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="int_norm_default.") as td:
        td = Path(td)
        full = quantize_checkpoint(args.checkpoint, 8, td / "enc.onnx", int_norm=True)
        census = op_census(full)
        stages = run_cut_chain(full, DEFAULT_BLOCK_CUT, td)
    ref = stages[0].output
    report = {
        "command": "python bench/int_norm_default_block.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkpoint": args.checkpoint, "cut": DEFAULT_BLOCK_CUT, "input": "normal(0, 1), numpy seed 7", "tolerance": 0,
        "qonnx_int_nodes": {k: census.get(k, 0) for k in ("QIntLayerNorm", "QIntSoftmax")},
        "elements": int(ref.size), "output_unique_values": int(np.unique(ref).size),
        "stages": [{"step": s.step, "mismatches_vs_previous": int((s.output.reshape(ref.shape) !=
                                                                   p.output.reshape(ref.shape)).sum()),
                    "op_types": s.op_types} for p, s in zip([stages[0], *stages], stages, strict=False)],
        "host_nodes_after_convert_to_hw": stages[-1].host_nodes,
        "seconds": round(time.time() - t0, 1),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
