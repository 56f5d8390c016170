"""The proposal head on the FPGA beside the encoder (issue 16): W8A8, FINN build, resources on the KV260.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/proposal_head_hw.py [--head HEAD.onnx] [--board kv260] \
        [--target-fps 47.7,126] [--calib 64] [--out bench/results/proposal_head_hw]

1. The head (default: the bundled default's ``proposals.onnx``) loaded into ``ProposalHead``; its W8A8 version
   (``samfpga.models.proposals.quant``: power-of-two scales, biases on the accumulator grid) calibrated on the
   embeddings of ``--calib`` synthetic training images (seed 0) from the bundle's encoder; QONNX export.
2. Bit-exactness: Brevitas vs QONNX execution, and the QONNX graph vs FINN's python execution of the built HW
   graph, on ``--check`` held-out embeddings (seed 1), tolerance 0. The quantization's own cost: float head vs
   W8A8 head on the same embeddings (centre probability, largest difference; the cells over the generator's score
   threshold 0.2 in one and not the other).
3. The FINN build's software steps (to ``estimates``) for each ``--target-fps`` (the fit search's throughput
   cap): the build's resource models per layer (own model where registered, FINN estimate otherwise; no
   synthesis), beside the bundled encoder's KV260 builds from bench/results/token_batch_build.json, and the sum
   against the board at the build's 85% limit.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIT_LIMIT = 0.85  # the build's default share of each board resource (BuildConfig.fit_limit)


def software_steps() -> tuple[str, ...]:
    """The build's software steps up to ``estimates`` (what runs without Vivado and gives the resource figures)."""
    from bench.hw_estimates import step_split

    common, per_board = step_split()
    return common + per_board


SCORE_THRESH = 0.2  # RefineConfig's / the generator's default score threshold


