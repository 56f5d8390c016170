"""Run-length coding after NMS (issue 16): dense and hierarchical everything before and after, side by side.

    .venv/bin/python -m bench.everything_rle_after_nms [--models vit_t,default] [--before 3c4be2f] \
        [--rounds 3] [--out bench/results/everything_rle_after_nms]

"Before" is the code of ``samfpga.everything`` at git revision ``--before`` (every filtered mask run-length
coded in its batch, then NMS), loaded from git into a scratch package beside the current one; "after" is the
working tree's (masks held bit-packed, only NMS survivors coded). Both drive the same predictor on the same
image, alternating in ``--rounds`` rounds (the machine is shared; the best round counts); the records must be
identical. Models and image as ``bench.everything_breakdown`` (vit_t 1024² seeded, the bundled default
checkpoint; held-out synthetic image 0, 480 x 640). Thresholds: ``--pred-iou-thresh`` / ``--stability-score-thresh``
(default 0.5 / 0.8: the official ones let no mask of these models through on this image, so there would be
nothing to code). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.everything_breakdown import bench_image, build_model

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("__init__", "amg", "decode", "dense", "hierarchical", "timing")


def load_before(rev: str, scratch: Path):
    """``samfpga.everything`` at git ``rev`` as the package ``everything_before`` (imports samfpga otherwise)."""
    pkg = scratch / "everything_before"
    pkg.mkdir(parents=True)
    for m in MODULES:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:sw/samfpga/everything/{m}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{m}.py").write_text(src)
    sys.path.insert(0, str(scratch))
    return importlib.import_module("everything_before")


def count_filtered(module) -> list[int]:
    """Wraps ``module.dense.filter_batch`` (and hierarchical's) to count the masks that pass the filters."""
    counts: list[int] = []
    inner = module.dense.filter_batch

    def counting(*args, **kwargs):
        data, covered = inner(*args, **kwargs)
        counts.append(len(data["boxes"]))
        return data, covered

    module.dense.filter_batch = counting
    module.hierarchical.filter_batch = counting
    return counts


def run_pair(pred, image, params: dict, mode: str, pkgs: dict, counts: dict, rounds: int) -> dict:
    out: dict = {"before": [], "after": []}
    recs = {}
    for _ in range(rounds):
        for name, pkg in pkgs.items():
            cls = pkg.AutomaticMaskGenerator if mode == "dense" else pkg.HierarchicalMaskGenerator
            gen = cls(pred, **params)
            counts[name].clear()
            t0 = time.perf_counter()
            recs[name] = gen.generate(image)
            wall = time.perf_counter() - t0
            out[name].append({"wall_s": wall, "stages_s": gen.timings, "masks": len(recs[name]),
                              "filtered": sum(counts[name]), "decoder_prompts": gen.stats["decoder_prompts"]})
            print(mode, name, json.dumps(out[name][-1]), flush=True)
    out["identical"] = recs["before"] == recs["after"]
    for name in ("before", "after"):
        out[f"best_{name}"] = min(out[name], key=lambda r: r["wall_s"])
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vit_t,default")
    p.add_argument("--modes", default="dense,hierarchical")
    p.add_argument("--before", default="3c4be2f", help="git revision of the eager-RLE code")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--pred-iou-thresh", type=float, default=0.5)
    p.add_argument("--stability-score-thresh", type=float, default=0.8)
    p.add_argument("--rounds", type=int, default=3, help="rounds for the default model (vit_t: 1)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_rle_after_nms")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import samfpga.everything as after
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor

    image = bench_image()
    params = dict(points_per_side=args.points_per_side, pred_iou_thresh=args.pred_iou_thresh,
                  stability_score_thresh=args.stability_score_thresh, output_mode="uncompressed_rle")
    result = {
        "command": "python -m bench.everything_rle_after_nms " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average at start {os.getloadavg()[0]:.1f}",
        "image": "held-out synthetic image 0 (seed 1), 640x640, rows 0:480 -> 480x640", "params": params,
        "threads": args.threads, "before_rev": args.before, "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        before = load_before(args.before, Path(tmp) / "pkg")
        counts_before, counts_after = count_filtered(before), count_filtered(after)
        for name in args.models.split(","):
            sam = build_model(name)
            bundle_dir = export_bundle(sam, Path(tmp) / f"bundle_{name}", source=f"bench model {name}")
            pred = Predictor.from_bundle(bundle_dir, threads=args.threads)
            rounds = 1 if name == "vit_t" else args.rounds
            entry = {"image_size": int(sam.img_size)}
            for mode in args.modes.split(","):
                pair = run_pair(pred, image, params, mode, {"before": before, "after": after},
                                {"before": counts_before, "after": counts_after}, rounds)
                entry[mode] = pair
            result["models"][name] = entry
    result["load_average_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    lines = ["# Run-length coding after NMS: before / after (issue 16)", "",
             f"`{result['command']}`  ",
             f"{result['machine']}, threads {result['threads']}; image: {result['image']}; before = git "
             f"{result['before_rev']}; params: {json.dumps(result['params'])}", ""]
    for name, entry in result["models"].items():
        for mode in ("dense", "hierarchical"):
            if mode not in entry:
                continue
            p = entry[mode]
            b, a = p["best_before"], p["best_after"]
            lines += [f"## {name} ({entry['image_size']}²), {mode}", "",
                      f"{a['decoder_prompts']} decoder prompts; {a['filtered']} masks pass the filters, {a['masks']} "
                      f"survive NMS; records identical: **{p['identical']}**; best of {len(p['after'])} round(s)",
                      "", "| stage | before (s) | after (s) |", "|---|---|---|"]
            for k in ("encoder", "decoder", "masks", "upscale", "filters", "rle", "nms", "records", "other",
                      "total"):
                lines.append(f"| {k} | {b['stages_s'][k]:.3f} | {a['stages_s'][k]:.3f} |")
            lines.append(f"| rle share of total | {100 * b['stages_s']['rle'] / b['stages_s']['total']:.2f}% | "
                         f"{100 * a['stages_s']['rle'] / a['stages_s']['total']:.2f}% |")
            lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
