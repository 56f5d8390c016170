"""A rolled stage's loop in RTL: cycles per block against the number of maps interleaved, at two map sizes
(issue 15; docs/rolled_stage.md).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/rolled_loop.py [--sizes 64,256] [--maps 64:1,2,4;256:1,2] \
        [--out bench/results/rolled_loop]

Per input size S: the reduced encoder of tests/test_rolled.py (``tiny_quant_encoder``: the tiny student family,
blocks per stage 2, 1, 3, 1, seeded, W8A8 with integer LayerNorm / softmax and biases) through the build's steps up
to ``transpose_decomposition`` with ``roll`` (kv260, the build's own folding), its last rolled stage's looped body
(3 blocks; at 64² a 4 x 4-token map, one attention window; at 256² 16 x 16 tokens, 16 windows) run as a loop
between the strip reader and the strip writer in Verilator (``rolled_loop.run_loop_rtl``: K maps interleaved,
free-running, seeded INT8 maps), bit-exact against python execution (tolerance 0; the run is refused otherwise).

Figures per (S, K): the cycle each (block, map) was in DDR; per map-block on average; the body's latency (the first
block of the first map: start to its last write response) and its interval (the smallest spacing between two
consecutive outputs, which the body's slowest layer sets once K maps keep it busy). Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEPTHS = [2, 1, 3, 1]
STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "pixel_input", "convert_to_hw", "minimize_bit_width_initial",
         "partition", "specialize")


def rolled_body(size: int, work: Path):
    """The looped body of the reduced encoder's last rolled stage at input ``size`` (see module doc)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS as BUILD_STEPS
    from samfpga.hw.build.steps import BuildContext
    from samfpga.hw.rolled import roll
    from samfpga.hw.rolled.hdl import looped_body
    from samfpga.models.quant import export_qonnx
    from samfpga.models.quant.source import tiny_quant_encoder

    q = tiny_quant_encoder(int_norm=True, bias_on_grid=True, linear_bias_std=0.1, depths=DEPTHS, image_size=size)
    onnx = export_qonnx(q, work / "enc.onnx", (1, 3, size, size))
    import samfpga.hw.custom_ops  # noqa: F401

    model = ModelWrapper(str(onnx))
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work / "b")), out=work / "b")
    with installed():
        for name in STEPS:
            model = BUILD_STEPS[name](model, ctx)
        ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work / "f"), options=BuildOptions(roll=True)),
                           out=work / "f")
        for name in ("fold", "minimize_bit_width", "transpose_decomposition"):
            model = BUILD_STEPS[name](model, ctx)
    body, res = looped_body(roll(model).loops[-1])
    if res.missing:
        raise SystemExit(f"body layers without per-iteration HDL: {res.missing}")
    return body


def measure(body, k: int, work: Path) -> dict:
    from samfpga.hw.sim import rolled_loop as rl

    shape = body.get_tensor_shape(body.graph.input[0].name)
    rng = np.random.default_rng(5)
    maps = [rng.integers(-128, 128, shape).astype(np.float32) for _ in range(k)]
    t0 = time.monotonic()
    r = rl.run_loop_rtl(body, maps, work, [rl.Pass("free")])
    if r.error or not all(r.equal) or any(any(m) for m in r.mismatches):
        raise SystemExit(f"K={k}: not bit-exact or failed: {r.error} {r.mismatches}")
    done = r.passes[0]["done_cycles"]
    gaps = np.diff(done)
    return {"k": k, "blocks": r.blocks, "tokens": int(np.prod(shape[1:-1])), "channels": int(shape[-1]),
            "done_cycles": done, "total_cycles": done[-1], "per_map_block": round(done[-1] / len(done), 1),
            "latency": done[0], "interval": int(gaps.min()) if len(gaps) and k > 1 else None,
            "bit_exact": True, "wall_s": round(time.monotonic() - t0, 1)}


def markdown(res: dict) -> str:
    lines = [
        "# A rolled stage's loop in RTL: cycles per block against maps interleaved (issue 15)", "",
        f"`{res['command']}`  ", f"{res['machine']}; Verilator + cocotb, free-running, bit-exact against python "
        "execution (tolerance 0) in every run", "",
        "| input | body map | maps K | cycles to the last output | per map-block | latency (first block) | "
        "interval (min spacing) | latency / interval |", "|---|---|---|---|---|---|---|---|"]
    for size, runs in res["sizes"].items():
        interval = min((r["interval"] for r in runs if r["interval"]), default=None)
        for r in runs:
            ratio = f"{r['latency'] / interval:.2f}" if interval else "-"
            own = f"{r['interval']:,}" if r["interval"] else "-"
            lines.append(f"| {size}² | {r['tokens']} tokens x {r['channels']} | {r['k']} | {r['total_cycles']:,} | "
                         f"{r['per_map_block']:,.0f} | {r['latency']:,} | {own} | {ratio} |")
    lines += ["", "With one map a block costs the body's latency (its output is the next block's input); with K >= "
              "latency / interval maps interleaved the loop runs at the interval, which the planner's rolled units "
              "assume (docs/rolled_stage.md)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,256")
    ap.add_argument("--maps", default="64:1,2,4;256:1,2", help="per size, the K values (size:k,k;size:k)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/rolled_loop")
    args = ap.parse_args(argv)
    maps = {int(s): [int(k) for k in ks.split(",")] for s, ks in (p.split(":") for p in args.maps.split(";"))}
    res = {"command": "python bench/rolled_loop.py " + " ".join(argv or []),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus", "sizes": {}}
    from samfpga.hw.finn_env import boot

    with tempfile.TemporaryDirectory(prefix="rolled_loop_") as root:
        boot(Path(root) / "finn_build")  # FINN's build dir is set once per process: one for every size
        for size in (int(s) for s in args.sizes.split(",")):
            d = Path(root) / str(size)
            d.mkdir()
            t0 = time.monotonic()
            body = rolled_body(size, d)
            print(f"{size}²: body in {time.monotonic() - t0:.0f} s", flush=True)
            runs = []
            for k in maps.get(size, [1]):
                runs.append(measure(body, k, d / f"k{k}"))
                print(json.dumps(runs[-1]), flush=True)
            res["sizes"][str(size)] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
