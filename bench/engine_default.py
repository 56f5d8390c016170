"""The bundled default model on the layer-sequential engine, end to end (compiler environment, then the board
environment for the package):

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_default.py [--board kv260] [--work out/engine_default]
        [--out bench/results]

1. ``samfpga build-hw --engine --board BOARD`` on the bundled checkpoint (W8A8 PTQ, integer LayerNorm / softmax;
   FINN's software steps to the integer graph, then the engine's plan, program, design and host files; without
   Vivado it stops before the bitstream).
2. The engine's program at the plan's widths run in python on the engine's unit models (``engine_program``) against
   the integer graph's own execution on the bundled samples: every tensor the program stores, tolerance 0; then
   the first attention block's three steps (QK^T + softmax, the V transpose, AV on 16 keys padded to a SIMD fold)
   on the GEMM path's RTL at the design's parameters (Verilator + cocotb, DDR to DDR, free-running) on the first
   sample's tensors: DDR afterwards byte for byte the program's, and each step's cycles.
3. ``samfpga deploy BUILD/finn --engine BUILD --out PKG`` and its check.
4. In the board environment (.venv-board: no torch / finn): the package's ``pynq-sim`` backend (the board's engine
   driver and step sequencer on the simulated device) against its ``quant`` backend (the integer graph on the CPU),
   the embedding of every sample; then each sample's point + box prompt through the predictor on ``pynq-sim`` and on
   the bundle's float encoder (``onnx``), the masks' IoU against the samples' ground truth.

Writes bench/results/engine_default_<board>.{json,md}. What RTL simulation checks of the bundled default's shape:
tests/test_sim_engine_gemm_path.py::test_rtl_attention_with_keys_padded_to_simd_folds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
SAMPLES = ROOT / "sw" / "samfpga" / "assets" / "samples"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--work", type=Path, default=Path("out/engine_default"))
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--picture", type=Path, default=Path("docs"), help="folder of the masks' picture")
    ap.add_argument("--board-side", nargs=2, type=Path, metavar=("PKG", "NPZ"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.board_side:
        return board_side(*a.board_side)
    from engine_build import host_figures

    from samfpga.deploy.cli import main as deploy
    from samfpga.hw.build_cli import main as build_hw

    work = a.work / a.board
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.monotonic()
    if build_hw(["--engine", "--board", a.board, "--out", str(work / "build")]) != 0:
        print("engine build failed", file=sys.stderr)
        return 1
    t_build = time.monotonic() - t0
    r = json.loads((work / "build" / "report.json").read_text())
    t1 = time.monotonic()
    program = program_check(work / "build" / "graph", r["plan"]["config"])
    t_program = time.monotonic() - t1
    t1 = time.monotonic()
    rtl = attention_rtl(work / "build" / "graph", r["plan"]["config"], work / "rtl")
    plan_steps = json.loads((work / "build" / "plan" / "report.json").read_text())["steps"]
    first = [x for x in plan_steps if ".attn.matmul" in x["name"]][:3]  # QK^T, the V transpose, AV of block 0
    rtl["plan_cycles"] = [max(x["bounds"].values()) for x in first]
    rtl["plan_binding"] = [x["binding"] for x in first]
    t_rtl = time.monotonic() - t1
    t1 = time.monotonic()
    if deploy([str(work / "build" / "finn"), "--engine", str(work / "build"), "--out", str(work / "pkg"),
               "--check"]) != 0:
        print("deploy failed", file=sys.stderr)
        return 1
    t_deploy = time.monotonic() - t1
    t1 = time.monotonic()
    board = ROOT / ".venv-board" / "bin" / "python"
    run = subprocess.run([str(board), __file__, "--board-side", str(work / "pkg"), str(work / "board.npz")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": "sw:."})
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        return 1
    t_board = time.monotonic() - t1
    res = {"board": a.board,
           "seconds": {"build": round(t_build, 1), "program_check": round(t_program, 1), "rtl": round(t_rtl, 1),
                       "deploy": round(t_deploy, 1), "board_side": round(t_board, 1),
                       "total": round(time.monotonic() - t0, 1)},
           "engine_steps": r["seconds"], "stopped": r["stopped"],
           "plan": {k: r["plan"][k] for k in ("config", "fps", "fits", "pressure", "binding", "roofline")},
           "program": {**r["program"], **program}, "attention_rtl": rtl,
           "rtl": {k: v for k, v in r["design"]["params"].items() if isinstance(v, int)},
           "against_plan": r["design"]["against_plan"], "host": host_figures(work / "build" / "host"),
           "package": sum(p.stat().st_size for p in (work / "pkg").rglob("*") if p.is_file()),
           "board_side": masks_against_truth(np.load(work / "board.npz"))}
    res["picture"] = draw_masks(np.load(work / "board.npz"), res["board_side"], a.picture / f"engine_default_{a.board}.png")
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"engine_default_{a.board}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {stem}.md")
    return 0


def _samples() -> list[tuple[np.ndarray, dict]]:
    from samfpga.image_io import read_image

    prompts = json.loads((SAMPLES / "prompts.json").read_text())
    return [(read_image(SAMPLES / p["image"])[0], p) for p in prompts]


def program_check(graph_dir: Path, plan: dict) -> dict:
    """The program at the plan's widths against the integer graph's execution on the bundled samples: tensors
    compared and values differing (0 expected)."""
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from samfpga.intexec.executor import load_intgraph

    g = load_intgraph(graph_dir)
    prog = compile_program(g, engine_unit(g, plan["pe"], plan["simd"], plan["batch"]))
    compared = differing = 0
    shape = tuple(g.shape(g.input))
    for img, _ in _samples():
        if img.shape != shape[1:]:
            raise ValueError(f"sample {img.shape}: the graph's input is {shape}")
        x = img[None].astype(np.float32)
        ref = g.run_all(x)
        mem = run_program(prog, g.run_host_pre(x))
        for s in prog.steps:
            if s.output in ref:
                compared += 1
                differing += int(np.count_nonzero(prog.graph_order(s.output, mem[s.output])
                                                  != np.asarray(ref[s.output]).ravel()))
        differing += int(np.count_nonzero(mem[prog.output] != np.asarray(ref[prog.output]).ravel()))
    return {"images_compared": len(_samples()), "tensors_compared": compared, "values_differing": differing}


def attention_rtl(graph_dir: Path, plan: dict, work: Path) -> dict:
    """The first attention block's steps on the GEMM path's RTL (built at the program's parameters and the plan's
    lanes, as the build's design), on the first sample's tensors, free-running: whether DDR afterwards equals the
    program's, byte for byte, and each step's cycles."""
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from samfpga.intexec.executor import load_intgraph

    g = load_intgraph(graph_dir)
    prog = gp.with_lanes(compile_program(g, engine_unit(g, plan["pe"], plan["simd"], plan["batch"])),
                         {"dw_pe": plan["dw_pe"], "ln_pe": plan["ln_lanes"], "sm_pe": plan["sm_lanes"]})
    mem = run_program(prog, g.run_host_pre(_samples()[0][0][None].astype(np.float32)))
    at = gp.attention_steps(prog)[:3]
    lay = gp.layout(prog, at)
    img, want = gp.ddr_images(prog, mem, at, lay)
    gp.build(prog, work)
    res = gp.simulate([gp.step_config(prog, s, lay) for s in at], bytes(img), [{"name": "free"}], work, seed=1)
    p = res.passes[0] if res.passes else {}
    return {"steps": [f"{s.name} ({s.kind})" for s in at],
            "shapes": [f"{s.iters} x {s.tokens} tokens, {s.mw} -> {s.mh} (unit {s.layer.mw} -> {s.layer.mh})"
                       for s in at],
            "error": res.error, "timed_out": bool(p.get("timed_out", True)), "err": p.get("err"),
            "ddr_equal": bool(res.images and res.images[0] == bytes(want)),
            "bytes_differing": int(np.count_nonzero(np.frombuffer(res.images[0], np.uint8)
                                                    != np.frombuffer(bytes(want), np.uint8))) if res.images else None,
            "step_cycles": p.get("step_cycles"), "model_cycles": [gp.model_cycles(prog, s) for s in at]}


def board_side(pkg: Path, out: Path) -> int:
    """(board environment) Embeddings of ``pynq-sim`` against ``quant``, and the masks of each sample's prompt on
    ``pynq-sim`` and on the float encoder, into ``out``."""
    from samfpga.predictor import Predictor

    preds = {b: Predictor.from_deploy(pkg, backend=b) for b in ("pynq-sim", "quant", "onnx")}
    res: dict[str, list] = {"differing": [], "masks_engine": [], "masks_float": [], "engine_s": []}
    for img, p in _samples():
        emb = {}
        for b, pr in preds.items():
            t = time.perf_counter()
            pr.set_image(img)
            if b == "pynq-sim":
                res["engine_s"].append(time.perf_counter() - t)
            emb[b] = pr.get_image_embedding()
        res["differing"].append(int(np.count_nonzero(emb["pynq-sim"] != emb["quant"])))
        kw = {"point_coords": np.array(p["points"], np.float32), "point_labels": np.array(p["labels"]),
              "box": np.array(p["box"], np.float32), "multimask_output": False}
        res["masks_engine"].append(preds["pynq-sim"].predict(**kw)[0][0])
        res["masks_float"].append(preds["onnx"].predict(**kw)[0][0])
    np.savez(out, **{k: np.asarray(v) for k, v in res.items()})
    return 0


def masks_against_truth(board: dict) -> dict:
    """The board side's figures, and the masks' IoU against the samples' ground truth (the synthetic instance each
    sample was drawn with: ``samfpga.models.data.samples``)."""
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.models.evaluate import iou

    ious = {"engine": [], "float": []}
    for k, (img, p) in enumerate(_samples()):
        s = generate_sample(p["split_seed"], p["index"], SyntheticConfig(image_size=img.shape[0]))
        assert np.array_equal(s.image, img), p["image"]
        truth = s.masks[p["instance"]]
        ious["engine"].append(float(iou(board["masks_engine"][k], truth)))
        ious["float"].append(float(iou(board["masks_float"][k], truth)))
    return {"embedding_values_differing": board["differing"].tolist(),
            "engine_set_image_s": [round(float(t), 2) for t in board["engine_s"]],
            "iou_engine": [round(v, 4) for v in ious["engine"]], "iou_float": [round(v, 4) for v in ious["float"]],
            "miou_engine": round(float(np.mean(ious["engine"])), 4),
            "miou_float": round(float(np.mean(ious["float"])), 4)}


def draw_masks(board: dict, figures: dict, path: Path) -> str:
    """The bundled samples with their prompts: the ground truth, the float encoder's mask and the engine
    package's (``pynq-sim``), each with its IoU; written to ``path`` (PNG), returned as a string."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.viz import overlay

    samples = _samples()
    fig, axes = plt.subplots(3, len(samples), figsize=(3 * len(samples), 9.4), squeeze=False)
    for k, (img, p) in enumerate(samples):
        truth = generate_sample(p["split_seed"], p["index"], SyntheticConfig(image_size=img.shape[0])).masks[
            p["instance"]]
        rows = [("ground truth", truth), (f"float encoder: IoU {figures['iou_float'][k]:.3f}", board["masks_float"][k]),
                (f"engine (pynq-sim): IoU {figures['iou_engine'][k]:.3f}", board["masks_engine"][k])]
        for i, (title, m) in enumerate(rows):
            axes[i, k].imshow(overlay(img, [m], points=np.array(p["points"]), labels=np.array(p["labels"]),
                                      box=np.array(p["box"])))
            axes[i, k].set_title(f"{p['image']}\n{title}" if i == 0 else title, fontsize=9)
            axes[i, k].axis("off")
    fig.suptitle("The bundled default's masks: float encoder vs its W8A8 engine package (point + box prompt)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=64)
    plt.close(fig)
    return str(path)


def markdown(r: dict) -> str:
    p, c, s, g, bs = r["plan"], r["plan"]["config"], r["seconds"], r["program"], r["board_side"]
    rt = r["attention_rtl"]
    return "\n".join([
        f"# The bundled default on the engine ({r['board']})", "",
        f"`PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_default.py --board {r['board']}` (wall time on "
        f"the shared 2-core machine).", "",
        f"Wall time: build {s['build']:g} s (engine steps: " + ", ".join(f"{k} {v:g} s" for k, v in
                                                                           r["engine_steps"].items())
        + f"), program check {s['program_check']:g} s, attention RTL {s['rtl']:g} s, deploy {s['deploy']:g} s, board side {s['board_side']:g} s; "
        f"**total {s['total'] / 60:.1f} min**. Stopped: {r['stopped'] or 'no'}.", "",
        f"Plan (own model): PE {c['pe']} x SIMD {c['simd']}, batch {c['batch']}, depthwise {c['dw_pe']}, LayerNorm "
        f"{c['ln_lanes']} lanes, softmax {c['sm_lanes']} lanes: **{p['fps']:.1f} fps** at {c['image_size']}², "
        f"{'fits' if p['fits'] else 'does not fit'} (binding {p['binding']} {p['pressure'][p['binding']]:.3f}x of "
        f"the limit), {p['roofline']['fraction']:.1%} of the DSP roofline.", "",
        f"Program: {g['steps']} steps ({', '.join(f'{v} {k}' for k, v in g['kinds'].items())}), every one on the "
        f"GEMM path. On the engine's unit models against the integer graph's execution, {g['images_compared']} "
        f"bundled samples: {g['tensors_compared']} stored tensors compared, **{g['values_differing']} values "
        f"differing** (tolerance 0).", "",
        "RTL simulation of the first attention block's steps ("
        + "; ".join(f"{n}: {sh}" for n, sh in zip(rt["steps"], rt["shapes"], strict=True))
        + ") on the GEMM path at the design's parameters, free-running, on the first sample: DDR afterwards "
        f"{'**byte for byte the program' + chr(39) + 's**' if rt['ddr_equal'] else 'NOT the program' + chr(39) + 's'} "
        f"({rt['bytes_differing']} bytes differing; error {rt['error'] or 'none'}, err {rt['err']}); cycles "
        f"{rt['step_cycles']} against the unit's schedule {rt['model_cycles']} and the plan's bound "
        f"{rt['plan_cycles']} ({', '.join(rt['plan_binding'])}; launch not included).", "",
        "RTL parameters of the design (Verilator lint clean): " + ", ".join(f"{k} {v}" for k, v in r["rtl"].items())
        + ". Where it differs from what the plan prices: " + ("; ".join(r["against_plan"]) or "nothing checked "
                                                               "differs") + ".", "",
        f"Host: one DDR buffer of {r['host']['ddr_bytes']:,} bytes ({r['host']['written_once_bytes']:,} written "
        f"once), {r['host']['mmio_writes_first_frame']:,} MMIO writes the first frame, "
        f"{r['host']['mmio_writes_per_frame']:,} each later one; deployment package {r['package']:,} bytes.", "",
        "Board environment (.venv-board), per bundled sample: the embedding of `pynq-sim` (the board's engine "
        f"driver on the simulated device) against `quant`: {bs['embedding_values_differing']} values differing; "
        f"mask IoU against the ground truth (point + box prompt, one mask): engine {bs['iou_engine']} "
        f"(**mIoU {bs['miou_engine']:.3f}**), float encoder {bs['iou_float']} (mIoU {bs['miou_float']:.3f}). The "
        "simulated device computes each frame with the package's integer graph, so its time is not the board's.",
        "", *([f"![masks](../../{r['picture']})", ""] if r.get("picture") else [])])


if __name__ == "__main__":
    raise SystemExit(main())
