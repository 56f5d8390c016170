"""A rolled stage's loop in RTL: cycles per block against the number of maps interleaved, at two map sizes
(issue 15; docs/rolled_stage.md).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/rolled_loop.py [--sizes 64,256] [--maps 64:1,2,4;256:1,2] \
        [--out bench/results/rolled_loop]
    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/rolled_loop.py --build DIR [--maps-per-loop 1] \
        [--out bench/results/rolled_loop_build]

``--build DIR``: instead of the reduced encoder, the parts a rolled build generated (``samfpga build-hw --roll ...
--out DIR``: ``DIR/rolled/parts.json``) in RTL one after the other on seeded uint8 pixels
(``rolled_parts.run_parts_rtl``): each part, a piece that runs once or a loop body run N times, between the strip
reader and the strip writer, reading the bytes the part before it wrote, checked against its python execution.
With ``--maps-per-loop K`` (K > 1) or ``--parts``, only the loop bodies (or those named), each on the block input
that the rolled graph's python execution gives, with K maps interleaved. A part's runtime-writeable layers (the
build puts them in URAM, which a bitstream cannot initialise) start empty and get their words over their own AXI-Lite
before the part runs, one dropped pass after (``run_loop_rtl``): the table's "loaded over AXI-Lite" column.

Per input size S: the reduced encoder of tests/test_rolled.py (``samfpga.hw.rolled.reduced``: the tiny student
family, blocks per stage 2, 1, 3, 1, seeded, W8A8 with integer LayerNorm / softmax and biases) through the build's
steps up to ``transpose_decomposition`` with ``roll`` (kv260, the build's own folding), its last rolled stage's looped body
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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rolled_body(size: int, work: Path):
    """The looped body of the reduced encoder's last rolled stage at input ``size`` (see module doc)."""
    from samfpga.hw.rolled import reduced, roll
    from samfpga.hw.rolled.hdl import looped_body

    model = reduced.rolled_folded(reduced.hw_graphs(work, size)["specialize"], work / "f")
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
    if not r.bit_exact:
        raise SystemExit(f"K={k}: not bit-exact or failed: {r.error} {r.mismatches}")
    done = r.passes[0]["done_cycles"]
    gaps = np.diff(done)
    return {"k": k, "blocks": r.blocks, "tokens": int(np.prod(shape[1:-1])), "channels": int(shape[-1]),
            "done_cycles": done, "total_cycles": done[-1], "per_map_block": round(done[-1] / len(done), 1),
            "latency": done[0], "interval": int(gaps.min()) if len(gaps) and k > 1 else None,
            "bit_exact": True, "wall_s": round(time.monotonic() - t0, 1)}


