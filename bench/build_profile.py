"""Profile the software steps of a samfpga FINN build, step by step (CPU seconds + cProfile top functions).

    python bench/build_profile.py --model enc.onnx --steps qonnx_to_finn,tidy_up --work /tmp/x --out prof.json
    python bench/build_profile.py --tiny --work /tmp/x --out prof.json     # the 64x64 test encoder (int_norm)

Each step runs as ``STEPS[name](model, ctx)`` inside ``speedups.installed()`` (as ``flow.run_build`` does;
``--without-speedups``: qonnx's own housekeeping) under cProfile; the graph after each
step is saved to WORK/NN_<step>.onnx so a later run can start from it (``--model WORK/03_streamline.onnx
--steps convert_to_hw,...``). CPU seconds are this process's (``time.process_time``), profiled and so slower than
an unprofiled build; the shares per function are what matters.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import time
from pathlib import Path


def _top(prof: cProfile.Profile, n: int) -> list[dict]:
    st = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}:{fn}", "calls": nc, "tottime": round(tt, 2),
                     "cumtime": round(ct, 2)})
    return sorted(rows, key=lambda r: -r["cumtime"])[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="QONNX (or intermediate) model to start from")
    ap.add_argument("--tiny", action="store_true", help="export the 64x64 test encoder (int_norm) and start there")
    ap.add_argument("--steps", default="qonnx_to_finn,tidy_up,streamline,convert_to_hw,minimize_bit_width_initial,"
                    "partition,specialize,fold,minimize_bit_width,transpose_decomposition,estimates,hw_codegen")
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--without-speedups", action="store_true",
                    help="qonnx's own SortGraph / tensor renaming / shape check (not the build's linear-time ones)")
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
        from samfpga.models.quant.source import tiny_encoder_qonnx

        src = tiny_encoder_qonnx(args.work, int_norm=True)
    else:
        src = args.model
    steps = [s.strip() for s in args.steps.split(",")]
    ctx = BuildContext(cfg=BuildConfig(board=args.board, output_dir=str(args.work / "out"), steps=tuple(steps)),
                       out=(args.work / "out").resolve())
    ctx.out.mkdir(parents=True, exist_ok=True)
    model = ModelWrapper(str(src))
    result = {"model": str(src), "board": args.board, "speedups": not args.without_speedups, "steps": {}}
    for i, name in enumerate(steps, 1):
        prof = cProfile.Profile(time.process_time)
        c0, t0 = time.process_time(), time.time()
        with contextlib.nullcontext() if args.without_speedups else installed():
            prof.enable()
            model = STEPS[name](model, ctx)
            prof.disable()
        cpu, wall = time.process_time() - c0, time.time() - t0
        model.save(str(args.work / f"{i:02d}_{name}.onnx"))
        result["steps"][name] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "nodes": len(model.graph.node),
                                 "top": _top(prof, args.top)}
        print(f"{name}: {cpu:.1f} CPU s, {wall:.1f} s wall, {len(model.graph.node)} nodes", flush=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
