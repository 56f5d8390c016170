"""The layer-sequential engine's program for a built encoder, run in python on the engine's unit models against the
integer graph's own execution (samfpga.hw.sim.engine_program, docs/engine.md).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_program.py [--graph DIR] [--inputs 4]

DIR: an integer-graph package (graph.json + weights.npz: ``samfpga deploy`` or
``samfpga.hw.build.package.export_build``); default the committed tiny build (tests/runtime/data/tiny_deploy).
Writes bench/results/engine_program.{json,md}: every step (kind, nodes, frame, the GEMM unit's cycles by its
schedule model, the address patterns of its reads and writes), what the graph needs of the engine beyond the
built GEMM unit, and the comparison (tensors compared, mismatching values: 0 expected).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
from samfpga.intexec.executor import load_intgraph

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", type=Path, default=ROOT / "tests" / "runtime" / "data" / "tiny_deploy")
    ap.add_argument("--inputs", type=int, default=4, help="random images to compare on")
    ap.add_argument("--pe", type=int, default=8)
    ap.add_argument("--simd", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "engine_program")
    a = ap.parse_args(argv)
    g = load_intgraph(a.graph)
    unit = engine_unit(g, a.pe, a.simd, a.batch)
    t0 = time.perf_counter()
    prog = compile_program(g, unit)
    t_compile = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    compared = mismatches = 0
    t0 = time.perf_counter()
    for _ in range(a.inputs):
        x = rng.integers(0, 256, g.shape(g.input)).astype(np.float32)
        ref = g.run_all(x)
        mem = run_program(prog, g.run_host_pre(x))
        for s in prog.steps:
            if s.output in ref:
                compared += 1
                mismatches += int(np.count_nonzero(prog.graph_order(s.output, mem[s.output]) != np.asarray(ref[s.output]).ravel()))
    t_run = time.perf_counter() - t0
    steps = prog.summary()
    res = {"graph": str(a.graph.relative_to(ROOT) if a.graph.is_relative_to(ROOT) else a.graph),
           "unit": {k: getattr(unit, k) for k in ("pe", "simd", "batch", "mw", "mh", "a_bits", "acc_bits",
                                                   "raw_bits", "rq_scale_bits")},
           "steps": steps, "needs": prog.needs, "image_bytes": len(prog.image),
           "unit_cycles": sum(s["unit_cycles"] for s in steps),
           "comparison": {"inputs": a.inputs, "tensors_compared": compared, "values_differing": mismatches,
                          "reference": "samfpga.intexec (equal to FINN's python execution: tests/test_backends_quant)"},
           "seconds": {"compile": round(t_compile, 2), "run": round(t_run, 2)}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    kinds = {k: sum(s["kind"] == k for s in steps) for k in ("gemm", "dw", "qk", "vt", "av", "layernorm")}
    lines = [f"# Engine program of {res['graph']}", "",
             "`PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_program.py` (samfpga.hw.sim.engine_program; "
             "python execution on the engine's unit models, no RTL)", "",
             f"GEMM unit: PE {unit.pe} x SIMD {unit.simd}, batch {unit.batch}, {unit.a_bits}-bit activations, "
             f"{unit.acc_bits}-bit sums, raw sums {unit.raw_bits} bits, requantiser scales {unit.rq_scale_bits} bits; "
             f"weight image {len(prog.image):,} bytes; {len(steps)} steps ({', '.join(f'{v} {k}' for k, v in kinds.items())}); "
             f"GEMM unit cycles by its schedule model {res['unit_cycles']:,}.", "",
             f"**Against the integer graph: {compared} stored tensors on {a.inputs} random images, "
             f"{mismatches} values differ.**", "",
             "Needs beyond the built GEMM unit: " + ", ".join(f"{k} = {v}" for k, v in prog.needs.items()), "",
             "| step | kind | nodes | frame | unit cycles | reads (address patterns) |", "|---|---|---|---|---|---|"]
    for s in steps:
        reads = "; ".join(f"{k}: {v}" for k, v in s["reads"].items()) + (f"; write: {s['write']}" if "write" in s else "")
        lines.append(f"| {s['step']} | {s['kind']} | {len(s['nodes'])} | {s['frame'] or ''} | {s['unit_cycles']:,} | "
                     f"{reads} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"{len(steps)} steps, {compared} tensors compared, {mismatches} values differ -> {a.out}.md")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
