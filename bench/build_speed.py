"""Build steps with and without the linear-time housekeeping (hw/samfpga/hw/build/speedups.py): CPU seconds per
step side by side, and whether each step's result graph is the same (serialized models compared byte for byte).

    python bench/build_speed.py --tiny --steps qonnx_to_finn,tidy_up --work /tmp/x --out bench/results/build_speed.json
    python bench/build_speed.py --model WORK/02_tidy_up.onnx --steps streamline --work /tmp/x --out FILE.json

Each step runs from the same input graph (the "before" run's output of the previous step) twice: qonnx's own
transformations, then ``speedups.installed()``; ``random`` is seeded alike before each (qonnx's cleanup names
copied parameter tensors with it). CPU seconds are this process's (``time.process_time``): comparable on a loaded
machine, where wall time is not.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--tiny", action="store_true", help="the 64x64 test encoder (int_norm), exported first")
    ap.add_argument("--steps", required=True)
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.finn_env import boot

    args.work.mkdir(parents=True, exist_ok=True)
    boot(args.work / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401

    if args.tiny:
        from tests.support.tiny_encoder import tiny_encoder_qonnx

        src = tiny_encoder_qonnx(args.work, int_norm=True)
    else:
        src = args.model
    steps = [s.strip() for s in args.steps.split(",")]

    def ctx(tag: str) -> BuildContext:
        out = (args.work / tag).resolve()
        out.mkdir(parents=True, exist_ok=True)
        return BuildContext(cfg=BuildConfig(board=args.board, output_dir=str(out), steps=tuple(steps)), out=out)

    ctx_a, ctx_b = ctx("before"), ctx("after")
    model = ModelWrapper(str(src))
    rows = []
    for i, name in enumerate(steps, 1):
        random.seed(i)
        c0 = time.process_time()
        a = STEPS[name](copy.deepcopy(model), ctx_a)
        cpu_a = time.process_time() - c0
        random.seed(i)
        c0 = time.process_time()
        with installed():
            b = STEPS[name](copy.deepcopy(model), ctx_b)
        cpu_b = time.process_time() - c0
        same = a.model.SerializeToString() == b.model.SerializeToString()
        rows.append({"step": name, "nodes_out": len(a.graph.node), "cpu_s_before": round(cpu_a, 2),
                     "cpu_s_after": round(cpu_b, 2), "same_graph": same})
        print(rows[-1], flush=True)
        a.save(str(args.work / f"{i:02d}_{name}.onnx"))
        model = a
        args.out.write_text(json.dumps({"model": str(src), "board": args.board, "steps": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
