"""Column strips of a conv body in the FINN graph (``samfpga.hw.rolled.strips``), measured on the reduced encoder's
rolled MBConv stage (``samfpga.hw.rolled.reduced``: 2 MBConv blocks, expansion 4, 3 x 3 depthwise) at several
input sizes, in one run:

    PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.conv_strips [--image-sizes 64,256] [--tiles 2,4,8] \
        [--out bench/results/conv_strips]

Per size: the build's steps to ``specialize`` (kv260, default options: every layer at FINN's initial folding, PE =
SIMD = 1), the graph rolled; the MBConv loop run on the whole map and strip by strip (every block, its iteration's
parameters, halo 1) on two seeded images (FINN python execution: differing values must be 0), and the body's
resources by the build's layer costs (``samfpga.hw.resources.layer_costs``: the project's models where registered,
else FINN's estimates; no synthesis) and FINN's cycle estimates, whole map against strips (the widest strip's
hardware; cycles summed over the strips, halo columns included). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def measure(size: int, tiles: list[int], work: Path) -> dict:
    from samfpga.hw.boards import BOARDS
    from samfpga.hw.rolled import reduced, roll
    from samfpga.hw.rolled.execute import _python, run_loop, run_once
    from samfpga.hw.rolled.strips import execute_loop_strips, strip_costs

    t0 = time.monotonic()
    g = reduced.hw_graphs(work / f"s{size}", image_size=size)["specialize"]
    build_s = time.monotonic() - t0
    rolled = roll(g)
    mb = rolled.loops[0]
    name = g.graph.input[0].name
    runs = []
    for seed in (0, 1):
        x = np.random.default_rng(seed).integers(0, 256, size=g.get_tensor_shape(name)).astype(np.float32)
        x = run_once(_python(rolled.parts[0]), x)
        want = run_loop(mb, x)
        for t in tiles:
            got = execute_loop_strips(mb, x, t)
            runs.append({"seed": seed, "tiles": t, "differing": int((got != want).sum()), "values": int(want.size)})
    costs = [strip_costs(mb.body, BOARDS["kv260"], t) for t in tiles]
    return {"image_size": size, "map": list(mb.body.get_tensor_shape(mb.body.graph.input[0].name)),
            "iterations": mb.iterations, "build_s": round(build_s, 1), "runs": runs, "costs": costs}


def _md(results: list[dict], command: str) -> str:
    lines = ["# Column strips of the reduced encoder's MBConv body (FINN graph)", "",
             f"Command: `{command}`. Resources: the build's layer costs (`samfpga.hw.resources.layer_costs`: "
             "own models where registered, else FINN estimates; not synthesis), kv260, every layer at PE = SIMD = 1; "
             "strips: the widest strip's hardware, cycles summed over the strips (halo columns computed too).", "",
             "| image | body map | strips | strip input widths | differing values (2 images) | LUT | BRAM36 | "
             "sliding-window LUT | sliding-window BRAM36 | cycles per frame |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        h, w = r["map"][1], r["map"][2]
        first = r["costs"][0]["full"]
        swg = {k: sum(v[k] for t, v in first["by_type"].items() if t.startswith("ConvolutionInputGenerator"))
               for k in ("LUT", "BRAM36")}
        lines.append(f"| {r['image_size']}² | {h} x {w} x {r['map'][3]} | 1 | {w} | - | {first['resources']['LUT']:,.0f} | "
                     f"{first['resources']['BRAM36']:g} | {swg['LUT']:,.0f} | {swg['BRAM36']:g} | "
                     f"{first['cycles']:,} |")
        for c in r["costs"]:
            s = c["strips"]
            swg = {k: sum(v[k] for t, v in s["by_type"].items() if t.startswith("ConvolutionInputGenerator"))
                   for k in ("LUT", "BRAM36")}
            diff = sum(x["differing"] for x in r["runs"] if x["tiles"] == c["tiles"])
            lines.append(f"| {r['image_size']}² | | {c['tiles']} | {', '.join(map(str, c['strip_widths']))} | {diff} | "
                         f"{s['resources']['LUT']:,.0f} | {s['resources']['BRAM36']:g} | {swg['LUT']:,.0f} | "
                         f"{swg['BRAM36']:g} | {s['cycles']:,} ({s['cycles'] / c['full']['cycles']:.2f}x) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    from samfpga.hw.finn_env import boot

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image-sizes", default="64,256")
    p.add_argument("--tiles", default="2,4,8")
    p.add_argument("--work", type=Path, default=ROOT / "out" / "conv_strips")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "conv_strips")
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    boot(a.work / "finn_build")
    tiles = [int(t) for t in a.tiles.split(",")]
    results = []
    for size in (int(s) for s in a.image_sizes.split(",")):
        usable = [t for t in tiles if (size // 4) % t == 0]
        results.append(measure(size, usable, a.work))
        print(f"{size}: {[(x['tiles'], x['differing']) for x in results[-1]['runs']]}", flush=True)
    command = "PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.conv_strips " + " ".join(sys.argv[1:] if argv is None
                                                                                          else argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(_md(results, command))
    print(a.out.with_suffix(".md").read_text())
    return 0 if all(x["differing"] == 0 for r in results for x in r["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
