"""The whole chain on a small encoder of the bundled student's family: Brevitas W8A8 -> QONNX -> FINN build for
a board (``samfpga build-hw``) -> open RTL simulation of the build's own RTL nodes (``samfpga.hw.sim --model``).

The encoder is the chain tests' tiny one (``samfpga.models.quant.source.TINY_STUDENT``, as tests/test_quant.py: 64x64 input, one block per stage,
seeded random weights, PTQ on 4 synthetic-statistics images). One node per RTL op type and stream datatype
signature (input and output FINN datatypes, so e.g. INT8 / INT32 / FLOAT32 InnerShuffles and integer / float
Thresholding each get one), plus a few more MVAUs, is simulated; float streams are driven with IEEE words. HLS nodes
are listed under ``coverage`` as not simulated (their HDL needs Vitis HLS).

    .venv/bin/python bench/sim_encoder.py [--board kv260] [--out out/sim_encoder]   # about 5-8 min on 2 cores
    .venv/bin/python bench/sim_encoder.py --graph OUT/build/intermediate/NN_hw_codegen.onnx   # reuse a build
Writes OUT/report.json (the sim report) and copies it to hw/reports/sim/encoder_report.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXTRA = ("MVAU_rtl_12", "MVAU_rtl_20", "ConvolutionInputGenerator_rtl_3", "Thresholding_rtl_3")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "sim_encoder")
    ap.add_argument("--max-vectors", type=int, default=16)
    # the MLP's second MVAU at SIMD = PE = 1 and 16 tokens is 262144 cycles: about a minute of cocotb
    ap.add_argument("--max-cycles", type=int, default=300_000)
    ap.add_argument("--graph", type=Path, default=None, help="bench this FINN HW graph instead of building one")
    args = ap.parse_args(argv)

    from samfpga.hw.finn_env import boot
    from samfpga.hw.sim.__main__ import main as sim_main

    if args.graph is None and args.out.exists():
        shutil.rmtree(args.out)  # a fresh build; with --graph the given graph may live under OUT
    shutil.rmtree(args.out / "sim_work", ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    graph = args.graph or _build(args)
    if graph is None:
        return 1

    boot()
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops in the graph)

    m = ModelWrapper(str(graph))
    names = select_nodes(m)
    report = args.out / "report.json"
    rc = sim_main(["--model", str(graph), "--only", *names, "--max-vectors", str(args.max_vectors),
                   "--max-cycles", str(args.max_cycles), "--out", str(report), "--work", str(args.out / "sim_work")])
    data = json.loads(report.read_text())
    data["coverage"] = coverage(m, data["benches"])
    for row in data["coverage"]:
        print(f"[sim_encoder] {row['op_type']:32s} nodes={row['nodes']:3d} benched={len(row['benched']):2d} "
              f"passed={row['passed']:2d} {row['not_simulated_because']}")
    report.write_text(json.dumps(data, indent=1) + "\n")
    shutil.copyfile(report, ROOT / "hw" / "sim" / "encoder_report.json")
    return rc


def _build(args) -> Path | None:
    """Brevitas W8A8 of the tiny encoder -> QONNX -> ``samfpga build-hw``; returns its last hw_codegen graph."""
    import torch

    from samfpga.hw import build_cli
    from samfpga.models.quant import calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import statistics_images, tiny_student_encoder

    torch.set_num_threads(1)
    q = quantize_encoder(tiny_student_encoder(seed=3))
    calibrate(q, statistics_images(4, seed=0))
    qonnx = export_qonnx(q, args.out / "tiny_w8a8.onnx", (1, 3, 64, 64))
    build_dir = args.out / "build"
    rc = build_cli.main(["--board", args.board, "--model", str(qonnx), "--out", str(build_dir)])
    graphs = sorted((build_dir / "intermediate").glob("*_hw_codegen.onnx"))  # NN_ depends on the step list
    if not graphs:
        print(f"build-hw returned {rc} and wrote no {build_dir}/intermediate/NN_hw_codegen.onnx", file=sys.stderr)
        return None
    return graphs[-1]


def _signature(m, n) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(op type, datatypes of the inputs, datatypes of the outputs) of node ``n``; an initializer input (weights,
    thresholds) is marked ``=`` so a streamed operand (attention matmul) differs from stored weights."""
    ins = tuple(("=" if m.get_initializer(t) is not None else "") + m.get_tensor_datatype(t).name for t in n.input)
    outs = tuple(m.get_tensor_datatype(t).name for t in n.output)
    return n.op_type, ins, outs


def select_nodes(m) -> list[str]:
    """The first RTL node of every (op type, stream datatypes) signature, plus the EXTRA nodes present."""
    first: dict[tuple, str] = {}
    counts = collections.Counter()
    for n in m.graph.node:
        if n.op_type.endswith("_rtl"):
            sig = _signature(m, n)
            counts[sig] += 1
            first.setdefault(sig, n.name)
    for (op, ins, outs), k in sorted(counts.items()):
        print(f"[sim_encoder] {op:32s} {','.join(ins):>20s} -> {','.join(outs):8s} {k} node(s)")
    names = list(first.values())
    return names + [n for n in EXTRA if n not in names and any(x.name == n for x in m.graph.node)]


def coverage(m, benches: list[dict]) -> list[dict]:
    """Per op type of the graph: node count, benched node names, how many passed, and why a type is not benched."""
    by_type: dict[str, list[str]] = collections.defaultdict(list)
    for n in m.graph.node:
        by_type[n.op_type].append(n.name)
    result = {b["name"]: b["passed"] for b in benches}
    rows = []
    for op, node_names in sorted(by_type.items()):
        benched = [x for x in node_names if x in result]
        if benched:
            why = ""
        elif op.endswith("_hls"):
            why = "HLS layer: its HDL needs Vitis HLS (FINN+ has no RTL variant of it for this part)"
        elif op.endswith("_rtl"):
            why = "RTL type not selected (see select_nodes)"
        else:
            why = "runs on the host (not a HW layer)"
        rows.append({"op_type": op, "nodes": len(node_names), "benched": benched,
                     "passed": sum(result[x] for x in benched), "not_simulated_because": why})
    return rows


if __name__ == "__main__":
    sys.exit(main())
