"""Column strips of rolled bodies in the FINN graph (``samfpga.hw.rolled.strips``), measured on the reduced encoder's
rolled stages (``samfpga.hw.rolled.reduced``: 2 MBConv blocks, expansion 4, 3 x 3 depthwise; 3 transformer blocks,
window 4, 3 x 3 local conv) at several input sizes, in one run:

    PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.conv_strips [--image-sizes 64,256] [--tiles 2,4,8] \
        [--out bench/results/conv_strips]

Per size: the build's steps to ``specialize`` (kv260, default options: every layer at FINN's initial folding, PE =
SIMD = 1), the graph rolled; each loop run on the whole map and strip by strip (every block, its iteration's
parameters, its halo) on two seeded images (FINN python execution: differing values must be 0), and the body's
resources by the build's layer costs (``samfpga.hw.resources.layer_costs``: the project's models where registered,
else FINN's estimates; no synthesis) and FINN's cycle estimates, whole map against strips (the widest strip's
hardware; cycles summed over the strips, halo columns included), and whether the widest strip costs the same
restriped before and after the build's shuffle conversion (``same_price``: the build's fit prices the first, its
report the second, ``samfpga.hw.build.rolling``). Writes ``<out>.json`` and ``<out>.md``; exits 1 when a value
differs or a price does.
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
    from samfpga.hw.rolled.graph import Loop
    from samfpga.hw.rolled.strips import execute_loop_strips, geometry, halo, restripe, strip_costs

    t0 = time.monotonic()
    g = reduced.hw_graphs(work / f"s{size}", image_size=size)["specialize"]
    build_s = time.monotonic() - t0
    rolled = roll(g)
    name = g.graph.input[0].name
    xs = [np.random.default_rng(seed).integers(0, 256, size=g.get_tensor_shape(name)).astype(np.float32)
          for seed in (0, 1)]
    loops = []
    for part in rolled.parts:
        if not isinstance(part, Loop):
            xs = [run_once(_python(part), x) for x in xs]
            continue
        geo, h = geometry(part.body), halo(part.body)
        usable = [t for t in tiles if geo.w % t == 0 and (not geo.window or (geo.w // t) % geo.window == 0)
                  and geo.w // t > h]
        try:
            restripe(part.body, geo.w)
        except ValueError as e:  # e.g. a transformer stage that is one window: attention over the whole map
            usable, refused = [], str(e)
        else:
            refused = ""
        runs, wants = [], []
        for seed, x in enumerate(xs):
            want = run_loop(part, x)
            wants.append(want)
            for t in usable:
                got = execute_loop_strips(part, x, t)
                runs.append({"seed": seed, "tiles": t, "differing": int((got != want).sum()), "values": int(want.size)})
        attention = any(n.op_type.startswith("IntSoftmax") for n in part.body.graph.node)
        loops.append({"body": "transformer" if attention else "mbconv", "map": [geo.h, geo.w], "window": geo.window,
                      "halo": h, "iterations": part.iterations, "runs": runs, "refused": refused,
                      "costs": [strip_costs(part.body, BOARDS["kv260"], t) for t in usable],
                      "same_price": {t: same_price(part.body, BOARDS["kv260"], t) for t in usable}})
        xs = wants
    return {"image_size": size, "build_s": round(build_s, 1), "loops": loops}


def same_price(body, board, tiles: int) -> bool | str:
    """Whether the widest strip of ``body`` costs the same restriped before the build's shuffle conversion (what the
    fit search prices, ``rolling.StripTwins``) and after it (what the report prices, ``rolling.rolled_costs``): the
    layer costs per op type (LUT, BRAM36, URAM, DSP) equal; the error's text when one order fails."""
    import copy

    from samfpga.hw.build.after_folding import after_folding
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.rolled.strips import restripe, strip_widths

    def by_type(g) -> dict:
        out: dict[str, list[float]] = {}
        for c in layer_costs(g, board):
            t = out.setdefault(c.op_type, [0.0] * 4)
            for i, r in enumerate((c.LUT, c.BRAM36, c.URAM, c.DSP)):
                t[i] += r
        return out

    w = max(strip_widths(body, tiles))
    try:
        fit = by_type(after_folding(restripe(body, w), board.part, True))
        report = by_type(restripe(after_folding(copy.deepcopy(body), board.part, True), w))
    except ValueError as e:
        return str(e)
    return fit == report


