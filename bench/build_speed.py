"""Build steps with and without the linear-time housekeeping (hw/samfpga/hw/build/speedups.py): CPU seconds per
step side by side, and whether each step's result graph is the same (serialized models compared byte for byte).

    python bench/build_speed.py --tiny --steps qonnx_to_finn,tidy_up --work /tmp/x --out bench/results/build_speed.json
    python bench/build_speed.py --model WORK/02_tidy_up.onnx --steps streamline --work /tmp/x --out FILE.json
    python bench/build_speed.py --calls G1.onnx,G2.onnx --out FILE.json     # one call of each replacement

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


def calls(graphs: list[Path]) -> list[dict]:
    """CPU seconds of one call of each replaced qonnx function vs the project's, on each graph, and whether the
    results are equal (serialized models)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, SortGraph

    from samfpga.hw.build.fast_names import FastReadableTensorNames
    from samfpga.hw.build.fast_shapes import check_all_tensor_shapes_specified
    from samfpga.hw.build.fast_sort import FastSortGraph

    def timed(fn, m):
        random.seed(0)
        c0 = time.process_time()
        out = fn(m)
        return time.process_time() - c0, out

    rows = []
    for g in graphs:
        m = ModelWrapper(str(g)).transform(GiveUniqueNodeNames())
        nodes = list(m.graph.node)
        random.Random(1).shuffle(nodes)
        shuffled = copy.deepcopy(m)
        del shuffled.graph.node[:]
        shuffled.graph.node.extend(nodes)
        cases = {
            "GiveReadableTensorNames (transform)": (m, lambda x: x.transform(GiveReadableTensorNames()),
                                                    lambda x: x.transform(FastReadableTensorNames())),
            "SortGraph (shuffled nodes)": (shuffled, lambda x: SortGraph().apply(copy.deepcopy(x))[0],
                                           lambda x: FastSortGraph().apply(copy.deepcopy(x))[0]),
            "check_all_tensor_shapes_specified": (
                m, lambda x: x.check_all_tensor_shapes_specified(),
                lambda x: check_all_tensor_shapes_specified(x)),
        }
        for what, (model, slow, fast) in cases.items():
            ta, a = timed(slow, model)
            tb, b = timed(fast, model)
            same = a == b if isinstance(a, bool) else a.model.SerializeToString() == b.model.SerializeToString()
            rows.append({"graph": str(g), "nodes": len(m.graph.node), "call": what, "cpu_s_qonnx": round(ta, 3),
                         "cpu_s_fast": round(tb, 3), "same_result": same})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--tiny", action="store_true", help="the 64x64 test encoder (int_norm), exported first")
    ap.add_argument("--steps")
    ap.add_argument("--calls", help="comma-separated graphs: time one call of each replacement on each")
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    if args.calls:
        rows = calls([Path(g) for g in args.calls.split(",")])
        args.out.write_text(json.dumps({"calls": rows}, indent=1) + "\n")
        return
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.finn_env import boot

    args.work.mkdir(parents=True, exist_ok=True)
    boot(args.work / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401

    if args.tiny:
        from samfpga.models.quant.source import tiny_encoder_qonnx

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
