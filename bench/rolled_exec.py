"""Loop rolling on the bundled default's HW graph (issue 15): which stages' blocks one body serves as they come out
of the flow, what differs where not, parameter bytes per iteration, and rolled-vs-unrolled python execution.

Input: a build directory of the default model (``intermediate/NN_<step>.onnx``). Made when missing, with the
software steps up to ``transpose_decomposition`` (about 10 min on the 2-core machine):

    python -m samfpga.hw.build_cli --board kv260 --out DIR \\
        --steps qonnx_to_finn,tidy_up,streamline,pixel_input,convert_to_hw,minimize_bit_width_initial,partition,\\
specialize,fold,minimize_bit_width,transpose_decomposition
    python bench/rolled_exec.py --build DIR [--exec-step minimize_bit_width] [--out bench/results/rolled_exec]

For every saved graph from ``convert_to_hw`` on: the repeated stages (``samfpga.hw.rolled.find_stages``) and their
comparison (``compare_blocks``). On the ``--exec-step`` graph: ``roll`` and FINN python execution of the rolled and
the unrolled graph on seeded uint8 images, the number of differing output values (tolerance 0) and the times.
Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

BUILD_STEPS = ("qonnx_to_finn,tidy_up,streamline,pixel_input,convert_to_hw,minimize_bit_width_initial,partition,"
               "specialize,fold,minimize_bit_width,transpose_decomposition")
FROM_STEP = 5  # intermediate/05_convert_to_hw.onnx: the first graph of HW layers


def analyse(path: Path) -> list[dict]:
    """The repeated stages of one saved graph and their block comparison."""
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.rolled import block_scopes, compare_blocks, find_stages

    model = ModelWrapper(str(path))
    ops = {n.name: n.op_type for n in model.graph.node}
    out = []
    for st in find_stages(model):
        plan = compare_blocks(model, st)
        row = plan.summary()
        row.update(stage=st.name, nodes_per_block=[len(b.nodes) for b in st.blocks],
                   torch_scopes=[block_scopes(model, b) for b in st.blocks],
                   weight_layers=sum(ops[n].startswith(("MVAU", "VVAU", "DepthwiseVVAU")) for n in st.blocks[0].nodes))
        out.append(row)
    return out


def execute(path: Path, seeds: list[int]) -> dict:
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.rolled import execute_rolled, execute_unrolled, roll

    model = ModelWrapper(str(path))
    t0 = time.monotonic()
    rolled = roll(model)
    t_roll = time.monotonic() - t0
    name = model.graph.input[0].name
    shape, dt = model.get_tensor_shape(name), model.get_tensor_datatype(name)
    runs = []
    for seed in seeds:
        x = np.random.default_rng(seed).integers(int(dt.min()), int(dt.max()) + 1, size=shape).astype(np.float32)
        t0 = time.monotonic()
        ref = execute_unrolled(model, x)
        t_un = time.monotonic() - t0
        t0 = time.monotonic()
        out = execute_rolled(rolled, x)
        t_ro = time.monotonic() - t0
        runs.append({"seed": seed, "input": f"uniform {dt.name} {list(shape)}", "output_shape": list(ref.shape),
                     "distinct_output_values": int(np.unique(ref).size), "differing_values": int((out != ref).sum()),
                     "unrolled_s": round(t_un, 2), "rolled_s": round(t_ro, 2)})
    return {"graph": path.name, "roll_s": round(t_roll, 2),
            "parts": [f"loop x{p.iterations} ({len(p.body.graph.node)} nodes)" if hasattr(p, "iterations")
                      else f"unrolled ({len(p.graph.node)} nodes)" for p in rolled.parts],
            "runs": runs}


def markdown(res: dict) -> str:
    lines = ["# Loop rolling on the bundled default's HW graph (`samfpga.hw.rolled`, issue 15)", "",
             f"Command: `{res['command']}` (at {res['commit']})  ",
             f"Build: `{res['build']}`: `python -m samfpga.hw.build_cli --board {res['board']} --out DIR --steps "
             f"{','.join(res['build_steps'])}` (bundled default checkpoint, default options); {res['machine']}; "
             f"{res['date']}.", "",
             "Blocks found by structure (single-tensor cuts, repeated units; `find_stages`), compared node by node "
             "(`compare_blocks`). Parameter bytes per iteration at each datatype's width (Requant scale/bias "
             "are FLOAT32 in the graph: 4 bytes each).", ""]
    for step, stages in res["stages"].items():
        lines += [f"## {step}", "", "| stage | blocks | nodes/block | weight layers | rollable | PARAMETER / "
                  "CONSTANT inputs | attribute parameters | bytes/iteration: weights / requant / thresholds / "
                  "norm+softmax / attributes |", "|---|---|---|---|---|---|---|---|"]
        for s in stages:
            b = s["param_bytes_per_iteration"]
            lines.append(f"| `{s['stage']}` | {s['blocks']} | {s['nodes_per_block']} | {s['weight_layers']} | "
                         f"{'yes' if s['rollable'] else '**no**'} | {s['inputs']['PARAMETER']} / "
                         f"{s['inputs']['CONSTANT']} | {s['attribute_parameters']} | {b['weights']:,.0f} / "
                         f"{b['requant']:,.0f} / {b['thresholds']:,.0f} / {b['norm_softmax']:,.0f} / "
                         f"{b['attributes']:,.0f} |")
        lines.append("")
        for s in stages:
            if any(s["torch_scopes"]):
                lines.append(f"`{s['stage']}`: PyTorch scopes in the surviving node metadata, per block: "
                             + ", ".join("/".join(x) or "-" for x in s["torch_scopes"]))
                lines.append("")
            if s["unified"] or s["refused"]:
                lines.append(f"`{s['stage']}`:")
                lines += [f"- unified: {d}" for d in s["unified"]]
                lines += [f"- **refused**: {d}" for d in s["refused"]]
                lines.append("")
    e = res["execution"]
    lines += [f"## Rolled vs unrolled python execution ({e['graph']})", "",
              f"Rolled graph: {' -> '.join(e['parts'])} (roll: {e['roll_s']} s).", "",
              "| seed | input | output | distinct output values | differing values | unrolled (s) | rolled (s) |",
              "|---|---|---|---|---|---|---|"]
    for r in e["runs"]:
        lines.append(f"| {r['seed']} | {r['input']} | {r['output_shape']} | {r['distinct_output_values']} | "
                     f"{r['differing_values']} | {r['unrolled_s']} | {r['rolled_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory of the default model (made when missing)")
    ap.add_argument("--exec-step", default="minimize_bit_width", help="graph executed rolled vs unrolled")
    ap.add_argument("--seeds", default="0,1", help="seeds of the uint8 input images")
    ap.add_argument("--out", default="bench/results/rolled_exec", help="OUT.json and OUT.md")
    args = ap.parse_args(argv)
    build = Path(args.build)
    if not build.exists():
        from samfpga.hw.build_cli import main as build_hw

        if build_hw(["--board", "kv260", "--out", str(build), "--steps", BUILD_STEPS]) != 0:
            return 2
    from samfpga.hw.finn_env import boot

    boot(Path("/tmp") / "rolled_exec_finn")
    import samfpga.hw.custom_ops  # noqa: F401

    graphs = sorted(p for p in (build / "intermediate").glob("*.onnx") if int(p.name[:2]) >= FROM_STEP
                    and "partition" not in p.name)
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cfg = json.loads((build / "build_config.json").read_text())
    res = {"command": "python " + " ".join(sys.argv), "build": str(build), "commit": head,
           "build_steps": cfg["steps"], "board": cfg["board"],
           "machine": f"{platform.machine()}, {platform.python_version()}",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "stages": {p.stem: analyse(p) for p in graphs}}
    exec_graph = next(p for p in graphs if p.stem.endswith(args.exec_step))
    res["execution"] = execute(exec_graph, [int(s) for s in args.seeds.split(",")])
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