_GROUPS = {"sliding window": ("ConvolutionInputGenerator",), "window shuffles": ("PagePermute", "InnerShuffle",
                                                                                   "OuterShuffle")}


def _group(by_type: dict, prefixes: tuple[str, ...]) -> dict:
    return {k: sum(v[k] for t, v in by_type.items() if t.startswith(prefixes)) for k in ("LUT", "BRAM36", "URAM")}


def _md(results: list[dict], command: str) -> str:
    lines = ["# Column strips of the reduced encoder's rolled bodies (FINN graph)", "",
             f"Command: `{command}`. Resources: the build's layer costs after its shuffle conversion "
             "(`samfpga.hw.resources.layer_costs`: own models where registered, else FINN estimates; not synthesis), "
             "kv260, every layer at PE = SIMD = 1; strips: the widest strip's hardware, cycles summed over the "
             "strips (halo columns computed too). Differing values: the loop in strips against the loop on the "
             "whole map, FINN python execution, two images. Same price: the strip restriped before and after the "
             "build's shuffle conversion (what the fit and the report price) has equal layer costs per op type.", "",
             "| image | body (map, window, halo) | strips | strip input widths | differing values | LUT | BRAM36 | "
             "sliding window LUT / BRAM36 | window shuffles LUT / BRAM36 | cycles per frame | same price |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(size, label, tiles, widths, diff, f, ratio="", same="-"):
        sw, sh = _group(f["by_type"], _GROUPS["sliding window"]), _group(f["by_type"], _GROUPS["window shuffles"])
        return (f"| {size}² | {label} | {tiles} | {widths} | {diff} | {f['resources']['LUT']:,.0f} | "
                f"{f['resources']['BRAM36']:g} | {sw['LUT']:,.0f} / {sw['BRAM36']:g} | {sh['LUT']:,.0f} / "
                f"{sh['BRAM36']:g} | {f['cycles']:,}{ratio} | {same} |")

    for r in results:
        for lp in r["loops"]:
            if lp["refused"]:
                lines.append(f"| {r['image_size']}² | {lp['body']} ({lp['map'][0]} x {lp['map'][1]}) | refused: "
                             f"{lp['refused']} | | | | | | | | |")
            if not lp["costs"]:
                continue
            label = f"{lp['body']} ({lp['map'][0]} x {lp['map'][1]}, {lp['window'] or '-'}, {lp['halo']})"
            lines.append(row(r["image_size"], label, 1, lp["map"][1], "-", lp["costs"][0]["full"]))
            for c in lp["costs"]:
                diff = sum(x["differing"] for x in lp["runs"] if x["tiles"] == c["tiles"])
                same = lp.get("same_price", {}).get(c["tiles"], lp.get("same_price", {}).get(str(c["tiles"]), "-"))
                lines.append(row(r["image_size"], "", c["tiles"], ", ".join(map(str, c["strip_widths"])), diff,
                                 c["strips"], f" ({c['strips']['cycles'] / c['full']['cycles']:.2f}x)",
                                 {True: "yes", False: "no"}.get(same, same)))
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
        results.append(measure(size, tiles, a.work))
        print(f"{size}: {[(lp['body'], x['tiles'], x['differing']) for lp in results[-1]['loops'] for x in lp['runs']]}",
              flush=True)
    command = "PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.conv_strips " + " ".join(sys.argv[1:] if argv is None
                                                                                          else argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(_md(results, command))
    print(a.out.with_suffix(".md").read_text())
    exact = all(x["differing"] == 0 for r in results for lp in r["loops"] for x in lp["runs"])
    same = all(v is True for r in results for lp in r["loops"] for v in lp["same_price"].values())
    return 0 if exact and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
