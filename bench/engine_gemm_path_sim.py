"""The engine's GEMM path in RTL simulation on the tiny build's program: every step it runs, DDR to DDR, started by
the bench and by the board's host sequencer through the path's AXI-Lite block.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_gemm_path_sim.py [--out bench/results/engine_gemm_path_sim]

The tiny program (tests/test_engine_program.py's: PE 8 x SIMD 16, batch 16) runs on one image; its path steps
(``engine_gemm_path.path_steps``: the image's conv behind the image window, plain GEMMs, residual adder, LayerNorm on
the input, depthwise, 3 x 3 convs behind the depthwise unit's window, the attention's QK^T + softmax, V transpose and
AV) run on engine_gemm_path.sv
free-running (the bench pulses start, waits for done) and on engine_gemm_path_axil.sv run by
``samfpga.backends.step_sequencer.StepSequencer`` (each MMIO access one AXI-Lite transaction), writing only changed
registers and every register, and the board's frame from the committed host files run by the host's own code a
step at a time and overlapped (each step's registers written while the step before runs; the block latches
them when a step starts, CFG_LATCH = 1): its cycles against the steps' own. Per step: its kind, the cycles it took against its model (``engine_gemm_path
.model_cycles``: the GEMM unit's schedule, or the depthwise unit's input / writer beats, or the image window's rows), and the sequencer's MMIO
writes and polls; per run, whether the DDR image
afterwards equals the program's stored tensors byte for byte. Writes ``<out>.json`` / ``<out>.md``. Two Verilator
builds and the runs take about two minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "engine_gemm_path_sim")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samfpga.hw.sim import engine_gemm_path as gp
    from tests.test_engine_program import program_run

    t0 = time.time()
    _, prog, mem = program_run(3)
    steps = gp.path_steps(prog)
    lay = gp.layout(prog, steps)
    img, want = gp.ddr_images(prog, mem, steps, lay)
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_gemm_path_sim.py",
           "source": "RTL simulation (Verilator + cocotb) of engine_gemm_path.sv / engine_gemm_path_axil.sv",
           "unit": {"pe": prog.unit.pe, "simd": prog.unit.simd, "batch": prog.unit.batch}, "steps": [], "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        direct = Path(tmp) / "direct"
        gp.build(prog, direct)
        res = gp.simulate(cfgs, bytes(img), [{"name": "free"}], direct, seed=5)
        if res.error:
            raise SystemExit(res.error)
        out["runs"]["direct"] = {"ddr_equal": res.images[0] == bytes(want)}
        axil = Path(tmp) / "axil"
        gp.build_axil(prog, axil, cfg_read=False)
        # the board's frame from the committed host files of this program (their steps at address 0 are cfgs)
        engine = Path(__file__).resolve().parents[1] / "tests" / "runtime" / "data" / "tiny_engine"
        exp = np.load(engine / "expected.npz")
        np.save(Path(tmp) / "x.npy", exp["x"])
        frame = {"host": str(engine), "x": str(Path(tmp) / "x.npy")}
        seq = gp.simulate_axil(cfgs, [s.name for s in steps], bytes(img),
                               [{"name": "changed"}, {"name": "every", "only_changed": False},
                                {"name": "frame", **frame}, {"name": "frame_overlap", **frame, "overlap": True}],
                               axil, seed=7)
        if seq.error:
            raise SystemExit(seq.error)
        for p, image in zip(seq.passes, seq.images, strict=True):
            if "host" in p or p["name"].startswith("frame"):
                total = sum(res.passes[0]["step_cycles"])
                out["runs"][f"host frame, {'overlapped' if 'overlap' in p['name'] else 'a step at a time'}"] = {
                    "ddr_equal": bool(np.array_equal(np.array(p["output"]).reshape(exp["y"].shape), exp["y"])),
                    "writes": sum(x["writes"] for x in p["steps"]), "cycles": p["cycles"],
                    "over_steps_per_step": round((p["cycles"] - total) / len(steps), 1)}
                continue
            out["runs"][f"sequencer, {p['name']}"] = {"ddr_equal": image == bytes(want),
                                                       "writes": sum(x["writes"] for x in p["steps"])}
        by = {p["name"]: p["steps"] for p in seq.passes}
        for i, (s, c) in enumerate(zip(steps, cfgs, strict=True)):
            kind = {"dw": "depthwise", "qk": "qk + softmax", "vt": "V transpose", "av": "av"}.get(s.kind) or (
                "image" if c["image"] else "window" if c["window"] else "layernorm" if s.ln is not None else
                "residual" if s.residual is not None else "plain")
            model = gp.model_cycles(prog, s)
            out["steps"].append({
                "step": s.name, "kind": kind, "model_cycles": model,
                "cycles": res.passes[0]["step_cycles"][i],
                "over_model": res.passes[0]["step_cycles"][i] - model,
                "sequencer_cycles": by["changed"][i]["cycles"], "writes_changed": by["changed"][i]["writes"],
                "writes_every": by["every"][i]["writes"], "polls": by["changed"][i]["polls"]})
    out["wall_s"] = round(time.time() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    rows = out["steps"]
    lines = ["# The engine's GEMM path in RTL simulation (issue 15)", "",
             f"`{out['command']}` ({out['source']}; the tiny build's program, PE {prog.unit.pe} x SIMD "
             f"{prog.unit.simd}, batch {prog.unit.batch}; {out['wall_s']} s).", "",
             "Runs (DDR image afterwards = the program's stored tensors, byte for byte): " + "; ".join(
                 f"{k}: {'yes' if v['ddr_equal'] else 'NO'}" + (f", {v['writes']} MMIO writes" if "writes" in v
                                                                else "") for k, v in out["runs"].items()) + ".", "",
             "| step | kind | model cycles | cycles (bench start) | over the model | cycles (sequencer) | "
             "writes (changed only) | writes (every register) | polls |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['kind']} | {r['model_cycles']:,} | {r['cycles']:,} | {r['over_model']} | "
              f"{r['sequencer_cycles']:,} | {r['writes_changed']} | {r['writes_every']} | {r['polls']} |" for r in rows]
    for kind in ("image", "plain", "residual", "layernorm", "depthwise", "window", "qk + softmax", "V transpose", "av"):
        over = [r["over_model"] for r in rows if r["kind"] == kind]
        lines.append(f"\n{kind}: {len(over)} steps, {min(over)}-{max(over)} cycles over the model.")
    w = [r["writes_changed"] for r in rows[1:]]
    lines.append(f"\nSequencer, only changed registers: first step {rows[0]['writes_changed']} writes, then "
                 f"{min(w)}-{max(w)} (mean {sum(w) / len(w):.1f}); every register: {rows[0]['writes_every']} per step.")
    total = sum(r["cycles"] for r in rows)
    for k, v in out["runs"].items():
        if k.startswith("host frame"):
            lines.append(f"\n{k} (the board's host code, changed registers only, each MMIO access one AXI-Lite "
                         f"transaction): {v['cycles']:,} cycles for the {len(rows)} steps that take {total:,} "
                         f"started by the bench: {v['over_steps_per_step']} cycles a step more; output equal to the "
                         f"integer graph's: {'yes' if v['ddr_equal'] else 'NO'}.")
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-5:]))
    return 0 if all(v["ddr_equal"] for v in out["runs"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
