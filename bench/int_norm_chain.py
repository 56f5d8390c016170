"""The whole 64² test encoder with integer LayerNorm / softmax (``QuantConfig(int_norm=True)``) through the chain,
tolerance 0: Brevitas -> QONNX -> FINN python execution after every step to convert_to_hw (int_ops on, the
default), then ``samfpga build-hw`` (every software step but HDL generation) and FINN's python execution of the
final graph (IntLayerNorm_rtl / IntSoftmax_rtl and the other HW layers through their python models).

    .venv/bin/python bench/int_norm_chain.py [--images 2] [--out bench/results/int_norm_chain.json]

(tests/test_int_norm_chain.py checks the same on slices of this encoder within the test time budget.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--out", default="bench/results/int_norm_chain.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from samfpga.hw.build import SOFTWARE_STEPS
    from samfpga.hw.build.package import finn_execute, load_build
    from samfpga.hw.build.verify import CHAIN_STEPS, run_chain
    from samfpga.hw.build_cli import main as build_hw
    from samfpga.models.quant import QuantConfig, calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.export import compare_with_qonnx, op_census
    from samfpga.models.quant.source import statistics_images, tiny_student_encoder

    t0 = time.time()
    q = calibrate(quantize_encoder(tiny_student_encoder(), QuantConfig(int_norm=True)), statistics_images(4, seed=0))
    x = statistics_images(args.images, seed=5)
    with torch.no_grad():
        ref = q(x).numpy()
    report: dict = {"command": "python bench/int_norm_chain.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                    "model": "tiny student encoder (samfpga.models.quant.source.tiny_student_encoder, seed 3), "
                             "W8A8 po2, QuantConfig(int_norm=True), PTQ on 4 statistics images (seed 0)",
                    "inputs": f"{args.images} statistics images (seed 5)", "tolerance": 0}
    with tempfile.TemporaryDirectory(prefix="int_norm_chain.") as td:
        td = Path(td)
        onnx_path = export_qonnx(q, td / "enc.onnx", (1, 3, 64, 64))
        report["qonnx_ops"] = op_census(onnx_path)
        report["brevitas_vs_qonnx"] = [compare_with_qonnx(q, onnx_path, x[i:i + 1]) for i in range(args.images)]
        stages: dict[str, int] = {}
        for i in range(args.images):
            for s in run_chain(onnx_path, x[i:i + 1].numpy(), td / f"chain{i}", steps=CHAIN_STEPS):
                d = int((s.output.reshape(ref[i:i + 1].shape) != ref[i:i + 1]).sum())
                stages[s.step] = stages.get(s.step, 0) + d
                if i == 0:
                    report.setdefault("ops_after", {})[s.step] = s.op_types
        report["chain_mismatches_vs_brevitas"] = stages
        steps = ",".join(s for s in SOFTWARE_STEPS if s != "hw_codegen")
        t1 = time.time()
        if build_hw(["--board", "kv260", "--model", str(onnx_path), "--steps", steps, "--out", str(td / "b")]) != 0:
            raise RuntimeError("build-hw failed")
        report["build_seconds"] = round(time.time() - t1, 1)
        final, _, _ = load_build(td / "b")
        report["final_ops"] = dict(Counter(n.op_type for n in final.graph.node))
        report["final_float_input_hw_layers"] = [
            n.name for n in final.graph.node if n.domain.startswith("finn.custom_op.fpgadataflow")
            and not final.get_tensor_datatype(n.input[0]).is_integer()]
        bd = json.loads((td / "b" / "report.json").read_text())
        report["build_int_ops"] = bd["int_ops"]
        got = np.concatenate([finn_execute(td / "b", x[i:i + 1].numpy(), td / f"exec{i}").reshape(ref[i:i + 1].shape)
                              for i in range(args.images)])
        report["final_graph_mismatches_vs_brevitas"] = int((got != ref).sum())
        report["elements"] = int(ref.size)
        report["output_unique_values"] = int(np.unique(ref).size)
    report["seconds"] = round(time.time() - t0, 1)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