def head_from_onnx(path: Path):
    """A ``ProposalHead`` with the weights of an exported head (its initializers are the state-dict keys)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from samfpga.models.proposals.head import ProposalHead

    m = onnx.load(str(path))
    sd = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    convs = sorted(k for k in sd if k.endswith(".weight"))
    first = sd[convs[0]]
    head = ProposalHead(first.shape[1], first.shape[0], depth=len(convs) - 1)
    head.load_state_dict(sd)
    return head.eval()


def embeddings(bundle: Path, seed: int, n: int, start: int = 0) -> np.ndarray:
    """(n, C, h, w) float32: the bundle encoder's embeddings of synthetic images ``start..start+n-1`` of ``seed``."""
    from samfpga.models.data import sample_function
    from samfpga.models.proposals.targets import image_embedding
    from samfpga.predictor import Predictor

    pred = Predictor.from_bundle(bundle, threads=2)
    sample = sample_function("synthetic", pred.image_size)
    return np.stack([image_embedding(pred, sample(seed, i).image)[0] for i in range(start, start + n)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", type=Path, help="proposal head ONNX (default: the bundled default's)")
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--target-fps", default="", help="comma-separated fit caps (default: the bundled encoder's "
                                                     "on-chip and rolled fps from token_batch_build.json)")
    ap.add_argument("--calib", type=int, default=64, help="calibration embeddings (training images, seed 0)")
    ap.add_argument("--check", type=int, default=8, help="held-out embeddings (seed 1) for the exactness checks")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proposal_head_hw")
    a = ap.parse_args(argv)

    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.boards import BOARDS, RESOURCES
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.flow import run_build
    from samfpga.hw.build.package import finn_execute
    from samfpga.hw.build.verify import execute
    from samfpga.hw.finn_env import boot
    from samfpga.models.proposals.quant import quantize_head
    from samfpga.models.quant.export import export_qonnx
    from samfpga.resources import package_path

    bundle = Path(package_path("samfpga.assets", "default"))
    board = BOARDS[a.board]
    head_path = a.head or bundle / "proposals.onnx"
    encoder_builds = json.loads((ROOT / "bench" / "results" / "token_batch_build.json").read_text())["builds"]
    if a.target_fps:
        caps = [float(v) for v in a.target_fps.split(",")]
    else:
        caps = [round(encoder_builds[k]["fps"], 1) for k in ("on_chip", "rolled")]
    command = "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/proposal_head_hw.py" + "".join(
        f" {k} {v}" for k, v in (("--head", a.head), ("--board", a.board if a.board != "kv260" else None),
                                 ("--target-fps", a.target_fps or None),
                                 ("--calib", a.calib if a.calib != 64 else None),
                                 ("--check", a.check if a.check != 8 else None)) if v is not None)
    t0 = time.time()
    head = head_from_onnx(head_path)
    calib = torch.from_numpy(embeddings(bundle, 0, a.calib))
    check = embeddings(bundle, 1, a.check)
    q = quantize_head(head, calib)
    out: dict = {"command": command, "head": str(head_path.relative_to(ROOT) if head_path.is_relative_to(ROOT)
                                                 else head_path),
                 "board": a.board, "calib_images": a.calib, "check_images": a.check,
                 "source": "The build's resource models (own model where registered, FINN estimate otherwise); "
                           "no synthesis"}
    with torch.no_grad():
        f = head(torch.from_numpy(check)).numpy()
        qo = q(torch.from_numpy(check)).numpy()
    pf, pq = 1 / (1 + np.exp(-f[:, 0])), 1 / (1 + np.exp(-qo[:, 0]))
    over_f, over_q = pf > SCORE_THRESH, pq > SCORE_THRESH
    out["quantization"] = {"centre_prob_max_abs_diff": float(np.abs(pf - pq).max()),
                           "centre_prob_mean_abs_diff": float(np.abs(pf - pq).mean()),
                           "regression_max_abs_diff": float(np.abs(f[:, 1:] - qo[:, 1:]).max()),
                           "cells_over_thresh_float": int(over_f.sum()), "cells_over_thresh_int8": int(over_q.sum()),
                           "cells_over_thresh_disagree": int((over_f != over_q).sum()), "cells": int(over_f.size)}
    with tempfile.TemporaryDirectory(prefix="head_hw_") as td:
        td = Path(td)
        boot(td / "finn")
        qonnx = export_qonnx(q, td / "head_q.onnx", (1, *check.shape[1:]))
        qm = ModelWrapper(str(qonnx))
        ref = np.stack([execute(qm, x[None])[0] for x in check])
        out["brevitas_vs_qonnx_values_differ"] = int((ref != qo).sum())
        out["values"] = int(ref.size)
        out["builds"] = []
        runs = [(f"head alone, fit capped at {cap} fps", a.board, cap, FIT_LIMIT, None) for cap in caps]
        if not a.target_fps:  # the head fitted into what each encoder build leaves of the board's 85%
            for k in ("on_chip", "rolled"):
                e = encoder_builds[k]
                left = {r: int(FIT_LIMIT * board.budget()[r] - e["resources"][r]) for r in RESOURCES}
                if min(left.values()) <= 0:
                    continue
                name = f"{a.board}-after-{k.replace('_', '-')}"
                BOARDS[name] = replace(board, name=name, lut=left["LUT"], ff=left["FF"], bram36=left["BRAM36"],
                                       uram=left["URAM"], dsp=left["DSP"])
                runs.append((f"head in what the encoder ({k.replace('_', ' ')}) leaves, capped at its "
                             f"{e['fps']:.1f} fps", name, round(e["fps"], 1), 1.0, k))
        for label, board_name, cap, limit, encoder in runs:
            work = td / board_name / str(cap)
            t1 = time.time()
            rep = run_build(qonnx, BuildConfig(board=board_name, output_dir=str(work), target_fps=cap, fit_limit=limit,
                                               steps=software_steps()), screen=io.StringIO())
            steps_s = time.time() - t1
            y = np.stack([finn_execute(work, x[None], td / "exec")[0] for x in check])
            t = rep["total"]
            out["builds"].append({
                "label": label, "budget": BOARDS[board_name].budget(), "fit_limit": limit, "encoder": encoder,
                "target_fps": cap, "fps": t["fps"], "fits": t["fits"], "resources": t["resources"],
                "utilization": t["utilization"], "bottleneck": t["bottleneck_node"],
                "by_op_type": {op: {k: v[k] for k in (*RESOURCES, "layers")} for op, v in rep["op_types"].items()},
                "host_op_types": rep["nodes"]["host_op_types"],
                "finn_vs_qonnx_values_differ": int((y != ref).sum()), "steps_s": round(steps_s, 1)})
            print(label, t["resources"], t["fps"], t["fits"], int((y != ref).sum()), flush=True)
    out["encoder_builds"] = {k: {"resources": v["resources"], "fps": v["fps"]} for k, v in encoder_builds.items()
                             if k in ("on_chip", "rolled")}
    out["wall_s"] = round(time.time() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(render(out))
    print(a.out.with_suffix(".md").read_text())
    return 0


def render(out: dict) -> str:
    from samfpga.hw.boards import BOARDS, RESOURCES

    budget = BOARDS[out["board"]].budget()
    qz = out["quantization"]
    lines = [f"# The proposal head on the {out['board'].upper()} beside the encoder (issue 16)", "",
             f"`{out['command']}` ({out['wall_s']} s here). {out['source']}. Head: `{out['head']}`, W8A8 "
             f"(`samfpga.models.proposals.quant`), calibrated on {out['calib_images']} training embeddings.", "",
             f"Exactness on {out['check_images']} held-out embeddings ({out['values']:,} values): Brevitas vs QONNX "
             f"{out['brevitas_vs_qonnx_values_differ']} differ; QONNX vs FINN python execution of each build below: "
             + ", ".join(f"{b['finn_vs_qonnx_values_differ']} differ" for b in out["builds"]) + ".", "",
             f"Quantization against the float head: centre probability differs by at most {qz['centre_prob_max_abs_diff']:.4f} "
             f"(mean {qz['centre_prob_mean_abs_diff']:.5f}); cells over the score threshold {SCORE_THRESH}: "
             f"{qz['cells_over_thresh_float']} float, {qz['cells_over_thresh_int8']} W8A8, "
             f"{qz['cells_over_thresh_disagree']} of {qz['cells']:,} on one side only.", "",
             "| design | LUT | FF | BRAM36 | URAM | DSP | fps |", "|---|---|---|---|---|---|---|"]

    def row(name: str, r: dict, fps: float) -> str:
        return f"| {name} | " + " | ".join(f"{r[k]:,.1f}".rstrip("0").rstrip(".") for k in RESOURCES) + f" | {fps:,.1f} |"

    encs = out["encoder_builds"]
    for k, e in encs.items():
        lines.append(row(f"bundled encoder, {k.replace('_', ' ')} (token_batch_build.json)", e["resources"], e["fps"]))
    for b in out["builds"]:
        fits = "" if b["fits"] else " (does not fit)"
        lines.append(row(b["label"] + fits, b["resources"], b["fps"]))
        if b["encoder"]:
            e = encs[b["encoder"]]
            s = {r: b["resources"][r] + e["resources"][r] for r in RESOURCES}
            lines.append(row(f"**sum: encoder {b['encoder'].replace('_', ' ')} + this head**", s, min(b["fps"], e["fps"])))
    lines.append(f"| board ({FIT_LIMIT:.0%} of it: the build's limit) | "
                 + " | ".join(f"{budget[k]:,} ({FIT_LIMIT * budget[k]:,.0f})" for k in RESOURCES) + " | |")
    lines += ["", "Per layer type of each head build (layers x: LUT / BRAM36 / URAM / DSP):", ""]
    for b in out["builds"]:
        lines.append(f"- {b['label']}: " + "; ".join(
            f"{op} {v['layers']} x: {v['LUT']:,.0f} / {v['BRAM36']:.1f} / {v['URAM']:.0f} / {v['DSP']:.0f}"
            for op, v in sorted(b["by_op_type"].items())) + f" (software steps {b['steps_s']} s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
