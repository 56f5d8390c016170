"""The whole 64² tiny test encoder (tests/test_int_bias.py's: seeded non-zero Linear biases, W8A8 PTQ, int_norm)
with and without ``QuantConfig.bias_on_grid`` through the FINN chain: python execution after every step to
convert_to_hw (tolerance 0, seeded normal input), and the layer census after convert_to_hw (Requant vs
Thresholding).

    python bench/int_bias_tiny.py [--out bench/results/int_bias_tiny.json]
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
    ap.add_argument("--out", default="bench/results/int_bias_tiny.json")
    args = ap.parse_args(argv)
    from samfpga.hw.build.verify import run_chain
    from samfpga.models.quant import export_qonnx
    from samfpga.models.quant.source import tiny_quant_encoder

    report = {"command": "python bench/int_bias_tiny.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "input": "normal(0, 1) (1,3,64,64), numpy seed 7", "tolerance": 0, "variants": {}}
    x = np.random.default_rng(7).normal(size=(1, 3, 64, 64)).astype(np.float32)
    for name, on in (("float_bias", False), ("bias_on_grid", True)):
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="int_bias_tiny.") as td:
            q = tiny_quant_encoder(int_norm=True, bias_on_grid=on, linear_bias_std=0.1)
            onnx = export_qonnx(q, Path(td) / "enc.onnx", (1, 3, 64, 64))
            stages = run_chain(onnx, x, Path(td) / "work")
        ref = stages[0].output
        hw = stages[-1].op_types
        report["variants"][name] = {
            "stages": [{"step": s.step, "mismatches_vs_previous": int((s.output.reshape(ref.shape) !=
                                                                       p.output.reshape(ref.shape)).sum())}
                       for p, s in zip([stages[0], *stages], stages, strict=False)],
            "output_unique_values": int(np.unique(ref).size),
            "requant": hw.get("Requant", 0),
            "thresholding": sum(v for k, v in hw.items() if k.startswith("Thresholding")),
            "op_types_after_convert_to_hw": hw, "seconds": round(time.time() - t0, 1)}
        print(name, json.dumps(report["variants"][name]), flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
