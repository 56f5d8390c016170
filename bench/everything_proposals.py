"""Proposals mode vs dense everything on held-out images (issue 16): decoder prompts and dense masks recovered.

    .venv/bin/python -m bench.everything_proposals [--head sw/samfpga/assets/default/proposals.onnx] \
        [--images 10] [--score-thresh 0.1,0.2,0.3,0.5] [--strategies head,refined] \
        [--out bench/results/everything_proposals]

Per held-out image (``--split``, the bundled default's 256 x 256 input): dense everything with the bundled default
(``--points-per-side`` grid) and ``ProposalMaskGenerator`` with the head, both at ``--pred-iou-thresh`` /
``--stability-score-thresh`` (default 0.5 / 0.8: the bundled default finds no mask on these images at the
official 0.88 / 0.95). A dense mask is recovered when a proposals-mode mask has IoU >= ``--iou`` (0.8) with it.
Per score threshold and strategy (``head``: the head's points as they are, ``refine=None``; ``refined``: snapped
to the dense grid plus the second pass of ``samfpga.everything.refine``, ``--refine-*`` options): decoder prompts
per image (dense / proposals = the reduction), recovered fraction, the fraction of the mode's own masks that
match a dense mask (IoU >= ``--iou``), and mean wall seconds per image. ``bench/everything_proposals_oracle.py`` gives the bound for perfect proposals.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from bench.everything_proposals_oracle import mask_iou

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--head", type=Path, help="proposal head ONNX (default: the bundled default's)")
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--start", type=int, default=0, help="first image index of the split (e.g. 20: images 20..)")
    p.add_argument("--split", default="heldout")
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--pred-iou-thresh", type=float, default=0.5)
    p.add_argument("--stability-score-thresh", type=float, default=0.8)
    p.add_argument("--score-thresh", default="0.1,0.2,0.3,0.5")
    p.add_argument("--max-proposals", type=int, default=100)
    p.add_argument("--peak-window", type=int, default=1)
    p.add_argument("--prompts", default="point", help="prompts per proposal: point, box or point,box")
    p.add_argument("--strategies", default="head,refined",
                   help="head (the head's points only) and/or refined (grid snapping + second pass)")
    p.add_argument("--refine-max-prompts", type=int, default=120)
    p.add_argument("--refine-neighbours", type=int, default=4)
    p.add_argument("--refine-parents", default="near_miss,suppressor")
    p.add_argument("--refine-margin", type=float, default=0.02)
    p.add_argument("--refine-rounds", type=int, default=1,
                   help="second-pass rounds (RefineConfig.rounds: later rounds expand new NMS suppressors)")
    p.add_argument("--refine-first-pass", default="points", choices=["points", "cells"],
                   help="refined: the head's snapped points, or every grid point of its best cells "
                        "(RefineConfig.first_pass)")
    p.add_argument("--refine-max-cells", type=int, default=25, help="refined, --refine-first-pass cells: at most")
    p.add_argument("--no-snap", action="store_true", help="refined: keep the head's points off the grid")
    p.add_argument("--grid-sides", default="",
                   help="also coarse dense grids of these sides (e.g. 8,10): the same filters, what a plain grid with "
                        "as few prompts recovers")
    p.add_argument("--iou", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_proposals")
    return p.parse_args(argv)


def _masks(records: list[dict], shape: tuple[int, int]) -> np.ndarray:
    return np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *shape), bool)


def _recovered(dense: np.ndarray, got: np.ndarray, iou: float) -> int:
    """How many ``dense`` masks some mask of ``got`` matches at IoU >= ``iou``."""
    if not len(dense) or not len(got):
        return 0
    return int((mask_iou(dense, got).max(1) >= iou).sum())


def _summary(rows: list[dict], group: str, key: str, dense_masks: int, dense_prompts: float) -> dict:
    """Per-image means of one run kind (``rows[i][group][key]``) over the images, against dense."""
    runs = [r[group][key] for r in rows]
    prompts = float(np.mean([v["prompts"] for v in runs]))
    out = {"prompts_per_image": prompts, "prompt_reduction": dense_prompts / max(prompts, 1e-9),
           "recovered_fraction": sum(v["recovered"] for v in runs) / max(dense_masks, 1),
           "masks_per_image": float(np.mean([v["masks"] for v in runs]))}
    if all("matched" in v for v in runs):
        out["matched_fraction"] = sum(v["matched"] for v in runs) / max(sum(v["masks"] for v in runs), 1)
    if all("refine_prompts" in v for v in runs):
        out["refine_prompts_per_image"] = float(np.mean([v["refine_prompts"] for v in runs]))
        out["max_prompts_image"] = int(max(v["prompts"] for v in runs))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from samfpga.bundle import sha256_file
    from samfpga.everything import AutomaticMaskGenerator, ProposalMaskGenerator
    from samfpga.everything.proposals import ProposalHead
    from samfpga.everything.refine import RefineConfig
    from samfpga.models.data import get_split
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    bundle = Path(package_path("samfpga.assets", "default"))
    pred = Predictor.from_bundle(bundle, threads=args.threads)
    head = ProposalHead(args.head or bundle / "proposals.onnx", threads=args.threads)
    split = get_split(args.split)
    sample = split.sample_function(pred.image_size)
    filters = dict(pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh)
    thresholds = [float(v) for v in args.score_thresh.split(",")]
    prompt_kinds = tuple(args.prompts.split(","))
    grid_sides = [int(v) for v in args.grid_sides.split(",") if v]
    refine = RefineConfig(snap=not args.no_snap, parents=tuple(v for v in args.refine_parents.split(",") if v),
                          margin=args.refine_margin, neighbours=args.refine_neighbours,
                          max_prompts=args.refine_max_prompts, rounds=args.refine_rounds,
                          first_pass=args.refine_first_pass, max_cells=args.refine_max_cells)
    strategies = {"head": None, "refined": refine}
    chosen = args.strategies.split(",")
    if set(chosen) - set(strategies):
        raise SystemExit(f"--strategies: unknown {sorted(set(chosen) - set(strategies))}; choose from head, refined")
    rows = []
    for i in range(args.start, args.start + args.images):
        image = sample(split.seed, i).image
        gen = AutomaticMaskGenerator(pred, points_per_side=args.points_per_side, **filters)
        t0 = time.perf_counter()
        dense = _masks(gen.generate(image), image.shape[:2])
        row = {"image": i, "dense_masks": len(dense), "dense_prompts": gen.stats["decoder_prompts"],
               "dense_s": time.perf_counter() - t0}
        for name in chosen:
            row[name] = {}
            for thr in thresholds:
                pg = ProposalMaskGenerator(pred, head, score_thresh=thr, max_proposals=args.max_proposals,
                                           peak_window=args.peak_window, prompts=prompt_kinds,
                                           refine=strategies[name], **filters)
                t0 = time.perf_counter()
                got = _masks(pg.generate(image), image.shape[:2])
                wall = time.perf_counter() - t0
                row[name][str(thr)] = {"masks": len(got), "prompts": pg.stats["decoder_prompts"],
                                       "proposals": pg.stats["proposals"],
                                       "refine_prompts": pg.stats["refine_prompts"], "s": wall,
                                       "recovered": _recovered(dense, got, args.iou),
                                       "matched": _recovered(got, dense, args.iou)}
        row["grids"] = {}
        for side in grid_sides:
            gg = AutomaticMaskGenerator(pred, points_per_side=side, **filters)
            got = _masks(gg.generate(image), image.shape[:2])
            row["grids"][str(side)] = {"masks": len(got), "prompts": gg.stats["decoder_prompts"],
                                       "recovered": _recovered(dense, got, args.iou),
                                       "matched": _recovered(got, dense, args.iou)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    n = sum(r["dense_masks"] for r in rows)
    summary = {"dense_masks": n, "dense_prompts_per_image": float(np.mean([r["dense_prompts"] for r in rows])),
               "dense_s_per_image": float(np.mean([r["dense_s"] for r in rows])), "by_strategy": {}}
    for name in chosen:
        summary["by_strategy"][name] = {
            str(thr): {**_summary(rows, name, str(thr), n, summary["dense_prompts_per_image"]),
                       "s_per_image": float(np.mean([r[name][str(thr)]["s"] for r in rows]))}
            for thr in thresholds}
    summary["by_grid_side"] = {str(side): _summary(rows, "grids", str(side), n, summary["dense_prompts_per_image"])
                               for side in grid_sides}
    # shell-quoted, so an empty value (e.g. --refine-parents '') survives a copy and paste
    result = {"command": "python -m bench.everything_proposals " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
              "split": split.describe(), "filters": filters, "points_per_side": args.points_per_side,
              "iou": args.iou, "peak_window": args.peak_window, "max_proposals": args.max_proposals,
              "prompts": list(prompt_kinds), "refine": dataclasses.asdict(refine),
              "head": str(args.head or bundle / "proposals.onnx"), "head_sha256": sha256_file(args.head or bundle / "proposals.onnx"),
              "summary": summary,
              "images": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def _from(result: dict) -> str:
    first = result["images"][0]["image"] if result["images"] else 0
    return f" (from index {first})" if first else ""


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = ["# Proposals mode vs dense everything (issue 16)", "", f"`{result['command']}`  ",
             f"{result['machine']}; split {result['split']['name']} (seed {result['split']['seed']}), "
             f"{len(result['images'])} images{_from(result)}; filters {json.dumps(result['filters'])}; dense "
             f"{result['points_per_side']}² grid: {s['dense_prompts_per_image']:.0f} prompts, {s['dense_masks']} "
             f"masks, {s['dense_s_per_image']:.2f} s per image; recovered = a proposals mask at IoU >= "
             f"{result['iou']} with the dense mask; peak window {result['peak_window']}, at most "
             f"{result['max_proposals']} proposals, prompted by {' + '.join(result.get('prompts', ['point', 'box']))}; "
             f"strategy head: the head's points as they are; refined: {json.dumps(result['refine'])} "
             "(samfpga.everything.refine); matched = the mode's masks at IoU >= "
             f"{result['iou']} with a dense mask",
             "",
             "| strategy | score thresh | prompts / image (second pass) | most on one image | fewer than dense | "
             "dense masks recovered | masks / image | matched | s / image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, by_thr in s["by_strategy"].items():
        for k, v in by_thr.items():
            lines.append(f"| {name} | {k} | {v['prompts_per_image']:.1f} ({v['refine_prompts_per_image']:.1f}) | "
                         f"{v['max_prompts_image']} | {v['prompt_reduction']:.1f}x | "
                         f"{100 * v['recovered_fraction']:.1f}% | {v['masks_per_image']:.1f} | "
                         f"{100 * v['matched_fraction']:.1f}% | {v['s_per_image']:.2f} |")
    if s.get("by_grid_side"):
        lines += ["", "Plain coarse grids through the same filters (no head):", "",
                  "| grid | prompts / image | fewer than dense | dense masks recovered | masks / image | matched |",
                  "|---|---|---|---|---|---|"]
        for k, v in s["by_grid_side"].items():
            lines.append(f"| {k}x{k} | {v['prompts_per_image']:.1f} | {v['prompt_reduction']:.1f}x | "
                         f"{100 * v['recovered_fraction']:.1f}% | {v['masks_per_image']:.1f} | "
                         f"{100 * v['matched_fraction']:.1f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
