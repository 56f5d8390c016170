"""The whole chain on a small encoder of the bundled student's family: Brevitas W8A8 -> QONNX -> FINN build for
a board (``samfpga build-hw``) -> open RTL simulation of the build's own RTL nodes (``samfpga.hw.sim --model``).

The encoder is the chain tests' tiny one (tests/test_quant.py ``TINY``: 64x64 input, one block per stage,
seeded random weights, PTQ on 4 synthetic-statistics images). One node per integer-input RTL op type (and a few
more MVAUs) is simulated; RTL nodes whose input stream is float (thresholds right after float scale
multiplications, float Reshape) cannot be driven with integer words and are listed as not simulated.

    .venv/bin/python bench/sim_encoder.py [--board kv260] [--out out/sim_encoder]   # about 5-8 min on 2 cores
Writes OUT/report.json (the sim report) and copies it to hw/sim/encoder_report.json.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

EXTRA = ("MVAU_rtl_12", "MVAU_rtl_20", "ConvolutionInputGenerator_rtl_3", "Thresholding_rtl_3")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "sim_encoder")
    ap.add_argument("--max-vectors", type=int, default=16)
    args = ap.parse_args(argv)

    import torch
    from test_quant import TINY, images

    from samfpga.hw import build_cli
    from samfpga.hw.finn_env import boot
    from samfpga.hw.sim.__main__ import main as sim_main
    from samfpga.models.build import variant_config
    from samfpga.models.quant import calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import random_student

    torch.set_num_threads(1)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    enc = random_student(seed=3, config=variant_config("vit_t", **TINY)).image_encoder
    q = quantize_encoder(enc)
    calibrate(q, images(4, seed=0))
    qonnx = export_qonnx(q, args.out / "tiny_w8a8.onnx", (1, 3, 64, 64))
    build_dir = args.out / "build"
    rc = build_cli.main(["--board", args.board, "--model", str(qonnx), "--out", str(build_dir)])
    graphs = sorted((build_dir / "intermediate").glob("*_hw_codegen.onnx"))  # NN_ depends on the step list
    if not graphs:
        print(f"build-hw returned {rc} and wrote no {build_dir}/intermediate/NN_hw_codegen.onnx", file=sys.stderr)
        return 1
    graph = graphs[-1]

    boot()
    from qonnx.core.modelwrapper import ModelWrapper

    m = ModelWrapper(str(graph))
    first: dict[tuple[str, bool], str] = {}
    counts = collections.Counter()
    for n in m.graph.node:
        if not n.op_type.endswith("_rtl"):
            continue
        is_float = any(m.get_initializer(t) is None and m.get_tensor_datatype(t).name == "FLOAT32" for t in n.input)
        counts[(n.op_type, is_float)] += 1
        first.setdefault((n.op_type, is_float), n.name)
    names = [v for (op, is_float), v in first.items() if not is_float]
    names += [n for n in EXTRA if n not in names and any(x.name == n for x in m.graph.node)]
    for (op, is_float), k in sorted(counts.items()):
        print(f"[sim_encoder] {op:32s} {'float input' if is_float else 'integer input':14s} {k} node(s)")
    report = args.out / "report.json"
    rc = sim_main(["--model", str(graph), "--only", *names, "--max-vectors", str(args.max_vectors),
                   "--out", str(report), "--work", str(args.out / "sim_work")])
    shutil.copyfile(report, ROOT / "hw" / "sim" / "encoder_report.json")
    return rc


if __name__ == "__main__":
    sys.exit(main())