def read_build(build: Path) -> tuple[dict, list[dict], list, np.ndarray]:
    """A rolled build's parts index (``rolled/parts.json``), its report's rolled stages (the build's estimates; none
    without a report), the parts' graphs and the seeded uint8 pixels (as float32) the bench feeds the first part."""
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401  (the project's ops, registered before any execution)

    index = json.loads((build / "rolled" / "parts.json").read_text())
    report = build / "report.json"
    stages = json.loads(report.read_text()).get("rolled", {}).get("stages", []) if report.is_file() else []
    parts = [ModelWrapper(str(build / part["file"])) for part in index["parts"]]
    shape = parts[0].get_tensor_shape(parts[0].graph.input[0].name)
    return index, stages, parts, np.random.default_rng(0).integers(0, 256, size=shape).astype(np.float32)


def build_chain(build: Path, work: Path) -> list[dict]:
    """Every part of rolled build ``build`` in RTL one after the other (``rolled_parts.run_parts_rtl``: each part
    reads the bytes the part before it wrote) on seeded uint8 pixels (``--build`` with K = 1; module doc)."""
    from samfpga.hw.sim import rolled_loop as rl
    from samfpga.hw.sim import rolled_parts as rp

    index, stages, parts, x = read_build(build)
    lay = rp.layouts(parts)
    loops = iter(stages)
    out = []

    def row(run: rp.PartRun) -> None:
        part, model, c = index["parts"][run.index], parts[run.index], run.check
        done = c.passes[0]["done_cycles"] if c.passes else []
        est = next(loops, {}).get("body_interval") if run.loop else None  # the build's estimate, per block
        i, o = model.graph.input[0].name, model.graph.output[0].name
        out.append({"part": part["file"], "kind": part["kind"], "iterations": part["iterations"],
                    "looped_layers": part["looped"], "layers": part["layers"], "estimated_body_interval": est,
                    "shape": model.get_tensor_shape(i), "datatype": model.get_tensor_datatype(i).name,
                    "out_shape": model.get_tensor_shape(o), "out_datatype": model.get_tensor_datatype(o).name,
                    "bytes_per_element": [lay[run.index], lay[run.index + 1]], "k": 1, "bit_exact": run.bit_exact,
                    "handoff": run.handoff, "mismatches": c.mismatches, "error": c.error, "done_cycles": done,
                    "latency": done[0] if done else None,
                    "weight_bytes": c.passes[0]["weight_bytes"] if c.passes else {},
                    "token_batched_units": len(c.want_weight_bytes), "runtime_words": c.runtime_words,
                    "flush_equal": c.flush_equal, "wall_s": run.wall_s})
        print(json.dumps(out[-1]), flush=True)

    rp.run_parts_rtl(parts, x, work, [rl.Pass("free")], progress=row)
    return out


def build_loops(build: Path, k: int, work: Path, only: set[str] | None = None) -> list[dict]:
    """Each loop body of rolled build ``build`` as a loop in RTL (``--build``; module doc)."""
    from samfpga.hw.build.package import python_view
    from samfpga.hw.custom_ops.looped import at_iteration
    from samfpga.hw.rolled.execute import run_once
    from samfpga.hw.sim import rolled_loop as rl

    index, stages, parts, x = read_build(build)
    n_loop = 0
    out = []
    for j, (part, model) in enumerate(zip(index["parts"], parts)):
        if part["kind"] == "once":
            x = run_once(python_view(model), x)
            continue
        est = stages[n_loop]["body_interval"] if n_loop < len(stages) else None  # the build's estimate, per block
        n_loop += 1
        row = {"part": part["file"], "iterations": part["iterations"], "looped_layers": part["looped"],
               "estimated_body_interval": est,
               "layers": part["layers"], "shape": model.get_tensor_shape(model.graph.input[0].name),
               "datatype": model.get_tensor_datatype(model.graph.input[0].name).name}
        t0 = time.monotonic()
        try:
            if only and part["file"] not in only:
                raise rl.LoopError("not selected (--parts)")
            rl.geometry(model)
        except rl.LoopError as exc:
            row["refused"] = str(exc)
        else:
            rng = np.random.default_rng(5)
            maps = [x] + [rng.integers(-128, 128, x.shape).astype(np.float32) for _ in range(k - 1)]
            r = rl.run_loop_rtl(model, maps, work / f"part{j}", [rl.Pass("free")])
            done = r.passes[0]["done_cycles"] if r.passes else []
            row.update({"k": k, "bit_exact": r.bit_exact,
                        "mismatches": r.mismatches, "error": r.error, "done_cycles": done,
                        "latency": done[0] if done else None, "weight_bytes": r.passes[0]["weight_bytes"] if r.passes
                        else {}, "token_batched_units": len(r.want_weight_bytes),
                        "runtime_words": r.runtime_words, "flush_equal": r.flush_equal})
            at_iteration(model, 0)
        row["wall_s"] = round(time.monotonic() - t0, 1)
        print(json.dumps(row), flush=True)
        out.append(row)
        for i in range(part["iterations"]):  # the next part's input: this loop's output
            at_iteration(model, i)
            x = run_once(python_view(model), x)
    return out


def build_markdown(res: dict) -> str:
    chain = "frame_cycles" in res
    title = ("# A rolled build's parts in RTL, one after the other (issue 15)" if chain
             else "# A rolled build's loop bodies as loops in RTL (issue 15)")
    lines = [title, "", f"`{res['command']}`  ",
             f"{res['machine']}; build `{res['build']}`; Verilator + cocotb, free-running, tolerance 0", "",
             "| part | blocks | input -> output (bytes per element in DDR) | layers (looped) | token-batched units | "
             "layers loaded over AXI-Lite (words) | maps K | result | cycles until each block is in DDR | "
             "build's estimate of the body's interval | first block / estimate |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["loops"]:
        est = r.get("estimated_body_interval")
        if "refused" in r:
            result, cyc, ratio = f"not run: {r['refused']}", "-", "-"
        else:
            result = "**bit-exact**" if r["bit_exact"] else f"DIFFERS {r['mismatches']} {r['error']}"
            if not r.get("handoff", True):
                result += ", input buffer NOT the previous part's output"
            cyc = ", ".join(f"{c:,}" for c in r["done_cycles"])
            ratio = f"{r['latency'] / est:.2f}" if est and r["latency"] else "-"
        io = f"{r['shape']} {r['datatype']}"
        if "out_shape" in r:
            bpe = r["bytes_per_element"]
            io = f"{r['shape']} {r['datatype']} ({bpe[0]}) -> {r['out_shape']} {r['out_datatype']} ({bpe[1]})"
        rw = r.get("runtime_words") or {}
        loaded = f"{len(rw)} ({sum(rw.values()):,})" if rw else "-"
        lines.append(f"| `{r['part']}` | {r['iterations']} | {io} | {r['layers']} ({r['looped_layers']}) | "
                     f"{r.get('token_batched_units', '-')} | {loaded} | {r.get('k', '-')} | {result} | {cyc} | "
                     f"{f'{est:,}' if est else '-'} | {ratio} |")
    if chain and res["frame_cycles"]:
        f = res["frame_cycles"]
        lines += ["", f"Each part read the bytes the part before it wrote (the handoff is checked byte for byte). One "
                  f"frame through every part in turn, one map in each loop: {f:,} cycles ({f / 200e3:.2f} ms at 200 "
                  "MHz; the sum over parts of the cycle its last output was in DDR). That is a frame's latency, not "
                  "the throughput: the parts are separate hardware, which the build's fps has working on different "
                  "frames at once."]
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--build", type=Path, help="a rolled build's output directory (see module doc)")
    ap.add_argument("--maps-per-loop", type=int, default=1, help="--build: maps interleaved (K)")
    ap.add_argument("--parts", default="", help="--build: only these parts (rolled/<k>_body.onnx, comma-separated)")
    ap.add_argument("--out", type=Path)
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.build is not None:
        return main_build(args, argv)
    args.out = args.out or ROOT / "bench/results/rolled_loop"
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


def main_build(args, argv: list[str] | None) -> int:
    from samfpga.hw.finn_env import boot

    if not (args.build / "rolled" / "parts.json").is_file():
        raise SystemExit(f"{args.build}: no rolled/parts.json (make it with samfpga build-hw --roll ... --out DIR)")
    out = args.out or ROOT / "bench/results/rolled_loop_build"
    res = {"command": "python bench/rolled_loop.py " + " ".join(argv or []), "build": str(args.build),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus"}
    with tempfile.TemporaryDirectory(prefix="rolled_loop_build_") as root:
        boot(Path(root) / "finn_build")
        only = {p for p in args.parts.split(",") if p} or None
        if args.maps_per_loop == 1 and only is None:
            res["loops"] = build_chain(args.build, Path(root))
            done = [r["done_cycles"][-1] for r in res["loops"] if r["done_cycles"]]
            res["frame_cycles"] = sum(done) if len(done) == len(res["loops"]) else None
        else:
            res["loops"] = build_loops(args.build, args.maps_per_loop, Path(root), only)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(build_markdown(res))
    print(build_markdown(res))
    return 0 if all(r.get("bit_exact", True) for r in res["loops"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
